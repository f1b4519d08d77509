package sanity

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// TestSanityBinarySecondBox runs csi-sanity's controller specs against the rds-csi binary with two boxes:
// the embedded simulator is the default box, a second simulator is box rds2, and the suite's StorageClass
// parameters pick rds2. Every volume and snapshot then has a box-prefixed id, and every call after
// CreateVolume must find rds2 from the id alone. The node specs are left out: the loop initiator attaches
// only the embedded simulator's files (TestSanity covers them on the default box).
func TestSanityBinarySecondBox(t *testing.T) {
	driverBin := binary(t, "RDS_CSI_BINARY", "github.com/rds-csi/rds-csi/cmd/rds-csi")
	sanityBin := binary(t, "CSI_SANITY_BINARY", "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")

	dir := t.TempDir()
	box2, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "rds2")})
	if err != nil {
		t.Fatal(err)
	}
	if err := box2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box2.Close() })
	boxes := filepath.Join(dir, "boxes.yaml")
	params := filepath.Join(dir, "params.yaml")
	for path, text := range map[string]string{
		boxes: "boxes:\n  - name: rds2\n    address: " + box2.Addr() + "\n    user: admin\n    keyFile: " + box2.ClientKeyFile() +
			"\n    hostKeyFile: " + box2.KnownHostsFile() + "\n    nvmeAddress: 127.0.0.1\n",
		params: "rdsBox: rds2\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "csi.sock")
	exited := startProcess(t, filepath.Join(dir, "rds-csi.log"), driverBin, "--mode=all",
		"--rds-simulator", filepath.Join(dir, "rds"), "--endpoint", "unix://"+sock, "--node-id", "sanity-node",
		"--base-path", "pool/k8s", "--rds-boxes-config", boxes)
	waitForSocket(t, sock, exited)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sanityBin,
		"-csi.endpoint", sock,
		"-csi.mountdir", filepath.Join(dir, "target"),
		"-csi.stagingdir", filepath.Join(dir, "staging"),
		"-csi.testvolumesize", strconv.Itoa(testVolumeSize),
		"-csi.testvolumeparameters", params,
		"-ginkgo.skip", "Node Service",
		"-ginkgo.no-color").CombinedOutput()
	if err != nil {
		t.Fatalf("csi-sanity on box rds2 failed: %v\n%s", err, out)
	}
	t.Logf("csi-sanity's controller specs passed on box rds2:\n%s", lastLines(out, 3))
	// The volumes really were on rds2: its simulator added the disks.
	adds := 0
	for _, c := range box2.Commands() {
		if strings.Contains(c, "/disk add") || strings.Contains(c, "/disk/add") {
			adds++
		}
	}
	if adds == 0 {
		t.Fatalf("box rds2's simulator added no disk; it ran %d commands", len(box2.Commands()))
	}
}
