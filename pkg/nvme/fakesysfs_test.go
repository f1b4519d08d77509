package nvme

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeSysfs builds, under t.TempDir(), the parts of /sys and /dev that the
// initiators read, shaped like the kernel's: real directories under
// devices/, and class/ and block/ entries as symlinks into them. The values
// default to those captured from a live connection (testdata/samples, from
// the nvme-vm recipe), and TestFakeSysfsMatchesCapturedSample checks the
// shape against that capture.
type fakeSysfs struct {
	t   testing.TB
	sys string
	dev string
}

const (
	sampleHostNQN = "nqn.2014-08.org.nvmexpress:uuid:5a1e0000-e2e0-4e2e-9000-000000000001"
	sampleAddress = "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1"
)

func newFakeSysfs(t testing.TB) *fakeSysfs {
	t.Helper()
	root := t.TempDir()
	f := &fakeSysfs{t: t, sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	for _, d := range []string{"block", "class/nvme", "class/nvme-subsystem", "devices/virtual/nvme-fabrics/ctl",
		"devices/virtual/nvme-subsystem"} {
		f.mkdir(filepath.Join(f.sys, d))
	}
	f.mkdir(f.dev)
	return f
}

func (f *fakeSysfs) mkdir(p string) {
	f.t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// write writes a sysfs attribute, newline-terminated like the kernel's.
func (f *fakeSysfs) write(p, v string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(p))
	if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSysfs) symlink(target, link string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(link))
	if err := os.Symlink(target, link); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSysfs) ctrlDir(ctrl string) string {
	return filepath.Join(f.sys, "devices/virtual/nvme-fabrics/ctl", ctrl)
}

func (f *fakeSysfs) subsysDir(subsys string) string {
	return filepath.Join(f.sys, "devices/virtual/nvme-subsystem", subsys)
}

// addController adds a fabrics controller (/sys/class/nvme/<ctrl>) of the
// subsystem nvme-subsys<subsys> with the given NQN and state.
func (f *fakeSysfs) addController(ctrl string, subsys int, nqn, state string) {
	f.t.Helper()
	dir := f.ctrlDir(ctrl)
	f.write(filepath.Join(dir, "subsysnqn"), nqn)
	f.write(filepath.Join(dir, "state"), state)
	f.write(filepath.Join(dir, "transport"), "tcp")
	f.write(filepath.Join(dir, "address"), sampleAddress)
	f.write(filepath.Join(dir, "hostnqn"), sampleHostNQN)
	f.symlink("../../devices/virtual/nvme-fabrics/ctl/"+ctrl, filepath.Join(f.sys, "class/nvme", ctrl))
	sname := "nvme-subsys" + strconv.Itoa(subsys)
	sdir := f.subsysDir(sname)
	if _, err := os.Stat(sdir); os.IsNotExist(err) {
		f.write(filepath.Join(sdir, "subsysnqn"), nqn)
		f.symlink("../../devices/virtual/nvme-subsystem/"+sname, filepath.Join(f.sys, "class/nvme-subsystem", sname))
	}
	f.symlink("../../nvme-fabrics/ctl/"+ctrl, filepath.Join(sdir, ctrl))
}

// removeController deletes a controller, as `nvme disconnect` does.
func (f *fakeSysfs) removeController(ctrl string) {
	f.t.Helper()
	if err := os.Remove(filepath.Join(f.sys, "class/nvme", ctrl)); err != nil {
		f.t.Fatal(err)
	}
	if err := os.RemoveAll(f.ctrlDir(ctrl)); err != nil {
		f.t.Fatal(err)
	}
}

// addMultipathNamespace adds the native-multipath view of namespace nsid
// reached through controller ctrl (instance ctrlInst) of nvme-subsys<subsys>:
// the disk nvme<subsys>n<nsid> under the subsystem, and the hidden path node
// nvme<subsys>c<ctrlInst>n<nsid> under the controller, which has no /dev
// entry.
func (f *fakeSysfs) addMultipathNamespace(subsys int, ctrl string, ctrlInst, nsid int) string {
	f.t.Helper()
	sname := "nvme-subsys" + strconv.Itoa(subsys)
	head := fmt.Sprintf("nvme%dn%d", subsys, nsid)
	headDir := filepath.Join(f.subsysDir(sname), head)
	f.write(filepath.Join(headDir, "nsid"), strconv.Itoa(nsid))
	f.write(filepath.Join(headDir, "size"), "524288")
	f.symlink("../../"+sname, filepath.Join(headDir, "device"))
	f.symlink("../devices/virtual/nvme-subsystem/"+sname+"/"+head, filepath.Join(f.sys, "block", head))
	f.write(filepath.Join(f.dev, head), "")

	path := fmt.Sprintf("nvme%dc%dn%d", subsys, ctrlInst, nsid)
	pathDir := filepath.Join(f.ctrlDir(ctrl), path)
	f.write(filepath.Join(pathDir, "nsid"), strconv.Itoa(nsid))
	f.symlink("../../"+ctrl, filepath.Join(pathDir, "device"))
	f.symlink("../devices/virtual/nvme-fabrics/ctl/"+ctrl+"/"+path, filepath.Join(f.sys, "block", path))
	return filepath.Join(f.dev, head)
}

// addPrivateNamespace adds the view without native multipath: the disk
// nvme<ctrlInst>n<n> hangs off the controller itself.
func (f *fakeSysfs) addPrivateNamespace(ctrl string, ctrlInst, n, nsid int) string {
	f.t.Helper()
	name := fmt.Sprintf("nvme%dn%d", ctrlInst, n)
	dir := filepath.Join(f.ctrlDir(ctrl), name)
	f.write(filepath.Join(dir, "nsid"), strconv.Itoa(nsid))
	f.write(filepath.Join(dir, "size"), "524288")
	f.symlink("../../"+ctrl, filepath.Join(dir, "device"))
	f.symlink("../devices/virtual/nvme-fabrics/ctl/"+ctrl+"/"+name, filepath.Join(f.sys, "block", name))
	f.write(filepath.Join(f.dev, name), "")
	return filepath.Join(f.dev, name)
}

// addLocalDisk adds a PCIe NVMe boot disk with a vendor NQN, the kind of
// device the driver must never confuse with a volume or disconnect.
func (f *fakeSysfs) addLocalDisk() {
	f.t.Helper()
	ctrlDir := filepath.Join(f.sys, "devices/pci0000:00/0000:00:04.0/nvme/nvme9")
	nqn := "nqn.2014.08.org.nvmexpress:144d144dS4EWNX0R123456      Samsung SSD 980 1TB"
	f.write(filepath.Join(ctrlDir, "subsysnqn"), nqn)
	f.write(filepath.Join(ctrlDir, "state"), StateLive)
	f.write(filepath.Join(ctrlDir, "transport"), "pcie")
	f.symlink("../../devices/pci0000:00/0000:00:04.0/nvme/nvme9", filepath.Join(f.sys, "class/nvme", "nvme9"))
	disk := filepath.Join(ctrlDir, "nvme9n1")
	f.write(filepath.Join(disk, "nsid"), "1")
	f.symlink("../../nvme9", filepath.Join(disk, "device"))
	f.symlink("../devices/pci0000:00/0000:00:04.0/nvme/nvme9/nvme9n1", filepath.Join(f.sys, "block", "nvme9n1"))
	f.write(filepath.Join(f.dev, "nvme9n1"), "")
}

// addOtherDisks adds block devices that are not NVMe at all.
func (f *fakeSysfs) addOtherDisks() {
	f.t.Helper()
	for _, name := range []string{"sda", "loop0", "dm-0"} {
		dir := filepath.Join(f.sys, "devices/virtual/block", name)
		f.write(filepath.Join(dir, "size"), "8")
		f.symlink("../devices/virtual/block/"+name, filepath.Join(f.sys, "block", name))
	}
}
