package driver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// Issue 12 case 7: each wrong request gets the code that tells the CO what to do, and changes nothing.
func TestControllerCodesForBadRequests(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-big", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-big",
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		call    func() error
		code    codes.Code
		mention string
	}{
		{"basePath outside any pool", func() error {
			_, err := e.d.CreateVolume(ctx, createReq("pvc-a", map[string]string{"basePath": "/etc/passwd"}))
			return err
		}, codes.InvalidArgument, "basePath"},
		{"basePath on a pool the RDS does not have", func() error {
			_, err := e.d.CreateVolume(ctx, createReq("pvc-a", map[string]string{"basePath": "other/k8s"}))
			return err
		}, codes.InvalidArgument, "basePath"},
		{"capacity of a pool the RDS does not have", func() error {
			_, err := e.d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{"basePath": "other/k8s"}})
			return err
		}, codes.InvalidArgument, "basePath"},
		{"expand with a limit below the current size", func() error {
			_, err := e.d.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-big",
				CapacityRange: &csi.CapacityRange{RequiredBytes: gib, LimitBytes: gib + gib/2}})
			return err
		}, codes.OutOfRange, "never shrunk"},
		{"negative required capacity", func() error {
			r := createReq("pvc-a", nil)
			r.CapacityRange.RequiredBytes = -1
			_, err := e.d.CreateVolume(ctx, r)
			return err
		}, codes.InvalidArgument, "negative"},
		{"negative limit", func() error {
			r := createReq("pvc-a", nil)
			r.CapacityRange.LimitBytes = -gib
			_, err := e.d.CreateVolume(ctx, r)
			return err
		}, codes.InvalidArgument, "negative"},
		{"negative expansion", func() error {
			_, err := e.d.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-big",
				CapacityRange: &csi.CapacityRange{RequiredBytes: -1}})
			return err
		}, codes.InvalidArgument, "negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := readRDSState(t, e.sim)
			wantCode(t, c.call(), c.code, c.mention)
			wantUnchanged(t, e.sim, before)
			if got := readRDSState(t, e.sim).Disks["pvc-big"]; got == "" {
				t.Fatal("pvc-big is gone")
			}
		})
	}
}

// Issue 12 case 7: an RDS whose host key changed under a running driver is FailedPrecondition (a human
// must check and pin the new key; Unavailable would have the sidecars retry forever), the message keeps
// both fingerprints, and nothing is sent to the host that presented the wrong key.
func TestChangedHostKeyIsFailedPrecondition(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-before", nil)); err != nil {
		t.Fatal(err)
	}
	addr, pinned := e.sim.Addr(), e.sim.HostPublicKey()
	clientPub := filepath.Join(filepath.Dir(e.sim.ClientKeyFile()), "client_key.pub")
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	// Another box (another host key) answers at the same address and would accept the driver's login.
	impostor, err := rdssim.New(rdssim.Config{Listen: addr, DataDir: t.TempDir(), AuthorizedKeysFile: clientPub})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = impostor.Start(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { impostor.Close() })

	// The first call may still meet the old connection going down; the answer settles on the host key.
	for i := 0; ; i++ {
		_, err = e.d.CreateVolume(ctx, createReq("pvc-after", nil))
		if status.Code(err) != codes.Unavailable || i == 10 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantCode(t, err, codes.FailedPrecondition, "host key")
	msg := status.Convert(err).Message()
	for _, fp := range []string{ssh.FingerprintSHA256(pinned), ssh.FingerprintSHA256(impostor.HostPublicKey())} {
		if !strings.Contains(msg, fp) {
			t.Errorf("message %q lacks fingerprint %s", msg, fp)
		}
	}
	if cmds := impostor.Commands(); len(cmds) != 0 {
		t.Fatalf("commands reached a host with the wrong key: %q", cmds)
	}
	if st := readRDSState(t, impostor); len(st.Disks) != 0 || len(st.Subvolumes) != 0 {
		t.Fatalf("the impostor's state changed: %+v", st)
	}
}
