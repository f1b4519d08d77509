package app

import (
	"context"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func TestRunRefusesMissingHostKey(t *testing.T) {
	_, err := newRDSClient(Config{RDSAddress: "127.0.0.1:22", RDSUser: "admin", RDSKeyFile: "/nonexistent/key"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--rds-key-file") {
		t.Fatalf("missing key file: %v", err)
	}
	dir := t.TempDir()
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newRDSClient(Config{RDSAddress: "127.0.0.1:22", RDSUser: "admin", RDSKeyFile: sim.ClientKeyFile()}, nil)
	if err == nil || !strings.Contains(err.Error(), "--rds-host-key is required") {
		t.Fatalf("missing host key: %v", err)
	}
}

// A host key that does not match is a start-up error that says so, never a silent fallback.
func TestRunRefusesWrongHostKey(t *testing.T) {
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	other, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}) // another host key
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil { // writes its known_hosts line
		t.Fatal(err)
	}
	other.Close()
	dir := t.TempDir()
	err = Run(context.Background(), Config{Mode: driver.ModeController, Endpoint: "unix://" + dir + "/csi.sock", BasePath: "pool/k8s",
		RDSAddress: sim.Addr(), RDSUser: "admin", RDSKeyFile: sim.ClientKeyFile(), RDSHostKeyFile: other.KnownHostsFile()})
	if err == nil || !strings.Contains(err.Error(), "host key does not match") {
		t.Fatalf("Run with a wrong host key: %v", err)
	}
}
