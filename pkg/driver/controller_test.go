package driver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

const gib = int64(1) << 30

// controllerEnv is a controller-mode driver talking real SSH to a simulator; handlers are called directly.
type controllerEnv struct {
	d      *Driver
	sim    *rdssim.Simulator
	client *rds.Client
}

func newControllerEnv(t testing.TB, cfg rdssim.Config) *controllerEnv {
	t.Helper()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	client, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hostKey,
		CommandTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	loc, _ := volume.ParseLocation("pool/k8s")
	d, err := New(Options{Mode: ModeController, DriverName: DefaultDriverName, DefaultLocation: loc, NVMeAddress: "10.0.0.5"},
		Deps{Volumes: volume.NewManager(client), Prober: client, Attachments: attachment.NewManager(attachment.Options{}),
			Nodes: knownNodes{"node-a": true, "node-b": true, "node-c": true}})
	if err != nil {
		t.Fatal(err)
	}
	return &controllerEnv{d: d, sim: sim, client: client}
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode, fs string) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
}

func blockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
}

var fsRWO = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "ext4")

func createReq(name string, params map[string]string, caps ...*csi.VolumeCapability) *csi.CreateVolumeRequest {
	if len(caps) == 0 {
		caps = []*csi.VolumeCapability{fsRWO}
	}
	return &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: caps, Parameters: params,
		CapacityRange: &csi.CapacityRange{RequiredBytes: gib}}
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	if contains != "" && !strings.Contains(status.Convert(err).Message(), contains) {
		t.Fatalf("message %q does not mention %q", status.Convert(err).Message(), contains)
	}
}

// Bad input gets InvalidArgument and sends nothing to the RDS.
func TestCreateVolumeRefusesBadInput(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	mmw := csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	for _, c := range []struct {
		name    string
		req     *csi.CreateVolumeRequest
		mention string
	}{
		{"no name", createReq("", nil), "name"},
		{"hostile name", createReq(`pvc";/disk remove 0`, nil), "disk name"},
		{"over-long name", createReq(strings.Repeat("a", 129), nil), "disk name"},
		{"a snapshot's leaf", createReq("snap-1.pvc-a.1073741824.5", nil), "form of a snapshot"},
		{"a snapshots container's leaf", createReq("k8s-snapshots.9c4b90ed", nil), "snapshots container"},
		{"no capabilities", &csi.CreateVolumeRequest{Name: "pvc-a"}, "capabilities"},
		{"multi-node filesystem", createReq("pvc-a", nil, mountCap(mmw, "ext4")), "block-only"},
		{"unsupported fs", createReq("pvc-a", nil, mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "ntfs")), "ntfs"},
		{"unknown parameter", createReq("pvc-a", map[string]string{"bassePath": "pool/x", "zz": "1"}), "bassePath, zz"},
		{"bad port", createReq("pvc-a", map[string]string{"nvmePort": "99999"}), "nvmePort"},
		{"bad address", createReq("pvc-a", map[string]string{"nvmeAddress": "1.2.3.4;reboot"}), "nvmeAddress"},
		{"bad base path", createReq("pvc-a", map[string]string{"basePath": "pool/../etc"}), "basePath"},
		{"bad ctrlLossTmo", createReq("pvc-a", map[string]string{"ctrlLossTmo": "-5"}), "ctrlLossTmo"},
		{"bad fsType parameter", createReq("pvc-a", map[string]string{"fsType": "btrfs"}), "fsType"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.sim.ResetCommands()
			_, err := e.d.CreateVolume(ctx, c.req)
			wantCode(t, err, codes.InvalidArgument, c.mention)
			if cmds := e.sim.Commands(); len(cmds) != 0 {
				t.Fatalf("bad input reached the RDS: %q", cmds)
			}
		})
	}
}

func TestCreateVolumeContextAndModes(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	params := map[string]string{"ctrlLossTmo": "-1", "keepAliveTmo": "10", "fsType": "xfs",
		"csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "db", "csi.storage.k8s.io/pv/name": "pvc-ctx"}
	r, err := e.d.CreateVolume(ctx, createReq("pvc-ctx", params))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"nvmeAddress": "10.0.0.5", "nvmePort": "4420", "nqn": "nqn.2000-02.com.mikrotik:pvc-ctx",
		"basePath": "pool/k8s", "ctrlLossTmo": "-1", "keepAliveTmo": "10", "fsType": "xfs",
		"csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "db", "csi.storage.k8s.io/pv/name": "pvc-ctx"}
	got := r.GetVolume().GetVolumeContext()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("volume context %s = %q, want %q", k, got[k], v)
		}
	}
	// Raw block may be multi-node (live migration); it is created like any other volume.
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-rwx", nil, blockCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER))); err != nil {
		t.Fatalf("RWX block: %v", err)
	}
	// Same name, bigger size: AlreadyExists.
	big := createReq("pvc-ctx", params)
	big.CapacityRange.RequiredBytes = 3 * gib
	_, err = e.d.CreateVolume(ctx, big)
	wantCode(t, err, codes.AlreadyExists, "pvc-ctx")
	// A limit below the allocation unit: OutOfRange.
	odd := createReq("pvc-odd", nil)
	odd.CapacityRange = &csi.CapacityRange{RequiredBytes: gib + 1, LimitBytes: gib + 2}
	_, err = e.d.CreateVolume(ctx, odd)
	wantCode(t, err, codes.OutOfRange, "")
}

func TestErrorsFromTheRDSMapToCodes(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()

	e.sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDiskFull})
	_, err := e.d.CreateVolume(ctx, createReq("pvc-full", nil))
	wantCode(t, err, codes.ResourceExhausted, "not enough space")
	e.sim.SetFaults()

	// A disk this driver did not make is never deleted.
	add, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "vm1", FilePath: "pool/vms/vm1.img", SizeBytes: gib, NQN: "nqn.2026-01.lab:vm1", Port: 4420})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Run(ctx, []rds.Cmd{add}); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "vm1"})
	wantCode(t, err, codes.FailedPrecondition, "vm1")

	// A hung RDS is Unavailable, not a hang of the CSI call.
	e.sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultHang})
	start := time.Now()
	_, err = e.d.CreateVolume(ctx, createReq("pvc-hang", nil))
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Fatalf("hung RDS: %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("a hung RDS held the call for %s", time.Since(start))
	}
	e.sim.SetFaults()

	// Probe reports not-ready, without an error, when the RDS is gone.
	p, err := e.d.Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !p.GetReady().GetValue() {
		t.Fatalf("probe with the RDS up: %v %v", p, err)
	}
	e.sim.Close()
	p, err = e.d.Probe(ctx, &csi.ProbeRequest{})
	if err != nil || p.GetReady().GetValue() {
		t.Fatalf("probe with the RDS down: %v %v", p, err)
	}
}

func TestSecondOperationOnAVolumeIsAborted(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	release, err := e.d.guard.acquire("pvc-busy")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = e.d.CreateVolume(context.Background(), createReq("pvc-busy", nil))
	wantCode(t, err, codes.Aborted, "pvc-busy")
	_, err = e.d.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: "pvc-busy"})
	wantCode(t, err, codes.Aborted, "")
}

func TestListVolumesPagesAndHealth(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	for _, n := range []string{"pvc-3", "pvc-1", "pvc-2"} {
		if _, err := e.d.CreateVolume(ctx, createReq(n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	token := ""
	for {
		r, err := e.d.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range r.GetEntries() {
			seen = append(seen, en.GetVolume().GetVolumeId())
		}
		if token = r.GetNextToken(); token == "" {
			break
		}
	}
	if strings.Join(seen, ",") != "pvc-1,pvc-2,pvc-3" {
		t.Fatalf("pages gave %v", seen)
	}
	_, err := e.d.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "pvc-gone"})
	wantCode(t, err, codes.Aborted, "")
	_, err = e.d.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: -1})
	wantCode(t, err, codes.InvalidArgument, "")

	h, err := e.d.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "pvc-2"})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Fatalf("healthy volume: %v %v", h, err)
	}
	rm, err := rds.RemoveFile("pool/k8s/pvc-2/disk.img")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Run(ctx, []rds.Cmd{rm}); err != nil {
		t.Fatal(err)
	}
	h, err = e.d.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "pvc-2"})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 1 ||
		h.GetVolumeHealth().GetHealthStatuses()[0].GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE {
		t.Fatalf("volume without its file: %v %v", h, err)
	}
	_, err = e.d.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "pvc-none"})
	wantCode(t, err, codes.NotFound, "")
}
