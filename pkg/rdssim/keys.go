package rdssim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	hostKeyFile    = "ssh_host_ed25519_key"
	clientKeyName  = "client_key"
	knownHostsName = "known_hosts"
)

// loadOrCreateKey reads an OpenSSH private key, or makes a new ed25519 key
// and stores it with mode 0600, so host and client keys survive restarts.
func loadOrCreateKey(path, comment string) (ssh.Signer, bool, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(raw)
		if err != nil {
			return nil, false, fmt.Errorf("parse key %s: %w", path, err)
		}
		return signer, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, false, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	return signer, true, err
}

// ensureClientKey makes DataDir/client_key{,.pub} on first start and returns
// the public key the simulator then accepts.
func ensureClientKey(dir string) (ssh.PublicKey, string, error) {
	keyPath := filepath.Join(dir, clientKeyName)
	signer, _, err := loadOrCreateKey(keyPath, "rds-sim client")
	if err != nil {
		return nil, "", err
	}
	pubPath := keyPath + ".pub"
	line := ssh.MarshalAuthorizedKey(signer.PublicKey())
	line = append(bytes.TrimSpace(line), []byte(" rds-sim client\n")...)
	if old, err := os.ReadFile(pubPath); err != nil || !bytes.Equal(old, line) {
		if err := writeFileAtomic(pubPath, line, 0o644); err != nil {
			return nil, "", err
		}
	}
	return signer.PublicKey(), keyPath, nil
}

// loadAuthorizedKeys reads an authorized_keys file (options are ignored).
func loadAuthorizedKeys(path string) ([]ssh.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read authorized keys: %w", err)
	}
	var keys []ssh.PublicKey
	for rest := raw; len(bytes.TrimSpace(rest)) > 0; {
		key, _, _, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("parse authorized keys %s: %w", path, err)
		}
		keys = append(keys, key)
		rest = next
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("authorized keys file %s holds no key", path)
	}
	return keys, nil
}

// knownHostsLine is "<host> <keytype> <base64>" where host is "[ip]:port",
// or the bare host for port 22. A wildcard listen address is written as
// 127.0.0.1, where local clients reach it.
func knownHostsLine(addr string, key ssh.PublicKey) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, port))}, key) + "\n", nil
}

// writeFileAtomic replaces path with data through a synced temporary file and a
// rename, so a reader or a crash sees the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
