package rdssim

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// TestManualBtrfsExample replays the commands of MikroTik's manual (pages "Btrfs" and "Snapshots") on a
// disk labelled and mounted as BtrfsDisk, and checks what the manual shows for them: the subvolumes are
// reachable as BtrfsDisk/<name> in /file print, a snapshot made with name=Snapshots/Documents-22012025 is
// found and removed by its leaf, and parent= takes a bare name.
func TestManualBtrfsExample(t *testing.T) {
	s := startSim(t, Config{PoolName: "BtrfsDisk", PoolLabel: "BtrfsDisk", Width: 200})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add name=Documents fs=BtrfsDisk
/disk/btrfs/subvolume/add name=Photos fs=BtrfsDisk`)
	for f, data := range map[string]string{"Documents/document1.txt": "doc", "Photos/photo1.jpg": "jpg"} {
		host, err := s.HostPath("BtrfsDisk/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, c, `/disk/btrfs/subvolume/add name=Snapshots fs=BtrfsDisk`)
	mustRun(t, c, `/disk/btrfs/subvolume/add read-only=yes parent=Documents fs=BtrfsDisk  name=Snapshots/Documents-22012025
/disk/btrfs/subvolume/add read-only=yes parent=Photos fs=BtrfsDisk  name=Snapshots/Photos-22012025`)

	// The manual's /file print after step 5 of "Creating snapshots" (its order is not lexical; the set is
	// what counts).
	want := []string{"BtrfsDisk", "BtrfsDisk/Documents", "BtrfsDisk/Photos", "BtrfsDisk/Snapshots",
		"BtrfsDisk/Documents/document1.txt", "BtrfsDisk/Photos/photo1.jpg", "BtrfsDisk/Snapshots/Documents-22012025",
		"BtrfsDisk/Snapshots/Photos-22012025", "BtrfsDisk/Snapshots/Documents-22012025/document1.txt",
		"BtrfsDisk/Snapshots/Photos-22012025/photo1.jpg"}
	got := names(t, mustRun(t, c, `/file print detail`))
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("/file print names:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out := mustRun(t, c, `/disk/btrfs/subvolume/print detail where name=Documents-22012025`)
	if !strings.Contains(out, `Sr name="Documents-22012025" fs=BtrfsDisk parent="Documents" read-only=yes`) {
		t.Errorf("snapshot by leaf:\n%s", out)
	}
	mustRun(t, c, `/disk/btrfs/subvolume/remove [find where name=Documents-22012025]`)
	if _, err := os.Stat(s.poolDir() + "/Snapshots/Documents-22012025"); err == nil {
		t.Error("the snapshot removed by its leaf is still on disk")
	}
	if out := mustRun(t, c, `/disk/btrfs/filesystem print detail where label=BtrfsDisk`); !strings.Contains(out, `label="BtrfsDisk"`) ||
		!strings.Contains(out, "present-devs=BtrfsDisk") {
		t.Errorf("filesystem print:\n%s", out)
	}
}

// names picks the name= values out of a /file print detail listing.
func names(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "name="); ok {
			got = append(got, strings.Trim(v, `"`))
		}
	}
	return got
}

// TestPoolLabel: a pool's btrfs label defaults to "<slot>-fs", is what fs= takes (the mount point is
// refused), shows in the pool disk's fs-label= and in /disk/btrfs/filesystem, and is fixed with the data
// directory.
func TestPoolLabel(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, Config{DataDir: dir, PoolName: "raid10", Width: 200})
	c := dial(t, s)
	if out := mustRun(t, c, `/disk print detail where mount-point=raid10`); prop(t, out, "fs-label") != "raid10-fs" {
		t.Errorf("fs-label:\n%s", out)
	}
	if out := mustRun(t, c, `/disk/btrfs/filesystem/print detail where present-devs=raid10`); prop(t, out, "label") != "raid10-fs" {
		t.Errorf("filesystem print:\n%s", out)
	}
	if out, status := run(t, c, `/disk/btrfs/subvolume/add fs=raid10 name=k8s/v`); status != 1 || out != "input does not match any value of fs"+crlf {
		t.Errorf("fs= by mount point: %d %q", status, out)
	}
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=raid10-fs name=k8s/v`)
	if _, err := os.Stat(s.poolDir() + "/k8s/v"); err != nil {
		t.Errorf("the subvolume lives under the mount point: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, PoolLabel: "other"}); err == nil ||
		!strings.Contains(err.Error(), `labelled "raid10-fs"`) {
		t.Errorf("restart with another label: %v", err)
	}
	x := startSim(t, Config{PoolFS: "xfs", PoolLabel: "ocp-storage", Width: 200})
	xc := dial(t, x)
	if out := mustRun(t, xc, `/disk print detail where mount-point=pool`); prop(t, out, "fs-label") != "ocp-storage" {
		t.Errorf("xfs fs-label:\n%s", out)
	}
	if out := mustRun(t, xc, `/disk/btrfs/filesystem/print detail`); out != "" {
		t.Errorf("an xfs pool has no btrfs filesystem: %q", out)
	}
}

// TestSubvolumeParentForms: parent= takes the leaf by default and the path with SubvolumeParent=NamePath;
// a leaf two subvolumes share is refused.
func TestSubvolumeParentForms(t *testing.T) {
	for _, tc := range []struct {
		form      NameForm
		good, bad string
	}{
		{NameLeaf, "src", "k8s/src"},
		{NamePath, "k8s/src", "src"},
	} {
		t.Run(string(tc.form), func(t *testing.T) {
			s := startSim(t, Config{SubvolumeParent: tc.form})
			c := dial(t, s)
			mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=k8s/src`)
			if out, status := run(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=`+tc.bad+` name=snaps/a`); status != 1 || out != "no such item"+crlf {
				t.Errorf("parent=%s: %d %q", tc.bad, status, out)
			}
			mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=`+tc.good+` name=snaps/a read-only=yes`)
			if _, err := os.Stat(s.poolDir() + "/snaps/a"); err != nil {
				t.Errorf("snapshot: %v", err)
			}
		})
	}
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=a/dup; /disk/btrfs/subvolume/add fs=pool-fs name=b/dup`)
	if out, status := run(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=dup name=c`); status != 1 || !strings.Contains(out, "ambiguous") {
		t.Errorf("a shared leaf as parent: %d %q", status, out)
	}
}

// TestScriptGoesOnAfterError: with OnErrorContinue the error is printed where it happened, the rest of the
// script runs, and the exit status still says it failed (0 with the exit-zero fault).
func TestScriptGoesOnAfterError(t *testing.T) {
	s := startSim(t, Config{OnError: OnErrorContinue})
	c := dial(t, s)
	script := `:put "start"
/disk add type=file file-path=pool/a.img file-size=1G slot=a
/disk add type=file file-path=pool/b.img file-size=1G slot=a
/disk add type=file file-path=pool/c.img file-size=1G slot=c
:put "end-marker"`
	out, status := run(t, c, script)
	if want := "start\r\nfailure: already have such entry\r\nend-marker\r\n"; status != 1 || out != want {
		t.Errorf("status %d output %q, want 1 %q", status, out, want)
	}
	if _, err := os.Stat(s.poolDir() + "/c.img"); err != nil {
		t.Errorf("the command after the error did not run: %v", err)
	}
	s.SetFaults(Fault{Kind: FaultExitZero})
	if out, status := run(t, c, `/disk remove nothing; :put "after"`); status != 0 || out != "no such item\r\nafter\r\n" {
		t.Errorf("with exit-zero: %d %q", status, out)
	}
	// A script that does not parse still runs nothing.
	if out, status := run(t, c, `/disk add type=file file-path=pool/d.img file-size=1G slot=d; /disk addd`); status != 0 ||
		!strings.HasPrefix(out, "bad command name addd") {
		t.Errorf("parse error: %d %q", status, out)
	}
	if _, err := os.Stat(s.poolDir() + "/d.img"); err == nil {
		t.Error("a command of a script that did not parse ran")
	}
}

func TestDialectOptionsAreChecked(t *testing.T) {
	for name, cfg := range map[string]Config{
		"name form":   {SubvolumeNames: "full"},
		"parent form": {SubvolumeParent: "uuid"},
		"on-error":    {OnError: "ignore"},
		"label":       {PoolLabel: "a b"},
	} {
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: %+v accepted", name, cfg)
		}
	}
}

func TestDialectsApply(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Dialects {
		if seen[d.Name] {
			t.Errorf("dialect %q twice", d.Name)
		}
		seen[d.Name] = true
		base := Config{Faults: []Fault{{Kind: FaultDiskFull, Count: 1}}}
		cfg := d.Apply(base)
		if len(base.Faults) != 1 || len(cfg.Faults) != 1+map[bool]int{true: 1}[d.ExitZero] {
			t.Errorf("%s: faults %v (base %v)", d.Name, cfg.Faults, base.Faults)
		}
		cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		s, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if want := map[bool]string{true: "pool", false: "pool-fs"}[d.LabelIsMountPoint]; s.PoolLabel() != want {
			t.Errorf("%s: label %q, want %q", d.Name, s.PoolLabel(), want)
		}
	}
	if Dialects[0] != (Dialect{Name: "documented"}) {
		t.Errorf("the first dialect must be the documented default: %+v", Dialects[0])
	}
}
