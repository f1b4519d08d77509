package routeros

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parsers' current output")

// TestGolden parses every testdata/*.txt (kv-*.txt with ParseKeyValueLines, the rest with ParseDetail)
// and compares the JSON of the result with testdata/*.golden.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 12 {
		t.Fatalf("found %d golden inputs, expected at least 12", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if strings.HasPrefix(name, "kv-") {
				got, err = ParseKeyValueLines(string(raw))
			} else {
				got, err = ParseDetail(string(raw))
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			js, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, '\n')
			golden := strings.TrimSuffix(in, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, js, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(js, want) {
				t.Errorf("%s differs from %s:\n%s", in, golden, js)
			}
		})
	}
}

// TestGoldenFacts pins the facts a reviewer of the golden files would check first, so a careless -update
// cannot bless a wrong parse of the captures.
func TestGoldenFacts(t *testing.T) {
	tests := []struct {
		file  string
		item  int
		index int
		flags string
		props map[string]string
	}{
		{"disk-print-detail-file-disk.txt", 0, 31, "Bt", map[string]string{
			"slot": "vm-storage-001", "size": "1 099 511 627 776", "file-path": "/raid10/vm-storage-001.img",
			"nvme-tcp-server-nqn": "nqn.2026-09.com.mikrotik:rds2216.vm-storage-001", "slot-default": "",
			"file-offset": "0", "swap": "no", "model": "/raid10/vm-storage-001.img"}},
		{"disk-print-detail-narrow-wrap.txt", 0, -1, "", map[string]string{
			"type": "file", "slot": "pvc-test-123", "size": "53 687 091 200", "file-size": "50.0GiB",
			"file-offset": "0", "mount-filesystem": "yes"}},
		{"disk-print-detail-pool-xfs-raid.txt", 0, 26, "BM", map[string]string{
			"fs": "xfs", "mount-point": "raid10", "free": "14 789 895 307 264", "size": "16 003 143 565 312",
			"state": "clean", "swap": "no"}},
		{"disk-print-detail-pool-xfs-raid.txt", 1, 27, "Br", map[string]string{
			"slot": "raid10-m0", "raid-member-state": "0:in_sync", "media-interface": "none"}},
		{"narrow-80col-path-wrap.txt", 0, 0, "Bt", map[string]string{
			"model":               "/pool/k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f/disk.img",
			"file-path":           "/pool/k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f/disk.img",
			"nvme-tcp-server-nqn": "nqn.2000-02.com.mikrotik:pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f",
			"size":                "10 737 418 240", "file-offset": "0"}},
		{"crlf.txt", 1, 1, "B", map[string]string{"slot": "pvc-other", "nvme-tcp-export": "no", "file-offset": "0"}},
		{"right-aligned-index.txt", 1, 9, "XBt", map[string]string{"slot": "pvc-09"}},
		{"right-aligned-index.txt", 2, 10, "Bt", map[string]string{
			"nvme-tcp-server-nqn": "nqn.2000-02.com.mikrotik:pvc-10", "nvme-tcp-export": "yes"}},
		{"grouped-number-wrap.txt", 0, 0, "BM", map[string]string{"free": "14 789 895307 264", "use": "8%"}},
		{"grouped-number-wrap.txt", 1, 1, "Br", map[string]string{"size": "4 000 786 153 472"}},
		{"file-print-detail.txt", 2, 2, "", map[string]string{"size": "10.0GiB", "type": ".img"}},
		{"file-print-detail.txt", 4, 4, "", map[string]string{"size": "10.0GiB", "type": ".img",
			"last-modified": "2025-11-1114:32:41"}},
		{"subvolume-print-detail.txt", 1, 1, "Sr", map[string]string{
			"parent": "k8s/pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f", "read-only": "yes",
			"creation-time": "nov/11/2025 15:00:02"}},
		{"comment-and-escapes.txt", 0, 0, "X", map[string]string{
			"comment": `made by hand, "do not touch"`, "model": `a "quoted" \path\ with spaceA`, "size": "4 096"}},
	}
	for _, tc := range tests {
		raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		items, err := ParseDetail(string(raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if tc.item >= len(items) {
			t.Fatalf("%s: %d items, want item %d", tc.file, len(items), tc.item)
		}
		it := items[tc.item]
		if it.Index != tc.index || it.Flags != tc.flags {
			t.Errorf("%s item %d: index %d flags %q, want %d %q", tc.file, tc.item, it.Index, it.Flags, tc.index, tc.flags)
		}
		for k, want := range tc.props {
			if got, ok := it.Props[k]; !ok || got != want {
				t.Errorf("%s item %d: %s = %q (present %v), want %q", tc.file, tc.item, k, got, ok, want)
			}
		}
	}
}
