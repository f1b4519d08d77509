package rdssim

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// The pool is a directory, DataDir/fs/<pool name>, standing in for the RDS's
// mounted RAID filesystem. RouterOS names files by pool-relative paths such
// as "pool/k8s/v/disk.img".

func (s *Simulator) poolDir() string {
	return filepath.Join(s.cfg.DataDir, "fs", s.poolName)
}

// splitPoolPath checks a RouterOS path ("pool/a/b" or "/pool/a/b") and
// returns it without a leading slash, and the part below the pool ("a/b",
// or "" for the pool itself). Paths outside the pool, or that climb out of
// it with "..", are refused.
func (s *Simulator) splitPoolPath(p string) (clean, rel string, err error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" || strings.ContainsRune(p, 0) {
		return "", "", fmt.Errorf("empty path")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return "", "", fmt.Errorf("path %q has a %q segment", p, seg)
		}
	}
	clean = path.Clean(p)
	if clean == s.poolName {
		return clean, "", nil
	}
	rel, ok := strings.CutPrefix(clean, s.poolName+"/")
	if !ok {
		return "", "", fmt.Errorf("path %q is not on pool %q", p, s.poolName)
	}
	return clean, rel, nil
}

// HostPath maps a RouterOS path such as "pool/k8s/v/disk.img" to the real
// file under DataDir. It fails for paths outside the pool, so tests can write
// into a volume's backing file without risk of touching anything else.
func (s *Simulator) HostPath(routerosPath string) (string, error) {
	_, rel, err := s.splitPoolPath(routerosPath)
	if err != nil {
		return "", err
	}
	return s.hostPathRel(rel), nil
}

func (s *Simulator) hostPathRel(rel string) string {
	if rel == "" {
		return s.poolDir()
	}
	return filepath.Join(s.poolDir(), filepath.FromSlash(rel))
}

// allocatedBytes sums what the files on the pool really occupy
// (st_blocks*512), so free space shrinks as sparse files fill. Reflinked
// snapshot files are counted in full: shared extents are not visible here.
func (s *Simulator) allocatedBytes() int64 {
	var total int64
	_ = filepath.WalkDir(s.poolDir(), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		total += allocatedOf(d)
		return nil
	})
	return total
}

func allocatedOf(d fs.DirEntry) int64 {
	info, err := d.Info()
	if err != nil {
		return 0
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

func allocatedFile(p string) int64 {
	info, err := os.Lstat(p)
	if err != nil || !info.Mode().IsRegular() {
		return 0
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

// freeBytes is the pool size minus what is allocated, never below zero.
func (s *Simulator) freeBytes(poolSize int64) int64 {
	free := poolSize - s.allocatedBytes()
	if free < 0 {
		return 0
	}
	return free
}
