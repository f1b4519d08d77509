package driver

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// rdsState is what a simulator holds, read from its data directory (state.json and the pool's files), not
// through the driver or RouterOS: the disks by slot with their files, the subvolumes, and every file and
// directory under the pool.
type rdsState struct {
	Disks      map[string]string // slot -> file path
	Subvolumes []string          // pool-relative names
	Files      []string          // pool-relative paths, directories too
}

func readRDSState(t *testing.T, sim *rdssim.Simulator) rdsState {
	t.Helper()
	poolDir, err := sim.HostPath("pool")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Dir(filepath.Dir(poolDir)) // DataDir/fs/<pool>
	raw, err := os.ReadFile(filepath.Join(dataDir, "state.json"))
	var st struct {
		Disks []struct {
			Slot, FilePath string
		}
		Subvolumes []struct{ Name string }
	}
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("reading the simulator's state: %v", err)
	}
	out := rdsState{Disks: map[string]string{}}
	for _, d := range st.Disks {
		out.Disks[d.Slot] = d.FilePath
	}
	for _, s := range st.Subvolumes {
		out.Subvolumes = append(out.Subvolumes, s.Name)
	}
	slices.Sort(out.Subvolumes)
	_ = filepath.WalkDir(poolDir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != poolDir {
			rel, _ := filepath.Rel(poolDir, p)
			out.Files = append(out.Files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out.Files)
	return out
}

func (s rdsState) equal(o rdsState) bool {
	if len(s.Disks) != len(o.Disks) {
		return false
	}
	for k, v := range s.Disks {
		if o.Disks[k] != v {
			return false
		}
	}
	return slices.Equal(s.Subvolumes, o.Subvolumes) && slices.Equal(s.Files, o.Files)
}

// wantUnchanged fails the test when the simulator's state differs from before.
func wantUnchanged(t *testing.T, sim *rdssim.Simulator, before rdsState) {
	t.Helper()
	if after := readRDSState(t, sim); !before.equal(after) {
		t.Fatalf("the RDS changed:\nbefore %+v\nafter  %+v", before, after)
	}
}
