package rds

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// LoadPrivateKey reads the SSH private key the driver logs in with (ed25519 or RSA, unencrypted).
func LoadPrivateKey(path string) (ssh.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSH private key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("SSH private key %s is encrypted; the driver needs an unencrypted key", path)
	case err != nil:
		return nil, fmt.Errorf("SSH private key %s: %w", path, err)
	}
	return signer, nil
}

// HostKeyError is returned by the callback of LoadHostKey when the RDS presents a key that is not pinned.
type HostKeyError struct {
	Host string
	Got  ssh.PublicKey
	Want []ssh.PublicKey
}

func (e *HostKeyError) Error() string {
	want := make([]string, len(e.Want))
	for i, k := range e.Want {
		want[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return fmt.Sprintf("the SSH host key of %s did not match: it presented %s %s, the pinned host key file has %s "+
		"(if the RDS was reinstalled, check the new key on its console and update the file)",
		e.Host, e.Got.Type(), ssh.FingerprintSHA256(e.Got), strings.Join(want, ", "))
}

// LoadHostKey reads the pinned host key(s) of the RDS from path, which holds known_hosts line(s) or one
// public key in authorized_keys format, and returns a callback that accepts only those keys. The host
// patterns of known_hosts lines are not compared with the address dialled: the file is the RDS's own, and
// pinning its keys is what matters (the same RDS is often reached by IP in one place and by name in
// another). Revoked (@revoked) lines are refused; @cert-authority lines are not supported.
func LoadHostKey(path string) (ssh.HostKeyCallback, error) {
	keys, err := readHostKeys(path)
	if err != nil {
		return nil, err
	}
	return func(host string, _ net.Addr, key ssh.PublicKey) error {
		got := key.Marshal()
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), got) {
				return nil
			}
		}
		return &HostKeyError{Host: host, Got: key, Want: keys}
	}, nil
}

func readHostKeys(path string) ([]ssh.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the RDS host key: %w", err)
	}
	var keys []ssh.PublicKey
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := parseHostKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("RDS host key file %s line %d: %w", path, n+1, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("RDS host key file %s holds no key: put the output of `ssh-keyscan <rds>` or the "+
			"RDS's public host key in it", path)
	}
	return keys, nil
}

// parseHostKeyLine accepts `[marker] hosts keytype base64 [comment]` (known_hosts) or
// `keytype base64 [comment]` (authorized_keys format).
func parseHostKeyLine(line string) (ssh.PublicKey, error) {
	if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return key, nil
	}
	marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
	switch {
	case err != nil:
		return nil, errors.New("neither a known_hosts line nor a public key")
	case marker == "revoked":
		return nil, errors.New("a @revoked key cannot be pinned")
	case marker != "":
		return nil, fmt.Errorf("@%s lines are not supported; pin the host key itself", marker)
	}
	return key, nil
}

// hostKeyAlgorithms lists the SSH host key algorithms that can present one of keys, so that a redial can
// ask the RDS for a key type it has pinned.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		algos := []string{k.Type()}
		if k.Type() == ssh.KeyAlgoRSA {
			algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range algos {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}
