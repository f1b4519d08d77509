package rds

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// hostile are values that must never reach a RouterOS command in any position.
var hostile = []string{
	`a"b`, `a;b`, `a[b`, `a]b`, `$x`, "a\nb", "a\rb", `a\b`, `a b`, "pvc-ü", `a"; /system reset-configuration; :put "`,
	"a[/system/reboot]", "a\tb", "a`b", "a{b}", "a?b", "a=b", "a,b", "a#b", "a'b", "\x00", "a$b",
}

// badNames are harmless characters in a shape that is not a name (empty, over-long, dots, a slash).
var badNames = []string{``, strings.Repeat("a", 129), "..", ".", "-lead", "a/b", "/a"}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"pvc-0f1e", "a", "A.b_c-9", "raid10", strings.Repeat("a", 128), "9lives", "a..b"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range append(append([]string{}, hostile...), badNames...) {
		if err := ValidName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidPath(t *testing.T) {
	for _, ok := range []string{"pool", "pool/k8s/pvc-1/disk.img", "raid10/vm-storage-001.img", "a/b.c/d_e",
		"pool/" + strings.Repeat("b", 255)} {
		if err := ValidPath(ok); err != nil {
			t.Errorf("ValidPath(%q) = %v, want nil", ok, err)
		}
	}
	bad := []string{"/pool/x", "pool//x", "pool/", "pool/../etc", "pool/./x", "../x", "pool/x y", "pool/x;y",
		`pool/"x`, "pool/x\n", strings.Repeat("a/", 600) + "a", "pool/" + strings.Repeat("b", 256)}
	for _, h := range hostile {
		bad = append(bad, h, "pool/"+h, h+"/x")
	}
	for _, b := range bad {
		if err := ValidPath(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidPath(%q) = %v, want ErrInvalid", b, err)
		}
	}
}

func TestValidNQN(t *testing.T) {
	for _, ok := range []string{"nqn.2000-02.com.mikrotik:pvc-0f1e", "nqn.2026-09.com.mikrotik:rds2216.vm-storage-001",
		"nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"} {
		if err := ValidNQN(ok); err != nil {
			t.Errorf("ValidNQN(%q) = %v, want nil", ok, err)
		}
	}
	bad := []string{"", "pvc-1", "nqn.2000-02.com.mikrotik", "nqn.2000-02.com.mikrotik:", "nqn.20-02.com.x:a",
		"nqn.2000-02.com.mikrotik:a b", `nqn.2000-02.com.mikrotik:a"b`, "nqn.2000-02.com.mikrotik:a;b",
		"nqn.2000-02.com.mikrotik:" + strings.Repeat("a", 200), "nqn.2000-02.com.mikrotik:a/b"}
	for _, b := range bad {
		if err := ValidNQN(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidNQN(%q) = %v, want ErrInvalid", b, err)
		}
	}
}

func TestFilterValidation(t *testing.T) {
	for _, ok := range []Filter{Eq("slot", "pvc-1"), Eq("name", "pool/k8s/x.img"), Eq("mount-point", "raid10"),
		Match("nvme-tcp-server-nqn", `^nqn\.2000-02\.com\.mikrotik:`), Match("name", "^k8s/(pvc|snap)-.*"), Eq("slot", "")} {
		if ok.Err() != nil {
			t.Errorf("filter %q: %v", ok, ok.Err())
		}
	}
	bad := []Filter{Eq("Slot", "x"), Eq("slot;", "x"), Eq("", "x"), Eq("slot", `x"`), Eq("slot", "x y"),
		Eq("slot", "[find]"), Eq("slot", "$a"), Match("name", `a\d`), Match("name", `a"`), Match("name", "a$"),
		Match("name", "[a]"), Match("name", "a?"), Match("name", ""), Match("name", "(a"), Match("name", `a\`),
		Eq("slot", "ok").And(Eq("slot", "x\n"))}
	for _, f := range bad {
		if !errors.Is(f.Err(), ErrInvalid) {
			t.Errorf("filter %q: err %v, want ErrInvalid", f, f.Err())
		}
		if _, err := PrintDisks(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("PrintDisks with a refused filter: %v", err)
		}
	}
}

// TestHostileInputNeverSent feeds hostile values to every command constructor and every convenience read,
// against a recording SSH server: each must fail with ErrInvalid and the server must receive nothing.
func TestHostileInputNeverSent(t *testing.T) {
	srv := newTestServer(t)
	c := srv.client(Config{})
	ctx := context.Background()
	const good, goodPath, goodNQN = "pvc-1", "pool/k8s/pvc-1/disk.img", "nqn.2000-02.com.mikrotik:pvc-1"
	nameCalls := func(h string) map[string]func() error {
		return map[string]func() error{
			"AddSubvolume fs":  func() error { _, err := AddSubvolume(h, goodPath); return err },
			"AddSnapshot fs":   func() error { _, err := AddSnapshot(h, goodPath, goodPath+"2", true); return err },
			"AddFileDisk slot": func() error { _, err := AddFileDisk(FileDiskSpec{h, goodPath, 1 << 30, goodNQN, 0, nil}); return err },
			"SetDiskSize":      func() error { _, err := SetDiskSize(h, 1); return err },
			"RemoveDisk":       func() error { _, err := RemoveDisk(h); return err },
			"MonitorTraffic":   func() error { _, err := MonitorTraffic(h); return err },
			"Client.Disk":      func() error { _, err := c.Disk(ctx, h); return err },
			"Client.Pool":      func() error { _, err := c.Pool(ctx, h); return err },
			"Client.Traffic":   func() error { _, err := c.Traffic(ctx, h); return err },
		}
	}
	for _, h := range badNames {
		for name, call := range nameCalls(h) {
			if err := call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%q) = %v, want ErrInvalid", name, h, err)
			}
		}
	}
	for _, h := range hostile {
		calls := nameCalls(h)
		for name, call := range map[string]func() error{
			"AddSubvolume name":  func() error { _, err := AddSubvolume(good, "k8s/"+h); return err },
			"AddSnapshot parent": func() error { _, err := AddSnapshot(good, h, goodPath, true); return err },
			"AddSnapshot name":   func() error { _, err := AddSnapshot(good, goodPath, h+"/x", false); return err },
			"RemoveSubvolume":    func() error { _, err := RemoveSubvolume(good, h+"/x"); return err },
			"AddFileDisk path": func() error {
				_, err := AddFileDisk(FileDiskSpec{good, "p/" + h, 1 << 30, goodNQN, 0, nil})
				return err
			},
			"AddFileDisk nqn": func() error {
				_, err := AddFileDisk(FileDiskSpec{good, goodPath, 1 << 30, goodNQN + h, 0, nil})
				return err
			},
			"AddFileDisk host": func() error {
				_, err := AddFileDisk(FileDiskSpec{good, goodPath, 1 << 30, goodNQN, 0, []string{goodNQN + h}})
				return err
			},
			"SetAllowedHosts host": func() error { _, err := SetAllowedHosts(good, goodNQN, []string{goodNQN + h}); return err },
			"RemoveFile":           func() error { _, err := RemoveFile("pool/" + h); return err },
			"PrintFiles regex":     func() error { _, err := PrintFiles(Match("name", "^"+h+`"`)); return err },
			"Client.Pool":          func() error { _, err := c.Pool(ctx, h+" x"); return err },
			"Client.Disks":         func() error { _, err := c.Disks(ctx, Eq("slot", h+`"`)); return err },
			"Client.Files":         func() error { _, err := c.Files(ctx, Eq("name", h+";")); return err },
			"Client.Subvolumes":    func() error { _, err := c.Subvolumes(ctx, Match("name", h+"$")); return err },
			"Run with a zero step": func() error { _, err := c.Run(ctx, []Cmd{{}}); return err },
		} {
			calls[name] = call
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%q) = %v, want ErrInvalid", name, h, err)
			}
		}
	}
	for _, bad := range []FileDiskSpec{{good, goodPath, 0, goodNQN, 0, nil}, {good, goodPath, -1, goodNQN, 0, nil},
		{good, goodPath, 1, goodNQN, 70000, nil}, {good, goodPath, 1, goodNQN, -1, nil}} {
		if _, err := AddFileDisk(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddFileDisk(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := SetDiskSize(good, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetDiskSize to 0 = %v, want ErrInvalid", err)
	}
	mut, _ := RemoveDisk(good)
	if _, err := c.Run(ctx, nil, mut); !errors.Is(err, ErrInvalid) {
		t.Errorf("a mutation given as a read = %v, want ErrInvalid", err)
	}
	if got := srv.recorded(); len(got) != 0 {
		t.Fatalf("the server received %d execs, want none: %q", len(got), got)
	}
	// The recorder works: a valid read arrives.
	if _, err := c.Disks(ctx, Eq("slot", good)); err != nil {
		t.Fatal(err)
	}
	if got := srv.recorded(); len(got) != 1 {
		t.Fatalf("the server recorded %q for one valid read", got)
	}
}
