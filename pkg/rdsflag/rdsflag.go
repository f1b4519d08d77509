// Package rdsflag defines, once, the command-line flags that say which RDS to use and how to reach it,
// for every command of the binary that talks to one: the controller and `rds-csi doctor`. Sharing them
// keeps a user's doctor run and their controller reading the same settings the same way.
package rdsflag

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// DefaultBasePath is where volumes go when a StorageClass names no base path.
const DefaultBasePath = "pool/k8s"

// Values are the RDS settings as given on the command line.
type Values struct {
	Address           string // host[:port]; port 22 when none is given
	User              string
	KeyFile           string
	HostKeyFile       string
	InsecureHostKey   bool // tests only: accept any host key
	OneCommandPerExec bool
	CommandTimeout    time.Duration
	MaxSessions       int // exec sessions open at once (rds.Config.MaxSessions)
	BasePath          string
}

// Register defines the RDS flags on fs, storing into v.
func Register(fs *flag.FlagSet, v *Values) {
	fs.StringVar(&v.Address, "rds-address", "", "RDS management address, HOST[:PORT] (SSH, default port 22)")
	fs.StringVar(&v.User, "rds-user", "admin", "RouterOS user for SSH")
	fs.StringVar(&v.KeyFile, "rds-key-file", "", "SSH private key of that user")
	fs.StringVar(&v.HostKeyFile, "rds-host-key", "", "the RDS's SSH host key: a known_hosts line or a public key")
	fs.BoolVar(&v.InsecureHostKey, "rds-insecure-skip-host-key-check", false, "do not verify the RDS host key (tests only)")
	fs.BoolVar(&v.OneCommandPerExec, "rds-one-command-per-exec", false, "send one RouterOS command per SSH exec instead of one script per operation")
	fs.DurationVar(&v.CommandTimeout, "rds-command-timeout", 0, "timeout of one RouterOS exec (default 30s)")
	fs.IntVar(&v.MaxSessions, "rds-max-sessions", 8, "SSH exec sessions open at once to the RDS; more RouterOS commands wait in order, their timeout starting when sent")
	fs.StringVar(&v.BasePath, "base-path", DefaultBasePath, "default <pool>/<directory> for volumes, when a StorageClass names none")
}

// ClientConfig builds the RouterOS client's configuration: it loads the SSH key and the pinned host key.
// A missing or unreadable host key is an error: nothing falls back to trusting whatever answers.
func (v Values) ClientConfig() (rds.Config, error) {
	if v.Address == "" {
		return rds.Config{}, errors.New("--rds-address is required")
	}
	addr := v.Address
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	signer, err := rds.LoadPrivateKey(v.KeyFile)
	if err != nil {
		return rds.Config{}, fmt.Errorf("--rds-key-file: %w", err)
	}
	var hostKey ssh.HostKeyCallback
	switch {
	case v.InsecureHostKey:
		klog.Warning("--rds-insecure-skip-host-key-check: the RDS host key is NOT verified; use only in tests")
		hostKey = ssh.InsecureIgnoreHostKey() //nolint:gosec // explicitly requested, for tests only
	case v.HostKeyFile == "":
		return rds.Config{}, errors.New("--rds-host-key is required: the RDS's SSH host key (a known_hosts line or public key); " +
			"get it with `ssh-keyscan <rds>` and check its fingerprint on the RDS console")
	default:
		hostKey, err = rds.LoadHostKey(v.HostKeyFile)
		if err != nil {
			return rds.Config{}, fmt.Errorf("--rds-host-key: %w", err)
		}
	}
	return rds.Config{Address: addr, User: v.User, Signer: signer, HostKeyCallback: hostKey,
		CommandTimeout: v.CommandTimeout, OneCommandPerExec: v.OneCommandPerExec, MaxSessions: v.MaxSessions}, nil
}
