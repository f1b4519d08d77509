package rdssim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// checkGolden compares output byte-for-byte with testdata/name.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// fields builds quoted/bare fields from alternating key, value pairs; a value
// starting with `"` is quoted.
func fields(kv ...string) []field {
	var out []field
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		if strings.HasPrefix(v, `"`) {
			out = append(out, field{key: kv[i], value: strings.Trim(v, `"`), quoted: true})
		} else {
			out = append(out, field{key: kv[i], value: v})
		}
	}
	return out
}

// The real captures were taken on a terminal about 240 columns wide; the
// formatter must reproduce them exactly from the same items.
func TestFormatDetailReproducesCaptures(t *testing.T) {
	const captureWidth = 240
	fileDisk := item{index: 31, flags: "Bt", fields: fields(
		"type", "file", "slot", `"vm-storage-001"`, "slot-default", `""`, "parent", `""`, "fs", "-",
		"model", `"/raid10/vm-storage-001.img"`, "size", groupDigits(1099511627776), "mount-filesystem", "no",
		"mount-read-only", "no", "compress", "no", "sector-size", "512", "raid-master", "none",
		"nvme-tcp-export", "yes", "nvme-tcp-server-port", "4420",
		"nvme-tcp-server-nqn", `"nqn.2026-09.com.mikrotik:rds2216.vm-storage-001"`,
		"nvme-tcp-server-allow-host-name", `""`, "iscsi-export", "no", "nfs-sharing", "no", "smb-sharing", "no",
		"media-sharing", "no", "media-interface", "none", "swap", "no", "file-path", "/raid10/vm-storage-001.img",
		"file-size", humanSize(1099511627776), "file-offset", "0")}
	raid := item{index: 26, flags: "BM", fields: fields(
		"type", "raid", "slot", `"raid10"`, "slot-default", `""`, "parent", `""`, "fs-label", `"ocp-storage"`,
		"fs-uuid", `"40437dbc-2318-45dc-817b-b3bb95cf48ab"`, "fs", "xfs", "model", `"RAID0 striped"`,
		"size", groupDigits(16003143565312), "free", groupDigits(14789895307264), "total-inodes", groupDigits(1562806656),
		"free-inodes", groupDigits(1562806652), "use", "8%", "mount-point", `"raid10"`, "mount-filesystem", "yes",
		"mount-read-only", "no", "compress", "no", "sector-size", "512", "raid-type", "0", "raid-device-count", "4",
		"raid-max-component-size", "none", "raid-chunk-size", "256K", "raid-master", "none", "state", `"clean"`,
		"raid-uuid", `"eadca0af-ecff031c-239758ad-951a47de"`, "nvme-tcp-export", "no", "iscsi-export", "no",
		"nfs-sharing", "no", "smb-sharing", "no", "media-sharing", "no", "media-interface", "none", "swap", "no")}
	member := item{index: 27, flags: "Br", fields: fields(
		"type", "raid", "slot", `"raid10-m0"`, "slot-default", `""`, "parent", `""`, "fs", "-",
		"model", `"RAID1 mirrored"`, "size", groupDigits(4000786153472), "mount-filesystem", "no",
		"mount-read-only", "no", "compress", "no", "sector-size", "512", "raid-type", "1", "raid-device-count", "2",
		"raid-max-component-size", "none", "raid-master", "raid10", "raid-role", "0", "raid-member-failed", "no",
		"raid-member-state", `"0:in_sync"`, "state", `"clean"`, "raid-uuid", `"5715669c-43873157-0ebaaa3a-7104d138"`,
		"nvme-tcp-export", "no", "iscsi-export", "no", "nfs-sharing", "no", "smb-sharing", "no", "media-sharing", "no",
		"media-interface", "none", "swap", "no")}
	tests := []struct {
		capture string
		items   []item
	}{
		{"disk-print-detail-file-disk.txt", []item{fileDisk}},
		{"disk-print-detail-pool-xfs-raid.txt", []item{raid, member}},
	}
	for _, tc := range tests {
		t.Run(tc.capture, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "captures", tc.capture))
			if err != nil {
				t.Fatal(err)
			}
			got := formatDetail(diskFlags, tc.items, captureWidth)
			if !strings.HasSuffix(got, crlf) || strings.Count(got, "\n") != strings.Count(got, crlf) {
				t.Errorf("every line must end in \\r\\n: %q", got)
			}
			if unix := strings.ReplaceAll(got, crlf, "\n"); unix != string(want) {
				t.Errorf("formatter output differs from the capture\n--- got ---\n%s--- want ---\n%s", unix, want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		tokens []string
		width  int
		want   []string
	}{
		{"fits on one line", "1 B ", []string{"a=1", "b=2"}, 40, []string{"1 B a=1 b=2"}},
		{"exactly the width", "0 ", []string{"aaaa", "bbbb"}, 11, []string{"0 aaaa bbbb"}},
		{"one past the width wraps", "0 ", []string{"aaaa", "bbbbb"}, 11, []string{"0 aaaa", "  bbbbb"}},
		{"long token moves to a fresh line first", "10 Bt ", []string{"x=1", "p=" + strings.Repeat("z", 10)}, 18,
			[]string{"10 Bt x=1", "      p=zzzzzzzzzz"}},
		{"token longer than a fresh line breaks inside", "1 ", []string{"path=/pool/abcdefghijklmnop"}, 12,
			[]string{"1 path=/pool", "  /abcdefghi", "  jklmnop"}},
		{"wrap inside then continue greedily", "1 ", []string{"k=0123456789abc", "y=1"}, 10,
			[]string{"1 k=012345", "  6789abc", "  y=1"}},
		{"no tokens", "0 ", nil, 20, []string{"0 "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := wrap(tc.prefix, tc.tokens, tc.width)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("wrap = %q, want %q", got, tc.want)
			}
			for _, l := range got {
				if len(l) > tc.width {
					t.Errorf("line %q is longer than %d", l, tc.width)
				}
			}
		})
	}
}

// goldenSim is a simulator value with fixed identities, for formatter goldens
// that do not need a server.
func goldenSim(t *testing.T) (*Simulator, *state) {
	t.Helper()
	s := &Simulator{cfg: Config{DataDir: t.TempDir(), Width: 80}, poolName: "pool"}
	st := &state{Version: 1, Pool: poolRecord{Name: "pool", Label: "pool-fs", FS: "btrfs", Size: 100 << 30,
		UUID: "0a4b8c52-7e0e-4a43-9d2f-3f6c1d1e2a10", RAIDUUID: "1f2e3d4c-5b6a7988-a1b2c3d4-e5f60718"}}
	st.Disks = []*diskRecord{
		{Index: 1, Slot: "pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", Size: 10 << 30, MountFilesystem: false,
			FilePath: "pool/k8s/pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/disk.img", Export: true, Port: 4420,
			NQN: "nqn.2000-02.com.mikrotik:pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{Index: 12, Slot: "legacy", Size: 1536 << 20, MountFilesystem: true, FilePath: "pool/legacy.img", Port: 4420, NQN: "legacy"},
	}
	created := time.Date(2025, 11, 11, 14, 32, 41, 0, time.Local)
	st.Subvolumes = []*subvolumeRecord{
		{Index: 0, ID: 256, Name: "k8s/pvc-1", FS: "pool", UUID: "5e0e8a52-3c1f-4d7e-9b8a-2f1e0d9c8b7a", Created: created},
		{Index: 1, ID: 257, Name: "k8s-snap/snap-1", FS: "pool", Parent: "k8s/pvc-1", ReadOnly: true,
			UUID: "6f1f9b63-4d20-4e8f-8c9b-3a2f1e0d9c8b", Created: created.Add(time.Hour)},
	}
	return s, st
}

func TestFormatGolden(t *testing.T) {
	s, st := goldenSim(t)
	disks := append([]item{s.poolItem(st, 97<<30)}, s.diskItem(st.Disks[0]), s.diskItem(st.Disks[1]))
	subs := s.subvolumeItems(st)
	pathSim := &Simulator{cfg: s.cfg, poolName: s.poolName}
	pathSim.cfg.SubvolumeNames = NamePath
	pathSubs := pathSim.subvolumeItems(st)
	tests := []struct {
		golden string
		out    string
	}{
		{"disk-detail-80.golden", formatDetail(diskFlags, disks, 80)},
		{"disk-detail-narrow-50.golden", formatDetail(diskFlags, disks[1:2], 50)},
		{"disk-detail-empty.golden", formatDetail(diskFlags, nil, 80)},
		{"disk-terse.golden", formatTerse(diskFlags, disks)},
		{"disk-table.golden", formatTable(diskFlags, disks, []string{"slot", "type", "fs", "size", "free", "file-path"})},
		{"subvolume-detail.golden", formatDetail(subvolumeFlags, subs, 80)},
		{"subvolume-detail-plain.golden", formatDetail(subvolumeFlags, subs[:1], 80)},
		{"subvolume-detail-path.golden", formatDetail(subvolumeFlags, pathSubs, 80)},
		{"filesystem-detail.golden", formatDetail(nil, s.filesystemItems(st), 80)},
		{"monitor-traffic.golden", formatMonitor(trafficSample())},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) { checkGolden(t, tc.golden, tc.out) })
	}
}

func TestFormatFileGolden(t *testing.T) {
	s, st := goldenSim(t)
	pool := s.poolDir()
	stamp := time.Date(2025, 11, 11, 16, 47, 7, 0, time.Local)
	for _, d := range []string{"k8s/pvc-1", "k8s/an-unusually-long-volume-name-0123456789abcdef"} {
		if err := os.MkdirAll(filepath.Join(pool, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"k8s/pvc-1/disk.img", "k8s/an-unusually-long-volume-name-0123456789abcdef/disk.img", "notes"} {
		p := filepath.Join(pool, f)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 10<<30); err != nil {
			t.Fatal(err)
		}
	}
	_ = filepath.Walk(pool, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, stamp, stamp) })
	checkGolden(t, "file-detail.golden", formatDetail(nil, s.fileItems(st), 80))
}
