package rdssim

import (
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
)

// TestNarrowedListsMatchFullLists: for every filter, the narrowed disk and file lists, once filtered,
// are exactly what filtering the full lists gives (same items, numbers and fields).
func TestNarrowedListsMatchFullLists(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	for _, id := range []string{"a", "b", "c"} {
		mustRun(t, c, createScript(id))
	}
	mustRun(t, c, `/disk add type=file file-path=pool/flat/d.img file-size=1M slot=d`)
	for _, where := range []string{
		`slot="b"`, `slot=b`, `slot="pool"`, `slot="none"`, `slot="a" and nvme-tcp-export`, `nvme-tcp-export and slot="c"`,
		`slot="a" or slot="b"`, `!(slot="a")`, `slot!="a"`, `slot~"^[ab]"`, `size>0`, `type=file`,
	} {
		t.Run("disk "+where, func(t *testing.T) {
			e := parseWhere(t, "/disk print detail where "+where)
			s.mu.RLock()
			want, got := filter(s.diskItems(s.st), e), filter(s.diskItemsWhere(s.st, e), e)
			s.mu.RUnlock()
			if !reflect.DeepEqual(itemsText(want), itemsText(got)) {
				t.Errorf("narrowed %v, full %v", itemsText(got), itemsText(want))
			}
		})
	}
	for _, where := range []string{
		`name="pool/k8s/b/disk.img"`, `name="/pool/k8s/b/disk.img"`, `name=pool/flat/d.img`, `name="pool/k8s"`,
		`name="pool/none"`, `name="pool"`, `name="pool/k8s/a" and type=directory`, `name~"disk"`, `type=directory`,
	} {
		t.Run("file "+where, func(t *testing.T) {
			e := parseWhere(t, "/file print detail where "+where)
			s.mu.RLock()
			want, got := filter(s.fileItems(s.st), e), filter(s.fileItemsWhere(s.st, e, true), e)
			found := filter(s.fileItemsWhere(s.st, e, false), e) // a find: the same items, numbers aside
			s.mu.RUnlock()
			if !reflect.DeepEqual(itemsText(want), itemsText(got)) {
				t.Errorf("narrowed %v, full %v", itemsText(got), itemsText(want))
			}
			if len(found) != len(want) || (len(found) == 1 && found[0].name != want[0].name) {
				t.Errorf("find: %v, full list %v", itemsText(found), itemsText(want))
			}
		})
	}
}

func parseWhere(t *testing.T, script string) expr {
	t.Helper()
	stmts, err := parseScript(script)
	if err != nil || len(stmts) != 1 {
		t.Fatalf("parse %q: %v", script, err)
	}
	return stmts[0].where
}

func itemsText(items []item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, fmt.Sprintf("%d %s %v", it.index, it.flags, it.fields))
	}
	return out
}

// TestConcurrentMutationsAreAllSaved: many creates at once (their state.json writes grouped) all
// survive a restart.
func TestConcurrentMutationsAreAllSaved(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, Config{DataDir: dir})
	var wg sync.WaitGroup
	const n = 40
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialErr(s, "admin", s.ClientKeyFile())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if out, status, err := runErr(c, createScript(fmt.Sprintf("v%02d", i))); err != nil || status != 0 {
				t.Errorf("create %d: %v %d %s", i, err, status, out)
			}
		}()
	}
	wg.Wait()
	s.Close()
	again := startSim(t, Config{DataDir: dir})
	again.mu.RLock()
	defer again.mu.RUnlock()
	if len(again.st.Disks) != n || len(again.st.Subvolumes) != n {
		t.Errorf("after a restart: %d disks and %d subvolumes, want %d of each", len(again.st.Disks), len(again.st.Subvolumes), n)
	}
}

// TestSpaceCheckSeesSnapshotCopies: the kept allocation of files that are no disk's is dropped when a
// snapshot copies data, so the next add is checked against the copy too.
func TestSpaceCheckSeesSnapshotCopies(t *testing.T) {
	s := startSim(t, Config{PoolSize: 1 << 30})
	c := dial(t, s)
	mustRun(t, c, createScript("a")) // 1G sparse: fits an empty 1 GiB pool, and fills the kept allocation
	host, err := s.HostPath("pool/k8s/a/disk.img")
	if err != nil {
		t.Fatal(err)
	}
	writeData(t, host, 300<<20) // through the data path: seen by every check
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=a name=k8s/snap read-only=yes`)
	// 300 MiB in a, 300 MiB in the copy: 424 MiB are left.
	if out, status := run(t, c, `/disk add type=file file-path=pool/b.img file-size=500M slot=b`); status != 1 ||
		out != "failure: not enough space"+crlf {
		t.Errorf("an add larger than what the snapshot left: %d %q", status, out)
	}
	mustRun(t, c, `/disk add type=file file-path=pool/b.img file-size=400M slot=b`)
}

func writeData(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for written := 0; written < n; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
