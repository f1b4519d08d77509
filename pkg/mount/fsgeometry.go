package mount

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// fsGeometry is what decides how far a filesystem grows on a device: its
// size and how it is cut into groups (ext block groups, xfs allocation
// groups). Sizes are in filesystem blocks.
type fsGeometry struct {
	blockSize   int64
	blocks      int64
	firstBlock  int64 // ext: the block group 0 starts at (1 with 1 KiB blocks)
	groupBlocks int64
	// minTail is the size below which the growth tool does not make a new
	// last group, as a function of the group count after the growth.
	minTail func(groups int64) int64
}

// xfsMinAGBlocks is the kernel's XFS_MIN_AG_BLOCKS: xfs_growfs leaves a tail
// shorter than this unused rather than make a last allocation group of it.
const xfsMinAGBlocks = 64

// grownBlocks returns the size in blocks that growing the filesystem onto a
// device of deviceBytes gives: the whole device, except a new last group too
// small to hold its own bookkeeping, which the tools leave out. It is never
// less than the current size.
//
// pageBlocks is resize2fs' rounding: with blocks smaller than a memory page
// it grows ext to a whole number of pages (1 for xfs, or when blocks are
// page-sized).
func (g fsGeometry) grownBlocks(deviceBytes, pageBlocks int64) int64 {
	if g.blockSize <= 0 || g.groupBlocks <= 0 || deviceBytes <= 0 {
		return g.blocks
	}
	n := deviceBytes / g.blockSize
	if pageBlocks > 1 {
		n -= n % pageBlocks
	}
	if n <= g.blocks || n <= g.firstBlock {
		return g.blocks
	}
	groups := ceilDiv(n-g.firstBlock, g.groupBlocks)
	// The current last group is filled first: extending it needs no new
	// bookkeeping, so only a tail past it can be too short.
	currentEnd := g.firstBlock + ceilDiv(g.blocks-g.firstBlock, g.groupBlocks)*g.groupBlocks
	if rem := (n - g.firstBlock) % g.groupBlocks; rem != 0 && n > currentEnd && rem < g.minTail(groups) {
		n -= rem
	}
	return max(n, g.blocks)
}

// ceilDiv is a/b rounded up, for a ≥ 0 and b > 0, without the overflow of
// (a+b-1)/b.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// ext2fsOverhead is the tail rule of resize2fs (adjust_fs_info in
// e2fsprogs): a new last group shorter than its bookkeeping (two bitmaps
// and the inode table, plus a superblock and descriptor backup where one
// lives) and 50 blocks is not made. mke2fs applies the same rule, which is
// why a fresh filesystem can end up to a few MiB short of its device.
func ext2fsOverhead(inodeBlocksPerGroup, reservedGDT, blockSize, descSize int64, hasBackup func(group int64) bool) func(int64) int64 {
	return func(groups int64) int64 {
		overhead := 2 + inodeBlocksPerGroup
		if hasBackup(groups - 1) {
			descBlocks := ceilDiv(groups, blockSize/descSize)
			overhead += 1 + descBlocks + reservedGDT
		}
		return overhead + 50
	}
}

// sparseSuperBackup reports whether a block group holds a superblock backup
// on a sparse_super filesystem: groups 0 and 1 and the powers of 3, 5 and 7
// (ext2fs_bg_has_super).
func sparseSuperBackup(group int64) bool {
	if group <= 1 {
		return true
	}
	if group%2 == 0 {
		return false
	}
	return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7)
}

func isPowerOf(n, base int64) bool {
	for n > 1 && n%base == 0 {
		n /= base
	}
	return n == 1
}

// parseKeyValues splits tool output into key/value pairs at the first sep,
// trimming both; lines without sep are skipped (headers, the version line
// dumpe2fs writes to stderr, which the combined output interleaves).
func parseKeyValues(out, sep string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, sep)
		if !ok {
			continue
		}
		kv[strings.TrimSpace(key)] = strings.TrimSpace(val)
	}
	return kv
}

// positiveField parses kv[key] as an integer > 0 (≥ 0 when zeroOK).
func positiveField(kv map[string]string, key string, zeroOK bool) (int64, error) {
	v, ok := kv[key]
	if !ok {
		return 0, fmt.Errorf("no %q", key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("%q is %q, not a positive number", key, v)
	}
	return n, nil
}

// Bounds of what either filesystem can have, checked on parsed values so
// that no arithmetic on them overflows.
const (
	minBlockSize   = 512 // xfs v4; ext starts at 1 KiB
	maxBlockSize   = 64 << 10
	maxGroupBlocks = 1 << 32 // xfs agblocks < 2^31; ext with bigalloc stays far below
	maxBlocks      = 1 << 56
	maxReservedGDT = 1<<16 - 1 // a 16-bit field
)

// checkGeometry refuses values no real filesystem has.
func checkGeometry(g fsGeometry) error {
	switch {
	case g.blockSize < minBlockSize || g.blockSize > maxBlockSize || bits.OnesCount64(uint64(g.blockSize)) != 1:
		return fmt.Errorf("block size %d", g.blockSize)
	case g.groupBlocks > maxGroupBlocks:
		return fmt.Errorf("%d blocks per group", g.groupBlocks)
	case g.blocks > maxBlocks:
		return fmt.Errorf("%d blocks", g.blocks)
	case g.firstBlock > 1:
		return fmt.Errorf("first block %d", g.firstBlock)
	}
	return nil
}

// parseDumpe2fs reads the geometry of an ext2/3/4 filesystem from
// `dumpe2fs -h` output ("Key:   value" lines).
func parseDumpe2fs(out string) (fsGeometry, error) {
	kv := parseKeyValues(out, ":")
	var g fsGeometry
	var err error
	fields := []struct {
		key    string
		dst    *int64
		zeroOK bool
	}{
		{"Block count", &g.blocks, false},
		{"Block size", &g.blockSize, false},
		{"First block", &g.firstBlock, true},
		{"Blocks per group", &g.groupBlocks, false},
	}
	for _, f := range fields {
		if *f.dst, err = positiveField(kv, f.key, f.zeroOK); err != nil {
			return fsGeometry{}, fmt.Errorf("dumpe2fs output: %w", err)
		}
	}
	if err := checkGeometry(g); err != nil {
		return fsGeometry{}, fmt.Errorf("dumpe2fs output: %w", err)
	}
	inodeBlocks, err := positiveField(kv, "Inode blocks per group", true)
	if err != nil {
		return fsGeometry{}, fmt.Errorf("dumpe2fs output: %w", err)
	}
	if inodeBlocks > g.groupBlocks {
		return fsGeometry{}, fmt.Errorf("dumpe2fs output: %d inode blocks in a group of %d", inodeBlocks, g.groupBlocks)
	}
	// Printed only with resize_inode, resp. 64bit; the defaults are what
	// the filesystem then has.
	reservedGDT, descSize := int64(0), int64(32)
	if _, ok := kv["Reserved GDT blocks"]; ok {
		if reservedGDT, err = positiveField(kv, "Reserved GDT blocks", true); err != nil || reservedGDT > maxReservedGDT {
			return fsGeometry{}, fmt.Errorf("dumpe2fs output: reserved GDT blocks %q", kv["Reserved GDT blocks"])
		}
	}
	if _, ok := kv["Group descriptor size"]; ok {
		// 32 to 1024 bytes, and a block holds a whole number of them.
		if descSize, err = positiveField(kv, "Group descriptor size", false); err != nil || descSize < 32 || descSize > 1024 ||
			g.blockSize%descSize != 0 {
			return fsGeometry{}, fmt.Errorf("dumpe2fs output: group descriptor size %q", kv["Group descriptor size"])
		}
	}
	features := strings.Fields(kv["Filesystem features"])
	hasBackup := func(int64) bool { return true }
	switch {
	case slices.Contains(features, "sparse_super2"):
		// Backups sit in the groups the superblock names; counting every
		// group as one can only overstate the tail, so growth that the
		// tool would refuse is never asked for.
	case slices.Contains(features, "sparse_super"):
		hasBackup = sparseSuperBackup
	}
	g.minTail = ext2fsOverhead(inodeBlocks, reservedGDT, g.blockSize, descSize, hasBackup)
	return g, nil
}

// parseXFSStatfs reads the geometry of a mounted xfs filesystem from
// `xfs_io -c statfs` output ("key = value" lines; geom.* is the
// XFS_IOC_FSGEOMETRY answer).
func parseXFSStatfs(out string) (fsGeometry, error) {
	kv := parseKeyValues(out, "=")
	var g fsGeometry
	var err error
	for _, f := range []struct {
		key string
		dst *int64
	}{
		{"geom.bsize", &g.blockSize},
		{"geom.datablocks", &g.blocks},
		{"geom.agblocks", &g.groupBlocks},
	} {
		if *f.dst, err = positiveField(kv, f.key, false); err != nil {
			return fsGeometry{}, fmt.Errorf("xfs_io statfs output: %w", err)
		}
	}
	if err := checkGeometry(g); err != nil {
		return fsGeometry{}, fmt.Errorf("xfs_io statfs output: %w", err)
	}
	g.minTail = func(int64) int64 { return xfsMinAGBlocks }
	return g, nil
}
