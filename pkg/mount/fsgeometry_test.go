package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// describeGeometry renders a parse result for the golden files, with the
// tail rule at a few group counts (on sparse_super the last of 2 and of 10
// groups holds a superblock backup, the last of 5 and of 9 does not).
func describeGeometry(g fsGeometry, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "blockSize=%d blocks=%d firstBlock=%d groupBlocks=%d\n", g.blockSize, g.blocks, g.firstBlock, g.groupBlocks)
	for _, groups := range []int64{2, 5, 9, 10} {
		fmt.Fprintf(&b, "minTail(%d groups)=%d\n", groups, g.minTail(groups))
	}
	return b.String()
}

// TestParseGeometryGolden runs the parsers over outputs (*.txt) captured from
// dumpe2fs 1.47.0 and xfs_io 6.1.0 on filesystems made for the purpose
// (named after how: block size, features, grown), and over tool errors.
func TestParseGeometryGolden(t *testing.T) {
	for _, tool := range []struct {
		dir   string
		parse func(string) (fsGeometry, error)
		min   int
	}{
		{"dumpe2fs", parseDumpe2fs, 8},
		{"xfs_io", parseXFSStatfs, 6},
	} {
		inputs, err := filepath.Glob(filepath.Join("testdata", tool.dir, "*.txt"))
		if err != nil || len(inputs) < tool.min {
			t.Fatalf("%s samples: %v, %v", tool.dir, inputs, err)
		}
		for _, in := range inputs {
			name := strings.TrimSuffix(filepath.Base(in), ".txt")
			t.Run(tool.dir+"/"+name, func(t *testing.T) {
				b, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join(tool.dir, name+".golden"), describeGeometry(tool.parse(string(b))))
			})
		}
	}
}

// TestGrownBlocks pins the growth rule on geometries like those of the
// samples: which device sizes give a larger filesystem, and how large. The
// root test TestNeedsResizeAgreesWithTheTools checks the same rule against
// resize2fs and xfs_growfs themselves.
func TestGrownBlocks(t *testing.T) {
	const mib = 1 << 20
	// ext4 as mkfs.ext4 makes it on 1 GiB: 4 KiB blocks, 128 MiB groups,
	// 512 inode blocks, 127 reserved GDT blocks, sparse_super.
	ext4 := func(blocks int64) fsGeometry {
		return fsGeometry{blockSize: 4096, blocks: blocks, groupBlocks: 32768,
			minTail: ext2fsOverhead(512, 127, 4096, 64, sparseSuperBackup)}
	}
	// xfs as mkfs.xfs makes it on 1 GiB: 4 AGs of 65536 blocks.
	xfs := func(blocks int64) fsGeometry {
		return fsGeometry{blockSize: 4096, blocks: blocks, groupBlocks: 65536,
			minTail: func(int64) int64 { return xfsMinAGBlocks }}
	}
	cases := []struct {
		name        string
		g           fsGeometry
		deviceBytes int64
		pageBlocks  int64
		want        int64
	}{
		{"ext4 on its own device", ext4(262144), 1024 * mib, 1, 262144},
		{"ext4 on a device twice as large", ext4(262144), 2048 * mib, 1, 524288},
		{"ext4 on a smaller device never shrinks", ext4(262144), 512 * mib, 1, 262144},
		{"ext4 fresh on 513 MiB: mkfs left the 1 MiB tail out, growth does too", ext4(131072), 513 * mib, 1, 131072},
		{"ext4 tail of 1023 blocks in group 4 (no backup: 564 needed)", ext4(131072), 131072*4096 + 1023*4096, 1, 132095},
		{"ext4 tail of 600 blocks in group 8 (no backup: 564 needed)", ext4(262144), 262144*4096 + 600*4096, 1, 262744},
		{"ext4 tail of 600 blocks in group 9 (a backup: 693 needed)", ext4(294912), 294912*4096 + 600*4096, 1, 294912},
		{"ext4 partial last group grows by any amount", ext4(76800), 76800*4096 + 4096, 1, 76801},
		{"ext4 partial last group filled, a short new one left out", ext4(76800), 98304*4096 + 100*4096, 1, 98304},
		{"a device size that is not whole blocks is cut to blocks", ext4(262144), 2048*mib + 4095, 1, 524288},
		{"1 KiB blocks on 4 KiB pages grow to whole pages", fsGeometry{blockSize: 1024, blocks: 65536, firstBlock: 1,
			groupBlocks: 8192, minTail: ext2fsOverhead(256, 256, 1024, 64, sparseSuperBackup)}, 70003 * 1024, 4, 70000},
		{"xfs on its own device", xfs(262144), 1024 * mib, 1, 262144},
		{"xfs: a new AG of 32 blocks is not made", xfs(262144), 262144*4096 + 32*4096, 1, 262144},
		{"xfs: a new AG of 64 blocks is", xfs(262144), 262144*4096 + 64*4096, 1, 262208},
		{"xfs: a partial last AG grows by one block", xfs(358400), 358400*4096 + 4096, 1, 358401},
		{"zero device size changes nothing", xfs(262144), 0, 1, 262144},
		{"a geometry without groups changes nothing", fsGeometry{blockSize: 4096, blocks: 10}, 1 << 30, 1, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.grownBlocks(tc.deviceBytes, tc.pageBlocks); got != tc.want {
				t.Fatalf("grownBlocks(%d bytes) = %d, want %d", tc.deviceBytes, got, tc.want)
			}
		})
	}
}

func TestSparseSuperBackup(t *testing.T) {
	var got []int64
	for g := int64(0); g < 400; g++ {
		if sparseSuperBackup(g) {
			got = append(got, g)
		}
	}
	want := []int64{0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups with backups: %v, want %v", got, want)
	}
}

// checkGrowth is what must hold for any geometry a parser accepts and any
// device size: growth never shrinks, and never goes past the device.
func checkGrowth(t *testing.T, g fsGeometry, deviceBytes int64) {
	t.Helper()
	if deviceBytes < 0 {
		deviceBytes = -deviceBytes
	}
	got := g.grownBlocks(deviceBytes, 4)
	if got < g.blocks {
		t.Fatalf("grownBlocks(%d) = %d shrinks %d blocks", deviceBytes, got, g.blocks)
	}
	if got > g.blocks && got > deviceBytes/g.blockSize {
		t.Fatalf("grownBlocks(%d) = %d is past the device's %d blocks", deviceBytes, got, deviceBytes/g.blockSize)
	}
}

func FuzzParseDumpe2fs(f *testing.F) {
	f.Add("Block count: 262144\nBlock size: 4096\nFirst block: 0\nBlocks per group: 32768\nInode blocks per group: 512\n", int64(2<<30))
	f.Add("Block count: 1\nBlock size: 1024\nFirst block: 1\nBlocks per group: 1\nInode blocks per group: 0\n"+
		"Group descriptor size: 1024\nReserved GDT blocks: 65535\nFilesystem features: sparse_super\n", int64(1<<62))
	f.Fuzz(func(t *testing.T, out string, deviceBytes int64) {
		g, err := parseDumpe2fs(out)
		if err != nil {
			return
		}
		if !strings.Contains(out, fmt.Sprint(g.blocks)) || !strings.Contains(out, fmt.Sprint(g.blockSize)) {
			t.Fatalf("parsed %d blocks of %d bytes, which the output does not say", g.blocks, g.blockSize)
		}
		checkGrowth(t, g, deviceBytes)
	})
}

func FuzzParseXFSStatfs(f *testing.F) {
	f.Add("geom.bsize = 4096\ngeom.agblocks = 65536\ngeom.datablocks = 262144\n", int64(2<<30))
	f.Add("geom.bsize = 512\ngeom.agblocks = 1\ngeom.datablocks = 1\n", int64(1<<62))
	f.Fuzz(func(t *testing.T, out string, deviceBytes int64) {
		g, err := parseXFSStatfs(out)
		if err != nil {
			return
		}
		if !strings.Contains(out, fmt.Sprint(g.blocks)) || !strings.Contains(out, fmt.Sprint(g.blockSize)) {
			t.Fatalf("parsed %d blocks of %d bytes, which the output does not say", g.blocks, g.blockSize)
		}
		checkGrowth(t, g, deviceBytes)
	})
}
