package rds

import (
	"testing"
)

func TestCommandText(t *testing.T) {
	must := func(c Cmd, err error) Cmd {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const id = "pvc-0f1e"
	tests := []struct {
		cmd     Cmd
		want    string
		verb    string
		mutates bool
	}{
		{must(AddSubvolume("pool", "k8s/"+id)), `/disk/btrfs/subvolume/add fs="pool" name="k8s/pvc-0f1e"`, "subvolume.add", true},
		{must(AddSnapshot("pool", "k8s/"+id, "k8s-snap/snap-1", true)),
			`/disk/btrfs/subvolume/add fs="pool" parent="k8s/pvc-0f1e" name="k8s-snap/snap-1" read-only=yes`, "subvolume.add", true},
		{must(AddSnapshot("pool", "k8s-snap/snap-1", "k8s/pvc-2", false)),
			`/disk/btrfs/subvolume/add fs="pool" parent="k8s-snap/snap-1" name="k8s/pvc-2"`, "subvolume.add", true},
		{must(RemoveSubvolume("pool", "k8s/"+id)),
			`/disk/btrfs/subvolume/remove [find where fs="pool" and name="k8s/pvc-0f1e"]`, "subvolume.remove", true},
		{must(AddFileDisk(FileDiskSpec{Slot: id, FilePath: "pool/k8s/pvc-0f1e/disk.img", SizeBytes: 1610612736,
			NQN: "nqn.2000-02.com.mikrotik:" + id})),
			`/disk add type=file file-path="pool/k8s/pvc-0f1e/disk.img" file-size=1610612736 slot="pvc-0f1e" ` +
				`mount-filesystem=no nvme-tcp-export=yes nvme-tcp-server-port=4420 ` +
				`nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-0f1e"`, "disk.add", true},
		{must(AddFileDisk(FileDiskSpec{Slot: id, FilePath: "p/x.img", SizeBytes: 1, NQN: "nqn.2000-02.com.mikrotik:x", Port: 4421})),
			`/disk add type=file file-path="p/x.img" file-size=1 slot="pvc-0f1e" mount-filesystem=no nvme-tcp-export=yes ` +
				`nvme-tcp-server-port=4421 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:x"`, "disk.add", true},
		{must(SetDiskSize(id, 21474836480)), `/disk set [find slot="pvc-0f1e"] file-size=21474836480`, "disk.set", true},
		{must(RemoveDisk(id)), `/disk remove [find slot="pvc-0f1e"]`, "disk.remove", true},
		{must(RemoveFile("pool/k8s/pvc-0f1e/disk.img")), `/file remove [find name="pool/k8s/pvc-0f1e/disk.img"]`, "file.remove", true},
		{must(PrintDisks()), `/disk print detail`, "disk.print", false},
		{must(PrintDisks(Eq("slot", id))), `/disk print detail where slot="pvc-0f1e"`, "disk.print", false},
		{must(PrintDisks(Match("nvme-tcp-server-nqn", `^nqn\.2000-02\.com\.mikrotik:`))),
			`/disk print detail where nvme-tcp-server-nqn~"^nqn\\.2000-02\\.com\\.mikrotik:"`, "disk.print", false},
		{must(PrintFiles(Match("name", "^pool/k8s/"))), `/file print detail where name~"^pool/k8s/"`, "file.print", false},
		{must(PrintSubvolumes(Eq("fs", "pool"), Eq("name", "k8s/"+id))),
			`/disk/btrfs/subvolume/print detail where fs="pool" and name="k8s/pvc-0f1e"`, "subvolume.print", false},
		{must(PrintSubvolumes(Eq("fs", "pool").And(Match("name", "^k8s-snap/")))),
			`/disk/btrfs/subvolume/print detail where fs="pool" and name~"^k8s-snap/"`, "subvolume.print", false},
		{must(MonitorTraffic(id)), `/disk monitor-traffic pvc-0f1e once`, "disk.monitor-traffic", false},
		{must(SetAllowedHosts(id, "nqn.2000-02.com.mikrotik:"+id, []string{"nqn.2014-08.org.nvmexpress:uuid:a", "nqn.2014-08.org.nvmexpress:uuid:b"})),
			`/disk set [find slot="pvc-0f1e" and nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-0f1e"] ` +
				`nvme-tcp-server-allow-host-name="nqn.2014-08.org.nvmexpress:uuid:a,nqn.2014-08.org.nvmexpress:uuid:b"`, "disk.set", true},
		{must(SetAllowedHosts(id, "nqn.2000-02.com.mikrotik:"+id, nil)),
			`/disk set [find slot="pvc-0f1e" and nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-0f1e"] ` +
				`nvme-tcp-server-allow-host-name=""`, "disk.set", true},
	}
	for _, tc := range tests {
		if got := tc.cmd.String(); got != tc.want {
			t.Errorf("command\n got %s\nwant %s", got, tc.want)
		}
		if tc.cmd.Verb() != tc.verb || tc.cmd.Mutates() != tc.mutates {
			t.Errorf("%s: verb %q mutates %v, want %q %v", tc.want, tc.cmd.Verb(), tc.cmd.Mutates(), tc.verb, tc.mutates)
		}
	}
}

func TestSetAllowedHostsRefusesHostileHosts(t *testing.T) {
	for _, h := range []string{"", "nqn.2014-08.org.nvmexpress:uuid:a,b", `nqn.2014-08.org.x:a"]`, "host1", "nqn.2014-08.org.x:$x"} {
		if c, err := SetAllowedHosts("pvc-1", "nqn.2000-02.com.mikrotik:pvc-1", []string{h}); err == nil {
			t.Errorf("host %q was accepted: %s", h, c)
		}
	}
}

func TestSplitHosts(t *testing.T) {
	for in, want := range map[string]int{"": 0, "a": 1, "a,b": 2, " a , b ,": 2} {
		if got := SplitHosts(in); len(got) != want {
			t.Errorf("SplitHosts(%q) = %q", in, got)
		}
	}
}
