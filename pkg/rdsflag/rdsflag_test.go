package rdsflag

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// TestClientConfig parses the flags as both commands register them and checks what the client gets.
func TestClientConfig(t *testing.T) {
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	key, hostKey := sim.ClientKeyFile(), sim.KnownHostsFile()
	if err := sim.Start(); err != nil { // writes known_hosts
		t.Fatal(err)
	}
	defer sim.Close()
	for _, tc := range []struct {
		name string
		args []string
		err  string
		addr string
	}{
		{"default port", []string{"--rds-address", "10.0.0.5", "--rds-key-file", key, "--rds-host-key", hostKey}, "", "10.0.0.5:22"},
		{"own port", []string{"--rds-address", "rds:2222", "--rds-key-file", key, "--rds-host-key", hostKey}, "", "rds:2222"},
		{"insecure", []string{"--rds-address", "rds", "--rds-key-file", key, "--rds-insecure-skip-host-key-check"}, "", "rds:22"},
		{"no address", []string{"--rds-key-file", key, "--rds-host-key", hostKey}, "--rds-address is required", ""},
		{"no host key", []string{"--rds-address", "rds", "--rds-key-file", key}, "--rds-host-key is required", ""},
		{"bad key", []string{"--rds-address", "rds", "--rds-key-file", hostKey, "--rds-host-key", hostKey}, "--rds-key-file", ""},
		{"bad host key", []string{"--rds-address", "rds", "--rds-key-file", key, "--rds-host-key", key}, "--rds-host-key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var v Values
			Register(fs, &v)
			if err := fs.Parse(append(tc.args, "--rds-user", "csi", "--rds-command-timeout", "7s")); err != nil {
				t.Fatal(err)
			}
			cfg, err := v.ClientConfig()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Address != tc.addr || cfg.User != "csi" || cfg.CommandTimeout != 7*time.Second ||
				cfg.Signer == nil || cfg.HostKeyCallback == nil || v.BasePath != DefaultBasePath {
				t.Errorf("config %+v, base path %q", cfg, v.BasePath)
			}
		})
	}
}
