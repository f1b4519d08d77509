package rdssim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/klog/v2"
)

// DefaultNVMetRoot is where the kernel NVMe target (nvmet) shows its
// configuration once configfs is mounted and the nvmet module is loaded.
const DefaultNVMetRoot = "/sys/kernel/config/nvmet"

// nvmetNamespace is the one namespace ID every exported disk uses: an RDS
// disk is one subsystem holding one namespace.
const nvmetNamespace = "1"

// NVMet is an Exporter that makes simulator disks real NVMe/TCP subsystems
// through the Linux kernel target, by writing its configfs tree:
//
//	subsystems/<nqn>/attr_allow_any_host = 1 (no allowed hosts), or 0 and
//	subsystems/<nqn>/allowed_hosts/<host nqn> -> hosts/<host nqn> for each allowed host
//	subsystems/<nqn>/namespaces/1/{device_path, buffered_io = 1, enable = 1}
//	ports/<tcp port>/{addr_trtype = tcp, addr_adrfam, addr_traddr, addr_trsvcid}
//	ports/<tcp port>/subsystems/<nqn> -> subsystems/<nqn>
//
// The configfs port directory is named after the TCP port number, so every
// disk exported on 4420 shares ports/4420, as on the RDS.
//
// It only ever changes subsystems it created (or adopted: see Export) and
// removes only ports it created, so a machine that also serves other NVMe
// targets keeps them.
type NVMet struct {
	tree configfsTree
	addr string

	mu sync.Mutex
	// owned are the NQNs this NVMet created or adopted; Unexport touches
	// nothing else.
	owned map[string]bool
	// createdPorts are the port directories this NVMet made; only those are
	// removed when their last subsystem goes.
	createdPorts map[string]bool
	// createdHosts are the hosts/<nqn> directories this NVMet made; only those
	// are removed when no subsystem allows them any more.
	createdHosts map[string]bool
}

var _ Exporter = (*NVMet)(nil)

// NewNVMet returns an exporter writing under configfsRoot (""
// means DefaultNVMetRoot) whose ports listen on addr, an IP address such as
// 127.0.0.1. Nothing is touched until the first Export.
func NewNVMet(configfsRoot, addr string) *NVMet {
	if configfsRoot == "" {
		configfsRoot = DefaultNVMetRoot
	}
	return newNVMet(osTree{root: configfsRoot}, addr)
}

func newNVMet(tree configfsTree, addr string) *NVMet {
	return &NVMet{tree: tree, addr: addr, owned: map[string]bool{}, createdPorts: map[string]bool{}, createdHosts: map[string]bool{}}
}

// NVMetAvailable reports whether root ("" means DefaultNVMetRoot) is a
// usable nvmet configfs tree: the nvmet module is loaded and configfs is
// mounted, so its subsystems and ports directories exist.
func NVMetAvailable(root string) bool {
	if root == "" {
		root = DefaultNVMetRoot
	}
	for _, d := range []string{"subsystems", "ports"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// Export makes the file at hostPath reachable as namespace 1 of subsystem
// nqn on TCP port port, to the host NQNs in hosts only (nil: to any host,
// attr_allow_any_host = 1). It is idempotent, and applies changes:
//   - a new device path disables the namespace, points it at the new file
//     and enables it again;
//   - the same device path (a resize) writes the namespace's
//     revalidate_size attribute, so the kernel re-reads the file's size and
//     sends connected hosts a namespace-changed notice;
//   - a new port moves the subsystem's link to the new port;
//   - new hosts replace the subsystem's allowed_hosts links (hosts already
//     connected stay connected, as with the kernel target: only new
//     connections are checked).
//
// A subsystem with this NQN that exists already is adopted only when it
// exports the same file (the simulator restarted after a crash); any other is
// somebody else's and Export fails without touching it. On failure Export
// undoes what it created in this call.
func (n *NVMet) Export(nqn string, port int, hostPath string, hosts []string) error {
	if err := checkNVMetNQN(nqn); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := checkNVMetNQN(h); err != nil {
			return fmt.Errorf("allowed host: %w", err)
		}
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("nvmet: port %d is not a TCP port", port)
	}
	if err := checkDevicePath(hostPath); err != nil {
		return err
	}
	family, err := addressFamily(n.addr)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	portDir := portDirName(port)
	portCreated, err := n.ensurePort(portDir, []attribute{
		{"addr_trtype", "tcp"}, {"addr_adrfam", family}, {"addr_traddr", n.addr}, {"addr_trsvcid", strconv.Itoa(port)},
	})
	if err != nil {
		return err
	}
	subCreated, err := n.ensureSubsystem(nqn, hostPath)
	if err == nil {
		err = n.ensureHosts(nqn, hosts)
	}
	if err == nil {
		err = n.ensureNamespace(nqn, hostPath)
	}
	if err == nil {
		err = n.ensureLink(nqn, portDir)
	}
	if err != nil {
		if subCreated {
			if terr := n.teardown(nqn); terr != nil {
				klog.ErrorS(terr, "nvmet: undoing a failed export", "nqn", nqn)
			}
		}
		if portCreated {
			n.dropPortIfUnused(portDir)
		}
		return err
	}
	klog.V(2).InfoS("nvmet: exported", "nqn", nqn, "port", port, "address", n.addr, "device", hostPath, "hosts", hosts)
	return nil
}

// Unexport withdraws subsystem nqn: the port links go first (connected hosts
// lose the path), then the namespace is disabled and removed, then the
// subsystem. An NQN this NVMet did not export is left alone, and unexporting
// twice is not an error.
func (n *NVMet) Unexport(nqn string) error {
	if err := checkNVMetNQN(nqn); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.owned[nqn] {
		klog.V(4).InfoS("nvmet: not unexporting a subsystem this exporter did not create", "nqn", nqn)
		return nil
	}
	if err := n.teardown(nqn); err != nil {
		return err
	}
	klog.V(2).InfoS("nvmet: unexported", "nqn", nqn)
	return nil
}

type attribute struct{ name, value string }

// ensurePort makes sure the port directory exists with exactly the given
// address. An existing port with another address is refused rather than
// rewritten: it serves somebody else, or the kernel would refuse the change
// while subsystems are linked to it anyway.
func (n *NVMet) ensurePort(dir string, attrs []attribute) (created bool, err error) {
	ok, err := n.tree.Exists(dir)
	if err != nil {
		return false, err
	}
	if !ok {
		if err := n.tree.Mkdir(dir); err != nil {
			return false, err
		}
		n.createdPorts[dir] = true
		for _, a := range attrs {
			if err := n.tree.Write(dir+"/"+a.name, a.value); err != nil {
				n.dropPortIfUnused(dir)
				return false, err
			}
		}
		return true, nil
	}
	for _, a := range attrs {
		got, err := n.tree.Read(dir + "/" + a.name)
		if err != nil {
			return false, err
		}
		if got != a.value {
			return false, fmt.Errorf("nvmet: %s exists with %s=%q, not %q: it belongs to another configuration, so it is left alone",
				dir, a.name, got, a.value)
		}
	}
	return false, nil
}

// ensureSubsystem creates or adopts the subsystem; ensureHosts then says who
// may connect.
func (n *NVMet) ensureSubsystem(nqn, hostPath string) (created bool, err error) {
	sub := subsystemDir(nqn)
	ok, err := n.tree.Exists(sub)
	if err != nil {
		return false, err
	}
	switch {
	case !ok:
		if err := n.tree.Mkdir(sub); err != nil {
			return false, err
		}
		n.owned[nqn] = true
		created = true
	case !n.owned[nqn]:
		// A leftover of an earlier run of the simulator exports the same
		// file; anything else is not ours.
		got, err := n.tree.Read(namespaceDir(nqn) + "/device_path")
		if err != nil || got != hostPath {
			return false, fmt.Errorf("nvmet: subsystem %s already exists and does not export %s: it is not this simulator's, so it is left alone", nqn, hostPath)
		}
		klog.InfoS("nvmet: adopting a subsystem left by an earlier run", "nqn", nqn, "device", hostPath)
		n.owned[nqn] = true
	}
	return created, nil
}

// ensureHosts lets exactly hosts connect to the subsystem, or any host when
// hosts is nil (the RDS's default with no allow-host-name set). The kernel
// refuses allowed_hosts links while attr_allow_any_host is 1, and
// attr_allow_any_host = 1 while links exist, so the order matters.
func (n *NVMet) ensureHosts(nqn string, hosts []string) error {
	sub := subsystemDir(nqn)
	want := map[string]bool{}
	for _, h := range hosts {
		want[h] = true
	}
	links, err := n.tree.List(sub + "/allowed_hosts")
	if err != nil {
		return err
	}
	if len(hosts) > 0 {
		if err := n.writeIfDifferent(sub+"/attr_allow_any_host", "0"); err != nil {
			return err
		}
	}
	for _, l := range links {
		if !want[l] {
			if err := n.tree.Unlink(sub + "/allowed_hosts/" + l); err != nil {
				return err
			}
		}
		delete(want, l)
	}
	for _, h := range hosts {
		if !want[h] {
			continue
		}
		delete(want, h)
		host := "hosts/" + h
		ok, err := n.tree.Exists(host)
		if err != nil {
			return err
		}
		if !ok {
			if err := n.tree.Mkdir(host); err != nil {
				return err
			}
			n.createdHosts[host] = true
		}
		if err := n.tree.Symlink(host, sub+"/allowed_hosts/"+h); err != nil {
			return err
		}
	}
	if len(hosts) == 0 {
		if err := n.writeIfDifferent(sub+"/attr_allow_any_host", "1"); err != nil {
			return err
		}
	}
	n.dropUnusedHosts()
	return nil
}

// dropUnusedHosts removes the hosts/<nqn> directories this NVMet made that
// no subsystem allows any more. Failing to is only logged: an unused host
// entry allows nothing.
func (n *NVMet) dropUnusedHosts() {
	if len(n.createdHosts) == 0 {
		return
	}
	used := map[string]bool{}
	subs, err := n.tree.List("subsystems")
	if err != nil {
		klog.ErrorS(err, "nvmet: listing subsystems")
		return
	}
	for _, s := range subs {
		links, _ := n.tree.List(subsystemDir(s) + "/allowed_hosts")
		for _, l := range links {
			used["hosts/"+l] = true
		}
	}
	for host := range n.createdHosts {
		if used[host] {
			continue
		}
		if err := n.tree.Rmdir(host); err != nil && !errors.Is(err, os.ErrNotExist) {
			klog.ErrorS(err, "nvmet: removing an unused host", "host", host)
			continue
		}
		delete(n.createdHosts, host)
	}
}

// ensureNamespace points namespace 1 at hostPath and enables it. The file
// backend is always buffered: a file on tmpfs (the test VM's only
// filesystem) cannot be opened with O_DIRECT, and buffered I/O works on every
// filesystem. buffered_io and device_path can only change while the
// namespace is disabled.
func (n *NVMet) ensureNamespace(nqn, hostPath string) error {
	ns := namespaceDir(nqn)
	ok, err := n.tree.Exists(ns)
	if err != nil {
		return err
	}
	if !ok {
		if err := n.tree.Mkdir(ns); err != nil {
			return err
		}
	}
	enabled, err := n.tree.Read(ns + "/enable")
	if err != nil {
		return err
	}
	current, err := n.tree.Read(ns + "/device_path")
	if err != nil {
		return err
	}
	if enabled == "1" && current == hostPath {
		return n.revalidate(ns)
	}
	if enabled == "1" {
		if err := n.tree.Write(ns+"/enable", "0"); err != nil {
			return err
		}
	}
	if current != hostPath {
		if err := n.tree.Write(ns+"/device_path", hostPath); err != nil {
			return err
		}
	}
	if err := n.writeIfDifferent(ns+"/buffered_io", "1"); err != nil {
		return err
	}
	return n.tree.Write(ns+"/enable", "1")
}

// revalidate makes the target re-read the size of an enabled namespace's
// file. Writing revalidate_size (Linux 5.9 and later, so kernel 6.1 in the
// test VM) re-reads it and, when it changed, sends connected hosts an
// asynchronous namespace-changed event, so they see the new size without
// losing the namespace. Disabling and re-enabling would also pick up the size
// but removes the namespace from connected hosts for a moment, which fails
// I/O on a mounted filesystem, so it is never used for a resize. Without
// the attribute the target still re-reads the size whenever a host
// identifies the namespace (nvme ns-rescan), which the node does before
// growing a filesystem.
func (n *NVMet) revalidate(ns string) error {
	ok, err := n.tree.Exists(ns + "/revalidate_size")
	if err != nil || !ok {
		if err == nil {
			klog.V(2).InfoS("nvmet: kernel has no revalidate_size; hosts see a new size on their next namespace rescan", "namespace", ns)
		}
		return err
	}
	return n.tree.Write(ns+"/revalidate_size", "1")
}

// ensureLink exposes the subsystem on portDir and takes it off any other
// port (the disk's port changed).
func (n *NVMet) ensureLink(nqn, portDir string) error {
	ports, err := n.tree.List("ports")
	if err != nil {
		return err
	}
	for _, name := range ports {
		other := "ports/" + name
		if other == portDir {
			continue
		}
		link := other + "/subsystems/" + nqn
		if ok, err := n.tree.Exists(link); err != nil {
			return err
		} else if ok {
			if err := n.tree.Unlink(link); err != nil {
				return err
			}
			n.dropPortIfUnused(other)
		}
	}
	link := portDir + "/subsystems/" + nqn
	ok, err := n.tree.Exists(link)
	if err != nil || ok {
		return err
	}
	return n.tree.Symlink(subsystemDir(nqn), link)
}

// teardown removes every trace of an owned subsystem; each step is skipped
// when already done, so a teardown interrupted half-way can be repeated.
func (n *NVMet) teardown(nqn string) error {
	ports, err := n.tree.List("ports")
	if err != nil {
		return err
	}
	for _, name := range ports {
		port := "ports/" + name
		link := port + "/subsystems/" + nqn
		ok, err := n.tree.Exists(link)
		if err != nil {
			return err
		}
		if ok {
			if err := n.tree.Unlink(link); err != nil {
				return err
			}
			n.dropPortIfUnused(port)
		}
	}
	sub := subsystemDir(nqn)
	if ok, err := n.tree.Exists(sub); err != nil || !ok {
		if err == nil {
			delete(n.owned, nqn)
		}
		return err
	}
	allowed, err := n.tree.List(sub + "/allowed_hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, h := range allowed {
		if err := n.tree.Unlink(sub + "/allowed_hosts/" + h); err != nil {
			return err
		}
	}
	namespaces, err := n.tree.List(sub + "/namespaces")
	if err != nil {
		return err
	}
	for _, id := range namespaces {
		ns := sub + "/namespaces/" + id
		if enabled, err := n.tree.Read(ns + "/enable"); err != nil {
			return err
		} else if enabled == "1" {
			if err := n.tree.Write(ns+"/enable", "0"); err != nil {
				return err
			}
		}
		if err := n.tree.Rmdir(ns); err != nil {
			return err
		}
	}
	if err := n.tree.Rmdir(sub); err != nil {
		return err
	}
	delete(n.owned, nqn)
	n.dropUnusedHosts()
	return nil
}

// dropPortIfUnused removes a port this NVMet created once no subsystem is
// linked to it any more, which closes its listener. Failing to do so is only
// logged: an idle port does no harm, and the export itself is done.
func (n *NVMet) dropPortIfUnused(dir string) {
	if !n.createdPorts[dir] {
		return
	}
	links, err := n.tree.List(dir + "/subsystems")
	if err == nil && len(links) > 0 {
		return
	}
	if err == nil || errors.Is(err, os.ErrNotExist) {
		err = n.tree.Rmdir(dir)
	}
	if err != nil {
		klog.ErrorS(err, "nvmet: removing an unused port", "port", dir)
		return
	}
	delete(n.createdPorts, dir)
}

func (n *NVMet) writeIfDifferent(path, value string) error {
	got, err := n.tree.Read(path)
	if err == nil && got == value {
		return nil
	}
	return n.tree.Write(path, value)
}

func subsystemDir(nqn string) string { return "subsystems/" + nqn }
func namespaceDir(nqn string) string { return subsystemDir(nqn) + "/namespaces/" + nvmetNamespace }
func portDirName(port int) string    { return "ports/" + strconv.Itoa(port) }

// maxNVMetNQN is the NVMe base specification's NQN limit (223 bytes).
const maxNVMetNQN = 223

// checkNVMetNQN refuses an NQN that cannot be a configfs directory name in
// subsystems/: it becomes a path element, so '/' and dot names would escape.
func checkNVMetNQN(nqn string) error {
	if nqn == "" || nqn == "." || nqn == ".." || len(nqn) > maxNVMetNQN {
		return fmt.Errorf("nvmet: NQN %q is empty, a dot name or longer than %d bytes", nqn, maxNVMetNQN)
	}
	for i := 0; i < len(nqn); i++ {
		if c := nqn[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("nvmet: NQN %q has a character (%q) that cannot be part of a configfs name", nqn, c)
		}
	}
	return nil
}

// checkDevicePath refuses what the kernel would misread: device_path is cut
// at the first newline.
func checkDevicePath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("nvmet: device path %q is not a clean absolute path", p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("nvmet: device path %q contains control characters", p)
	}
	return nil
}

func addressFamily(addr string) (string, error) {
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		return "", fmt.Errorf("nvmet: listen address %q is not an IP address", addr)
	case ip.To4() != nil:
		return "ipv4", nil
	}
	return "ipv6", nil
}

// configfsTree is the nvmet configfs directory, with paths relative to its
// root. Tests substitute a model of the kernel's rules over a plain
// directory.
type configfsTree interface {
	Mkdir(rel string) error
	Rmdir(rel string) error
	// Read returns an attribute's value without its trailing newline.
	Read(rel string) (string, error)
	// Write stores an attribute; it never creates one.
	Write(rel, value string) error
	Symlink(targetRel, linkRel string) error
	Unlink(rel string) error
	Exists(rel string) (bool, error)
	// List returns the sorted names in a directory.
	List(rel string) ([]string, error)
}

// osTree is the real configfs.
type osTree struct{ root string }

func (t osTree) path(rel string) string { return filepath.Join(t.root, filepath.FromSlash(rel)) }

func (t osTree) Mkdir(rel string) error { return os.Mkdir(t.path(rel), 0o755) }
func (t osTree) Rmdir(rel string) error { return os.Remove(t.path(rel)) }
func (t osTree) Unlink(rel string) error {
	return os.Remove(t.path(rel))
}

func (t osTree) Read(rel string) (string, error) {
	b, err := os.ReadFile(t.path(rel))
	return strings.TrimRight(string(b), "\n"), err
}

func (t osTree) Write(rel, value string) error {
	// No O_CREATE: configfs attributes exist from mkdir on, and a missing one
	// means the kernel does not have it.
	f, err := os.OpenFile(t.path(rel), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return fmt.Errorf("write %s=%q: %w", rel, value, err)
	}
	return f.Close()
}

func (t osTree) Symlink(targetRel, linkRel string) error {
	return os.Symlink(t.path(targetRel), t.path(linkRel))
}

func (t osTree) Exists(rel string) (bool, error) {
	_, err := os.Lstat(t.path(rel))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (t osTree) List(rel string) ([]string, error) {
	entries, err := os.ReadDir(t.path(rel))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}
