package mount

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// TestFilesystemStats compares statfs figures with df's for the same
// filesystem, and watches them move when data is written.
func TestFilesystemStats(t *testing.T) {
	requireRoot(t, "mkfs.xfs", "df")
	m := NewLinux(Options{})
	dev, _ := loopDevice(t, 512<<20)
	target := filepath.Join(t.TempDir(), "globalmount")
	unmountOnCleanup(t, target)
	if _, err := m.FormatAndMount(ctxT(t), dev, target, "xfs", nil, false); err != nil {
		t.Fatal(err)
	}
	st, err := m.FilesystemStats(target)
	if err != nil {
		t.Fatal(err)
	}
	df := dfFigures(t, target)
	if st.TotalBytes != df[0] || st.UsedBytes != df[1] || st.AvailableBytes != df[2] ||
		st.TotalInodes != df[3] || st.UsedInodes != df[4] || st.FreeInodes != df[5] {
		t.Fatalf("FilesystemStats %+v, df says size,used,avail,itotal,iused,iavail = %v", st, df)
	}

	fh, err := os.Create(filepath.Join(target, "64MiB"))
	if err != nil {
		t.Fatal(err)
	}
	_, werr := fh.Write(make([]byte, 64<<20))
	if err := errors.Join(werr, fh.Sync(), fh.Close()); err != nil {
		t.Fatal(err)
	}
	after, err := m.FilesystemStats(target)
	if err != nil {
		t.Fatal(err)
	}
	if after.UsedBytes-st.UsedBytes < 64<<20 || after.UsedInodes != st.UsedInodes+1 {
		t.Fatalf("after writing 64 MiB in one file: %+v (before %+v)", after, st)
	}
	if err := m.Unmount(ctxT(t), target); err != nil {
		t.Fatal(err)
	}
}

func dfFigures(t *testing.T, path string) [6]int64 {
	t.Helper()
	out, err := exec.Command("df", "-B1", "--output=size,used,avail,itotal,iused,iavail", path).Output()
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("needs GNU df with --output (apt-get install -y coreutils): %v", err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	var v [6]int64
	for i := range v {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			t.Fatalf("df output %q: %v", out, err)
		}
		v[i] = n
	}
	return v
}

func TestDeviceSize(t *testing.T) {
	m := NewLinux(Options{})
	if _, err := m.DeviceSize(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("DeviceSize of a missing device succeeded")
	}
	if _, err := m.DeviceSize("/dev/null"); err == nil {
		t.Error("DeviceSize of a character device succeeded")
	}
	requireRoot(t)
	dev, _ := loopDevice(t, 300<<20+4096)
	if size, err := m.DeviceSize(dev); err != nil || size != 300<<20+4096 {
		t.Fatalf("DeviceSize = %d, %v; want %d", size, err, 300<<20+4096)
	}
}
