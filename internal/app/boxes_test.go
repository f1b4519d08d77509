package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodBox = "  - name: rds2\n    address: 10.0.0.2\n    keyFile: /k\n    hostKeyFile: /h\n"

// A boxes file with a mistake stops the driver at start-up with an error naming the file, the box and the
// field.
func TestLoadBoxesRefusesBadFiles(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"upper-case name", "boxes:\n  - name: RDS2\n    address: a\n    keyFile: /k\n    hostKeyFile: /h\n", "boxes[0] (RDS2): name: box name \"RDS2\" may hold only a-z"},
		{"name too long", "boxes:\n  - name: " + strings.Repeat("a", 33) + "\n    address: a\n    keyFile: /k\n    hostKeyFile: /h\n", "at most 32"},
		{"no name", "boxes:\n  - address: a\n    keyFile: /k\n    hostKeyFile: /h\n", "boxes[0]: name: box name is empty"},
		{"name twice", "boxes:\n" + goodBox + goodBox, `boxes[1] (rds2): the name "rds2" is taken`},
		{"the default box's name", "defaultBox: rds2\nboxes:\n" + goodBox, `the name "rds2" is taken (by another box or the default box "rds2")`},
		{"bad default name", "defaultBox: A_B\nboxes: []\n", "defaultBox: box name \"A_B\""},
		{"no address", "boxes:\n  - name: b\n    keyFile: /k\n    hostKeyFile: /h\n", "boxes[0] (b): address is required"},
		{"no key", "boxes:\n  - name: b\n    address: a\n    hostKeyFile: /h\n", "boxes[0] (b): keyFile is required"},
		{"no host key", "boxes:\n  - name: b\n    address: a\n    keyFile: /k\n", "boxes[0] (b): hostKeyFile is required"},
		{"bad base path", "boxes:\n" + goodBox + "    basePath: /abs\n", "boxes[0] (rds2): basePath"},
		{"unknown field", "boxes:\n" + goodBox + "    passwd: x\n", `unknown field "passwd"`},
		{"not YAML", "boxes: [\n", "--rds-boxes-config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "boxes.yaml", c.text)
			_, err := LoadBoxes(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, p, c.want)
			}
		})
	}
	if _, err := LoadBoxes("/nonexistent/boxes.yaml"); err == nil || !strings.Contains(err.Error(), "--rds-boxes-config") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadBoxesDefaults(t *testing.T) {
	for _, text := range []string{"boxes:\n" + goodBox,
		`{"boxes": [{"name": "rds2", "address": "10.0.0.2", "keyFile": "/k", "hostKeyFile": "/h"}]}`} {
		f, err := LoadBoxes(writeFile(t, "boxes", text))
		if err != nil {
			t.Fatal(err)
		}
		if f.DefaultBox != driver.DefaultBoxName || len(f.Boxes) != 1 || f.Boxes[0].BasePath != "pool/k8s" || f.Boxes[0].User != "" {
			t.Fatalf("defaults: %+v", f)
		}
	}
}

func startSim(t *testing.T, size int64) *rdssim.Simulator {
	t.Helper()
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PoolSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// The whole program with two boxes (two simulators): the flags' box is the default, the file's box is
// picked by rdsBox, and its volumes' ids carry its name.
func TestRunServesTwoBoxes(t *testing.T) {
	a, b := startSim(t, 100<<30), startSim(t, 20<<30)
	boxes := writeFile(t, "boxes.yaml", "defaultBox: main\nboxes:\n  - name: rds2\n    address: "+b.Addr()+
		"\n    user: admin\n    keyFile: "+b.ClientKeyFile()+"\n    hostKeyFile: "+b.KnownHostsFile()+
		"\n    basePath: pool/two\n    nvmeAddress: 10.9.9.9\n")
	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Mode: driver.ModeController, Endpoint: "unix://" + sock, BasePath: "pool/k8s",
			RDSAddress: a.Addr(), RDSUser: "admin", RDSKeyFile: a.ClientKeyFile(), RDSHostKeyFile: a.KnownHostsFile(),
			NVMeAddress: "10.1.1.1", RDSBoxesConfig: boxes})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver stopped with: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("driver exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("driver did not serve within 30s")
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctrl := csi.NewControllerClient(conn)
	rctx := rpcCtx(t)
	fs := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	create := func(name string, params map[string]string) *csi.Volume {
		t.Helper()
		r, err := ctrl.CreateVolume(rctx, &csi.CreateVolumeRequest{Name: name, Parameters: params,
			VolumeCapabilities: []*csi.VolumeCapability{fs}, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return r.GetVolume()
	}
	if v := create("pvc-1", nil); v.GetVolumeId() != "pvc-1" || v.GetVolumeContext()["nvmeAddress"] != "10.1.1.1" {
		t.Fatalf("default box volume: %v", v)
	}
	if v := create("pvc-2", map[string]string{"rdsBox": "rds2"}); v.GetVolumeId() != "rds2/pvc-2" ||
		v.GetVolumeContext()["nvmeAddress"] != "10.9.9.9" || v.GetVolumeContext()["basePath"] != "pool/two" {
		t.Fatalf("rds2 volume: %v", v)
	}
	if v := create("pvc-3", map[string]string{"rdsBox": "main"}); v.GetVolumeId() != "pvc-3" {
		t.Fatalf("rdsBox=main is the default box: %v", v)
	}
	for _, c := range []struct {
		params map[string]string
		max    int64
	}{{nil, 100 << 30}, {map[string]string{"rdsBox": "rds2"}, 20 << 30}} {
		r, err := ctrl.GetCapacity(rctx, &csi.GetCapacityRequest{Parameters: c.params})
		if err != nil || r.GetAvailableCapacity() > c.max || r.GetAvailableCapacity() < c.max-(4<<30) {
			t.Fatalf("GetCapacity(%v) = %v, %v; want a little under %d", c.params, r, err, c.max)
		}
	}
	l, err := ctrl.ListVolumes(rctx, &csi.ListVolumesRequest{})
	if err != nil || len(l.GetEntries()) != 3 || l.GetEntries()[2].GetVolume().GetVolumeId() != "rds2/pvc-2" {
		t.Fatalf("ListVolumes: %v, %v", l, err)
	}
	for _, id := range []string{"rds2/pvc-2", "pvc-1", "pvc-3"} {
		if _, err := ctrl.DeleteVolume(rctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
}

// A box whose host key does not match stops the driver at start-up, naming the box.
func TestRunRefusesABoxWithAWrongHostKey(t *testing.T) {
	a, b, other := startSim(t, 0), startSim(t, 0), startSim(t, 0)
	boxes := writeFile(t, "boxes.yaml", "boxes:\n  - name: rds2\n    address: "+b.Addr()+"\n    keyFile: "+b.ClientKeyFile()+
		"\n    hostKeyFile: "+other.KnownHostsFile()+"\n")
	dir := t.TempDir()
	err := Run(context.Background(), Config{Mode: driver.ModeController, Endpoint: "unix://" + dir + "/csi.sock", BasePath: "pool/k8s",
		RDSAddress: a.Addr(), RDSUser: "admin", RDSKeyFile: a.ClientKeyFile(), RDSHostKeyFile: a.KnownHostsFile(), RDSBoxesConfig: boxes})
	if err == nil || !strings.Contains(err.Error(), "box rds2") || !strings.Contains(err.Error(), "host key does not match") {
		t.Fatalf("Run with a box's wrong host key: %v", err)
	}
	err = Run(context.Background(), Config{Mode: driver.ModeController, Endpoint: "unix://" + dir + "/csi.sock", BasePath: "pool/k8s",
		RDSAddress: a.Addr(), RDSUser: "admin", RDSKeyFile: a.ClientKeyFile(), RDSHostKeyFile: a.KnownHostsFile(),
		RDSBoxesConfig: writeFile(t, "bad.yaml", "boxes:\n  - name: Bad\n")})
	if err == nil || !strings.Contains(err.Error(), "boxes[0] (Bad): name") {
		t.Fatalf("Run with a bad boxes file: %v", err)
	}
}
