package rdssim

import (
	"reflect"
	"strings"
	"testing"
)

const (
	hostA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	hostB = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
)

// TestNVMetAllowedHosts: nvme-tcp-server-allow-host-name maps onto the kernel target's access control:
// attr_allow_any_host = 0 and one allowed_hosts link per host, in the order the kernel accepts (no link
// while any host is allowed, no allow_any_host = 1 while links exist); no hosts opens the subsystem
// again; the host entries this exporter made go when nothing allows them.
func TestNVMetAllowedHosts(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	n := newNVMet(fs, "127.0.0.1")
	disk := backingFile(t, "disk.img")
	sub := "subsystems/" + nqnA
	export := func(hosts ...string) []string {
		t.Helper()
		if err := n.Export(nqnA, 4420, disk, hosts); err != nil {
			t.Fatalf("Export with hosts %v: %v", hosts, err)
		}
		return fs.take()
	}
	ops := export(hostA)
	// A new subsystem has attr_allow_any_host = 0 (the kernel's default): only the link is written.
	if !contains(ops, "symlink "+sub+"/allowed_hosts/"+hostA+" -> hosts/"+hostA) || contains(ops, "write "+sub+"/attr_allow_any_host=1") {
		t.Fatalf("restricting a new export: %q", ops)
	}
	if got := allowed(t, fs, nqnA); !reflect.DeepEqual(got, []string{hostA}) {
		t.Fatalf("allowed %v", got)
	}
	wantOps(t, "the same hosts again", export(hostA), []string{"write " + sub + "/namespaces/1/revalidate_size=1"})

	// A migration: both nodes.
	ops = export(hostA, hostB)
	if !contains(ops, "mkdir hosts/"+hostB) || !contains(ops, "symlink "+sub+"/allowed_hosts/"+hostB+" -> hosts/"+hostB) {
		t.Fatalf("adding a host: %q", ops)
	}
	// The source goes: its link and its host entry go.
	ops = export(hostB)
	if !contains(ops, "unlink "+sub+"/allowed_hosts/"+hostA) || !contains(ops, "rmdir hosts/"+hostA) {
		t.Fatalf("dropping a host: %q", ops)
	}
	// Open to any host again: links first, then allow_any_host.
	ops = export()
	i, j := index(ops, "unlink "+sub+"/allowed_hosts/"+hostB), index(ops, "write "+sub+"/attr_allow_any_host=1")
	if i < 0 || j < i {
		t.Fatalf("opening: %q", ops)
	}
	ops = export(hostA)
	if w, l := index(ops, "write "+sub+"/attr_allow_any_host=0"), index(ops, "symlink "+sub+"/allowed_hosts/"+hostA+" -> hosts/"+hostA); w < 0 || l < w {
		t.Fatalf("restricting an open export: %q", ops)
	}
	if err := n.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	for _, p := range fs.snapshot(t) {
		if p != "hosts/" && p != "ports/" && p != "subsystems/" {
			t.Errorf("left after unexport: %s", p)
		}
	}
}

// TestNVMetLeavesOthersHosts: a host entry somebody else made stays.
func TestNVMetLeavesOthersHosts(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	if err := fs.Mkdir("hosts/" + hostA); err != nil {
		t.Fatal(err)
	}
	n := newNVMet(fs, "127.0.0.1")
	if err := n.Export(nqnA, 4420, backingFile(t, "disk.img"), []string{hostA}); err != nil {
		t.Fatal(err)
	}
	if err := n.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	if ok, _ := fs.Exists("hosts/" + hostA); !ok {
		t.Fatal("a host entry this exporter did not make was removed")
	}
}

func TestAllowHostForms(t *testing.T) {
	both := hostA + "," + hostB
	for _, tc := range []struct {
		form  AllowHostForm
		value string
		want  []string
	}{
		{"", "", nil},
		{"", both, []string{hostA, hostB}},
		{AllowHostList, hostA, []string{hostA}},
		{AllowHostSingle, both, []string{both}},
		{AllowHostIgnored, hostA, nil},
	} {
		if got := tc.form.hosts(tc.value); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q.hosts(%q) = %q, want %q", tc.form, tc.value, got, tc.want)
		}
	}
	if _, err := ParseAllowHostForm("some"); err == nil {
		t.Error("an unknown form was accepted")
	}
}

func allowed(t *testing.T, fs *fakeConfigfs, nqn string) []string {
	t.Helper()
	names, err := fs.List("subsystems/" + nqn + "/allowed_hosts")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fs.Read("subsystems/" + nqn + "/attr_allow_any_host"); len(names) > 0 && v != "0" {
		t.Fatalf("allowed hosts %v with attr_allow_any_host=%s", names, v)
	}
	return names
}

func index(list []string, v string) int {
	for i, x := range list {
		if strings.TrimSpace(x) == v {
			return i
		}
	}
	return -1
}

// TestAllowHostAbsent: a firmware without the property refuses it in add, set and where, and does not
// print it; everything else works.
func TestAllowHostAbsent(t *testing.T) {
	const add = `/disk add type=file file-path="pool/a.img" file-size=1073741824 slot="a" nvme-tcp-export=yes nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:a"`
	for _, script := range []string{
		add + ` nvme-tcp-server-allow-host-name="` + hostA + `"`,
		`/disk set [find slot="a"] nvme-tcp-server-allow-host-name="` + hostA + `"`,
		`/disk print detail where nvme-tcp-server-allow-host-name="x"`,
	} {
		if _, err := parseScriptWith(script, parseOptions{noAllowHost: true}); err == nil {
			t.Errorf("%s was accepted", script)
		}
		if _, err := parseScript(script); err != nil {
			t.Errorf("%s is refused by the default simulator: %v", script, err)
		}
	}
	if _, err := parseScriptWith(add, parseOptions{noAllowHost: true}); err != nil {
		t.Errorf("an add without the property: %v", err)
	}
}
