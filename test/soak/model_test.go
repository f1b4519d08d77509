package soak

import (
	"context"
	"fmt"
	"math/rand"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

const gib = int64(1) << 30

// The model is what the CO knows: the volumes and snapshots whose creation was acknowledged and that were
// not deleted since (an acknowledged delete), and the operations still being retried.

type opKind string

const (
	opCreate         opKind = "create"
	opRestore        opKind = "restore"
	opSnapshot       opKind = "snapshot"
	opExpand         opKind = "expand"
	opDeleteVolume   opKind = "delete-volume"
	opDeleteSnapshot opKind = "delete-snapshot"
	// The hostile ones: a mistyped static PV handle naming the admin's subvolume, and a PVC whose name is
	// the slot of another tool's disk. They must be refused and change nothing (the final check proves it).
	opDeleteUserData opKind = "delete-user-subvolume"
	opCreateForeign  opKind = "create-over-foreign-disk"
)

// hostileWant is the code each hostile op must get.
var hostileWant = map[opKind]codes.Code{opDeleteUserData: codes.FailedPrecondition, opCreateForeign: codes.AlreadyExists}

type op struct {
	kind   opKind
	name   string // the volume or snapshot the op is about
	base   string // basePath parameter ("": the controller's default)
	size   int64  // bytes asked for
	source string // the snapshot of a restore, the volume of a snapshot
	got    int64  // bytes the answer reported
}

func (o *op) String() string {
	return fmt.Sprintf("%s %s (base %q, %d bytes, source %q)", o.kind, o.name, o.base, o.size, o.source)
}

type vol struct {
	base string // effective base path
	size int64
}

type snap struct {
	source string
	size   int64
}

type model struct {
	vols    map[string]*vol
	snaps   map[string]*snap
	pending []*op
}

func newModel() *model { return &model{vols: map[string]*vol{}, snaps: map[string]*snap{}} }

// busy is every name a pending op is about: the CO would not act on them until the op is done.
func (m *model) busy() map[string]bool {
	b := map[string]bool{}
	for _, o := range m.pending {
		b[o.name] = true
		if o.source != "" {
			b[o.source] = true
		}
	}
	return b
}

func pick[V any](rng *rand.Rand, items map[string]V, busy map[string]bool) string {
	var free []string
	for _, k := range sortedKeys(items) {
		if !busy[k] {
			free = append(free, k)
		}
	}
	if len(free) == 0 {
		return ""
	}
	return free[rng.Intn(len(free))]
}

// randomOp is a new operation on the model's state, or nil when the one drawn has nothing to act on.
func (m *model) randomOp(rng *rand.Rand, basePaths []string) *op {
	busy := m.busy()
	base := basePaths[rng.Intn(len(basePaths))]
	switch r := rng.Intn(100); {
	case r < 2:
		return &op{kind: opDeleteUserData, name: "userdata"}
	case r < 4:
		return &op{kind: opCreateForeign, name: "foreign-1", base: base, size: gib}
	case r < 30:
		return &op{kind: opCreate, name: fmt.Sprintf("pvc-%08x", rng.Uint32()), base: base, size: gib + rng.Int63n(2*gib)}
	case r < 45:
		if s := pick(rng, m.snaps, busy); s != "" {
			return &op{kind: opRestore, name: fmt.Sprintf("pvc-%08x", rng.Uint32()), base: base, size: m.snaps[s].size, source: s}
		}
	case r < 60:
		if v := pick(rng, m.vols, busy); v != "" {
			return &op{kind: opSnapshot, name: fmt.Sprintf("snap-%08x", rng.Uint32()), source: v}
		}
	case r < 75:
		if v := pick(rng, m.vols, busy); v != "" {
			return &op{kind: opExpand, name: v, size: m.vols[v].size + gib}
		}
	case r < 90:
		if v := pick(rng, m.vols, busy); v != "" {
			return &op{kind: opDeleteVolume, name: v}
		}
	default:
		if s := pick(rng, m.snaps, busy); s != "" {
			return &op{kind: opDeleteSnapshot, name: s}
		}
	}
	return nil
}

func effectiveBase(base string) string {
	if base == "" {
		return "pool/k8s"
	}
	return base
}

func (m *model) apply(o *op) {
	switch o.kind {
	case opCreate, opRestore:
		m.vols[o.name] = &vol{base: effectiveBase(o.base), size: o.got}
	case opSnapshot:
		m.snaps[o.name] = &snap{source: o.source, size: o.got}
	case opExpand:
		m.vols[o.name].size = o.got
	case opDeleteVolume:
		delete(m.vols, o.name)
	case opDeleteSnapshot:
		delete(m.snaps, o.name)
	}
}

var fsCap = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

func (o *op) send(ctx context.Context, cc csi.ControllerClient) error {
	switch o.kind {
	case opCreate, opRestore, opCreateForeign:
		req := &csi.CreateVolumeRequest{Name: o.name, CapacityRange: &csi.CapacityRange{RequiredBytes: o.size},
			VolumeCapabilities: []*csi.VolumeCapability{fsCap}}
		if o.base != "" {
			req.Parameters = map[string]string{"basePath": o.base}
		}
		if o.kind == opRestore {
			req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: o.source}}}
		}
		r, err := cc.CreateVolume(ctx, req)
		if err != nil {
			return err
		}
		if r.GetVolume().GetVolumeId() != o.name || r.GetVolume().GetCapacityBytes() < o.size {
			return fmt.Errorf("%s answered %v", o, r.GetVolume())
		}
		o.got = r.GetVolume().GetCapacityBytes()
	case opSnapshot:
		r, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: o.name, SourceVolumeId: o.source})
		if err != nil {
			return err
		}
		if r.GetSnapshot().GetSnapshotId() != o.name || r.GetSnapshot().GetSourceVolumeId() != o.source {
			return fmt.Errorf("%s answered %v", o, r.GetSnapshot())
		}
		o.got = r.GetSnapshot().GetSizeBytes()
	case opExpand:
		r, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: o.name,
			CapacityRange: &csi.CapacityRange{RequiredBytes: o.size}, VolumeCapability: fsCap})
		if err != nil {
			return err
		}
		if r.GetCapacityBytes() < o.size {
			return fmt.Errorf("%s answered %d bytes", o, r.GetCapacityBytes())
		}
		o.got = r.GetCapacityBytes()
	case opDeleteVolume, opDeleteUserData:
		_, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: o.name})
		return err
	case opDeleteSnapshot:
		_, err := cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: o.name})
		return err
	}
	return nil
}
