package rds

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// parseCapture parses one of the routeros package's golden inputs (real RDS captures among them).
func parseCapture(t *testing.T, name string) []routeros.Item {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "routeros", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	items, err := routeros.ParseDetail(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestFilesystemsFrom reads `/disk/btrfs/filesystem/print detail` in the simulator's shape (label, uuid and
// the devices the manual's finds name) and with a comma list of devices, as a multi-disk filesystem would
// print them (UNVERIFIED).
func TestFilesystemsFrom(t *testing.T) {
	out := " 0   label=\"raid10-fs\" uuid=\"0a4b8c52-7e0e-4a43-9d2f-3f6c1d1e2a10\" devs=raid10\r\n" +
		"     present-devs=raid10 data=single:1 meta=dup:1 system=dup:1\r\n \r\n" +
		" 1   label=\"BtrfsRAID\" devs=sata1,sata2 present-devs=sata1\r\n"
	items, err := routeros.ParseDetail(out)
	if err != nil {
		t.Fatal(err)
	}
	got := FilesystemsFrom(items)
	if len(got) != 2 || got[0].Label != "raid10-fs" || got[0].UUID != "0a4b8c52-7e0e-4a43-9d2f-3f6c1d1e2a10" ||
		!reflect.DeepEqual(got[0].Devices, []string{"raid10"}) || got[1].Label != "BtrfsRAID" ||
		!reflect.DeepEqual(got[1].Devices, []string{"sata1", "sata2"}) {
		t.Fatalf("filesystems: %+v", got)
	}
}

func TestDisksFromCaptures(t *testing.T) {
	fileDisk, err := DisksFrom(parseCapture(t, "disk-print-detail-file-disk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := Disk{Index: 31, Flags: "Bt", Type: "file", Slot: "vm-storage-001", FilePath: "raid10/vm-storage-001.img",
		SizeBytes: 1099511627776, NQN: "nqn.2026-09.com.mikrotik:rds2216.vm-storage-001", Port: 4420, Exported: true,
		AllowHostShown: true} // a real RDS prints nvme-tcp-server-allow-host-name="" for an open export
	got := fileDisk[0]
	got.Props = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("file disk\n got %+v\nwant %+v", got, want)
	}

	pools, err := DisksFrom(parseCapture(t, "disk-print-detail-pool-xfs-raid.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := pools[0]
	if pool.FS != "xfs" || pool.MountPoint != "raid10" || pool.SizeBytes != 16003143565312 ||
		pool.FreeBytes != 14789895307264 || !pool.MountFilesystem || pool.Exported || pool.Type != "raid" {
		t.Errorf("pool: %+v", pool)
	}
	if member := pools[1]; member.FS != "" || member.Flags != "Br" || member.Props["raid-master"] != "raid10" {
		t.Errorf("raid member: %+v", member)
	}

	narrow, err := DisksFrom(parseCapture(t, "disk-print-detail-narrow-wrap.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if d := narrow[0]; d.Slot != "pvc-test-123" || d.SizeBytes != 50<<30 || d.FilePath != "storage-pool/test.img" ||
		!d.MountFilesystem || !d.Exported || d.Index != -1 {
		t.Errorf("narrow capture: %+v", d)
	}
}

func TestDisksFromFallbacksAndErrors(t *testing.T) {
	noSize := []routeros.Item{{Index: 0, Flags: "B", Props: map[string]string{"slot": "a", "file-size": "1.5GiB"}}}
	d, err := DisksFrom(noSize)
	if err != nil || d[0].SizeBytes != 3<<29 || d[0].Exported {
		t.Errorf("file-size fallback: %+v, %v", d, err)
	}
	flagOnly := []routeros.Item{{Index: 0, Flags: "Bt", Props: map[string]string{"slot": "a"}}}
	if d, _ := DisksFrom(flagOnly); !d[0].Exported {
		t.Error("the t flag alone should mark the disk exported")
	}
	for name, props := range map[string]map[string]string{
		"size":  {"slot": "a", "size": "lots"},
		"free":  {"slot": "a", "free": "1.2.3"},
		"port":  {"slot": "a", "nvme-tcp-server-port": "http"},
		"fsize": {"slot": "a", "file-size": "big"},
	} {
		if _, err := DisksFrom([]routeros.Item{{Props: props}}); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", name, err)
		}
	}
}

func TestFilesFrom(t *testing.T) {
	files, err := FilesFrom(parseCapture(t, "file-print-detail.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("%d files", len(files))
	}
	want := []File{
		{Name: "pool/k8s", Type: "directory", LastModified: time.Date(2025, 11, 11, 16, 47, 7, 0, time.UTC)},
		{Name: "pool/k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f/disk.img", Type: ".img", SizeBytes: 10 << 30,
			LastModified: time.Date(2025, 11, 11, 14, 32, 41, 0, time.UTC)},
		{Name: "pool/k8s/pvc-small/disk.img", Type: ".img", SizeBytes: 1 << 30,
			LastModified: time.Date(2025, 11, 12, 9, 3, 0, 0, time.UTC)},
		{Name: "storage-pool/metal-csi/x.img", Type: ".img", SizeBytes: 10 << 30,
			LastModified: time.Date(2025, 11, 11, 14, 32, 41, 0, time.UTC)},
	}
	for i, w := range []int{0, 2, 3, 4} {
		if files[w] != want[i] {
			t.Errorf("file %d\n got %+v\nwant %+v", w, files[w], want[i])
		}
	}
	bad := []routeros.Item{{Props: map[string]string{"name": "x", "last-modified": "someday"}}}
	if _, err := FilesFrom(bad); !errors.Is(err, ErrProtocol) {
		t.Errorf("bad date: %v", err)
	}
}

func TestSubvolumesFrom(t *testing.T) {
	subs, err := SubvolumesFrom(parseCapture(t, "subvolume-print-detail.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Subvolume{
		{Name: "k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", FS: "pool", UUID: "0f5c2a7e-91b3-4d0a-8c1e-2b7d9e4f6a13",
			CreationTime: time.Date(2025, 11, 11, 14, 32, 40, 0, time.UTC)},
		{Name: "k8s-snap/snap-7c1d.pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", FS: "pool",
			Parent: "k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", ReadOnly: true, Snapshot: true,
			UUID: "a41e3b88-0c2d-4f6e-9a7b-5d3c1e0f2b94", CreationTime: time.Date(2025, 11, 11, 15, 0, 2, 0, time.UTC)},
	}
	if len(subs) != len(want) {
		t.Fatalf("%d subvolumes", len(subs))
	}
	for i := range want {
		if subs[i] != want[i] {
			t.Errorf("subvolume %d\n got %+v\nwant %+v", i, subs[i], want[i])
		}
	}
}
