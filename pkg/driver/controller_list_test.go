package driver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// addFlatDisks puts n volumes on the RDS in batches of one script each, faster than n CreateVolume calls:
// flat-layout files (pool/k8s/<id>.img), which the driver lists like any other of its volumes.
func addFlatDisks(tb testing.TB, client *rds.Client, ids []string) {
	tb.Helper()
	for len(ids) > 0 {
		n := min(len(ids), 20) // each add saves the whole state: a batch must end within the 2s command timeout
		var steps []rds.Cmd
		for _, id := range ids[:n] {
			c, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: id, FilePath: "pool/k8s/" + id + ".img", SizeBytes: gib, NQN: volume.NQN(id)})
			if err != nil {
				tb.Fatal(err)
			}
			steps = append(steps, c)
		}
		if _, err := client.Run(context.Background(), steps); err != nil {
			tb.Fatal(err)
		}
		ids = ids[n:]
	}
}

func volumeIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// walkVolumes pages through ListVolumes; between pages it calls between(page number).
func walkVolumes(tb testing.TB, d *Driver, pageSize int32, between func(page int)) []string {
	tb.Helper()
	var seen []string
	token := ""
	for page := 0; ; page++ {
		r, err := d.ListVolumes(context.Background(), &csi.ListVolumesRequest{MaxEntries: pageSize, StartingToken: token})
		if err != nil {
			tb.Fatalf("page %d: %v", page, err)
		}
		for _, en := range r.GetEntries() {
			seen = append(seen, en.GetVolume().GetVolumeId())
		}
		if token = r.GetNextToken(); token == "" {
			return seen
		}
		if between != nil {
			between(page)
		}
	}
}

func diskReads(cmds []string) int {
	n := 0
	for _, c := range cmds {
		if strings.HasPrefix(c, "/disk print") {
			n++
		}
	}
	return n
}

// Issue 12 case 8: a paged walk reads the disks once, not once per page, and stays consistent while volumes
// come and go: every volume that exists throughout the walk is listed exactly once, in id order.
func TestListVolumesWalkReadsOnceAndStaysConsistent(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ids := volumeIDs("pvc-", 60)
	addFlatDisks(t, e.client, ids)

	e.sim.ResetCommands()
	seen := walkVolumes(t, e.d, 7, nil)
	if !slices.Equal(seen, ids) {
		t.Fatalf("walk listed %d volumes, want the %d there are: %v", len(seen), len(ids), seen)
	}
	if n := diskReads(e.sim.Commands()); n != 1 {
		t.Fatalf("a walk of %d pages read the disks %d times, want once", (len(ids)+6)/7, n)
	}

	// Volumes come and go between pages: ones already listed and ones still ahead are deleted, new ones
	// are made before and after the cursor. The walk must not repeat or skip any volume that stays.
	ctx := context.Background()
	gone := map[string]bool{}
	seen = walkVolumes(t, e.d, 7, func(page int) {
		for _, id := range []string{ids[page*7], ids[len(ids)-1-page]} { // listed already / still ahead
			if _, err := e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
				t.Fatal(err)
			}
			gone[id] = true
		}
		addFlatDisks(t, e.client, []string{fmt.Sprintf("pvc-%04da", page*7), fmt.Sprintf("pvc-%04dz", 9999-page)})
	})
	count := map[string]int{}
	for _, id := range seen {
		count[id]++
	}
	for _, id := range ids {
		if !gone[id] && count[id] != 1 {
			t.Errorf("volume %s, there throughout the walk, was listed %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("volume %s listed %d times", id, n)
		}
	}
	if !slices.IsSorted(seen) {
		t.Errorf("the walk is not in id order: %v", seen)
	}

	// A token outlives the controller's memory of its walk (a restart, another replica): the next page is
	// cut from a fresh read at the same place.
	r, err := e.d.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 5})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newControllerEnvOn(t, e)
	rest := walkFrom(t, fresh, r.GetNextToken())
	first := []string{}
	for _, en := range r.GetEntries() {
		first = append(first, en.GetVolume().GetVolumeId())
	}
	all := walkVolumes(t, e.d, 0, nil)
	if got := append(first, rest...); !slices.Equal(got, all) {
		t.Fatalf("a walk continued by a fresh controller gave %v, want %v", got, all)
	}
}

// newControllerEnvOn is a second controller (its own memory) on e's RDS.
func newControllerEnvOn(t *testing.T, e *controllerEnv) *Driver {
	t.Helper()
	loc, _ := volume.ParseLocation("pool/k8s")
	d, err := New(Options{Mode: ModeController, DriverName: DefaultDriverName, DefaultLocation: loc, NVMeAddress: "10.0.0.5"},
		Deps{Volumes: volume.NewManager(e.client), Prober: e.client, Attachments: e.d.attach})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func walkFrom(t *testing.T, d *Driver, token string) []string {
	t.Helper()
	var out []string
	for token != "" {
		r, err := d.ListVolumes(context.Background(), &csi.ListVolumesRequest{MaxEntries: 5, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range r.GetEntries() {
			out = append(out, en.GetVolume().GetVolumeId())
		}
		token = r.GetNextToken()
	}
	return out
}

// BenchmarkListVolumesWalk is a full paged walk, as the external-health-monitor or a CO makes it, over 2,000
// volumes in pages of 100 (issue 12 case 8 measured 11-16 s when every page read every disk).
func BenchmarkListVolumesWalk(b *testing.B) {
	e := newControllerEnv(b, rdssim.Config{})
	ids := volumeIDs("pvc-", 2000)
	addFlatDisks(b, e.client, ids)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := walkVolumes(b, e.d, 100, nil); len(got) != len(ids) {
			b.Fatalf("walk listed %d of %d", len(got), len(ids))
		}
	}
	b.StopTimer()
	e.sim.ResetCommands()
	walkVolumes(b, e.d, 100, nil)
	b.ReportMetric(float64(diskReads(e.sim.Commands())), "disk-reads/walk")
}
