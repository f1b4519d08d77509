package rdssim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// How snapshot data is copied: a reflink shares extents copy-on-write, like a
// btrfs snapshot; elsewhere a sparse copy writes only the data regions, so
// holes stay holes.
const (
	copyReflink = "reflink"
	copySparse  = "sparse"
)

// copyTree copies the directory src to dst (which must not exist). skip is
// asked about each directory below src (relative, slash-separated); a skipped
// directory is created empty.
func copyTree(src, dst string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			if rel != "." && skip(filepath.ToSlash(rel)) {
				return filepath.SkipDir
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			_, err := cloneFile(target, p)
			return err
		}
		return nil
	})
}

// cloneFile copies src to the new file dst, by reflink when the filesystem
// supports it, else sparsely. It reports the method used.
func cloneFile(dst, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return "", err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return "", err
	}
	method := copyReflink
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		method = copySparse
		err = sparseCopy(out, in, info.Size())
		if err != nil {
			out.Close()
			return "", err
		}
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return method, os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// sparseCopy copies the data regions of in (found with SEEK_DATA/SEEK_HOLE)
// into out and sets out's size, leaving holes unallocated.
func sparseCopy(out, in *os.File, size int64) error {
	if err := out.Truncate(size); err != nil {
		return err
	}
	fd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			return nil // only a hole remains
		}
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
			return copySkippingZeros(out, in, off, size)
		}
		if err != nil {
			return fmt.Errorf("seek data: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		if err := copyRange(out, in, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

func copyRange(out, in *os.File, off, n int64) error {
	w := io.NewOffsetWriter(out, off)
	_, err := io.Copy(w, io.NewSectionReader(in, off, n))
	return err
}

// copySkippingZeros is the fallback for filesystems without SEEK_DATA: it
// reads everything and writes only blocks that are not all zero.
func copySkippingZeros(out, in *os.File, off, size int64) error {
	buf := make([]byte, 1<<20)
	for off < size {
		n, err := in.ReadAt(buf, off)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// treeAllocated sums the blocks allocated by the regular files under dir.
func treeAllocated(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			total += allocatedOf(d)
		}
		return nil
	})
	return total
}
