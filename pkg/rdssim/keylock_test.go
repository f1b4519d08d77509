package rdssim

import (
	"golang.org/x/crypto/ssh"
	"strings"
	"testing"
	"time"
)

// A command's file work runs outside the state lock: while one disk's file is being made (held here in
// fileHook), adds of other disks and subvolumes, prints and removals run to their end.
func TestFileWorkDoesNotHoldUpOtherDisks(t *testing.T) {
	s := startSim(t, Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	s.fileHook = func(rel string) {
		if strings.Contains(rel, "slow") {
			close(entered)
			<-release
		}
	}
	slow := dial(t, s)
	slowDone := make(chan string, 1)
	go func() {
		out, _, err := runErr(slow, `/disk add type=file file-path=pool/slow.img file-size=1G slot=slow`)
		if err != nil {
			out = err.Error()
		}
		slowDone <- out
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow add never reached its file work")
	}
	other := dial(t, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustRun(t, other, `/disk add type=file file-path=pool/fast.img file-size=1G slot=fast`)
		mustRun(t, other, `/disk/btrfs/subvolume/add fs=pool-fs name=sv-fast`)
		mustRun(t, other, `/disk remove [find slot="fast"]`)
		if out := mustRun(t, other, `/disk print detail where slot="slow"`); strings.Contains(out, "slow") {
			t.Errorf("the slow disk is listed before its commit: %q", out)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("commands on other disks waited for one disk's file work")
	}
	close(release)
	if out := <-slowDone; out != "" {
		t.Fatalf("the slow add: %q", out)
	}
	if out := mustRun(t, other, `/disk print detail where slot="slow"`); !strings.Contains(out, `slot="slow"`) {
		t.Errorf("the slow disk after its commit: %q", out)
	}
}

// Two commands on the same name never make its file at once: the second sees the first's disk.
func TestSameSlotAddsQueue(t *testing.T) {
	s := startSim(t, Config{})
	c1, c2 := dial(t, s), dial(t, s)
	res := make(chan string, 2)
	for _, c := range []*ssh.Client{c1, c2} {
		go func(c *ssh.Client) {
			out, _, err := runErr(c, `/disk add type=file file-path=pool/same.img file-size=1G slot=same`)
			if err != nil {
				out = err.Error()
			}
			res <- out
		}(c)
	}
	a, b := <-res, <-res
	if (a == "") == (b == "") || !strings.Contains(a+b, "already have such entry") {
		t.Errorf("two adds of one slot: %q and %q, want one success and one 'already have such entry'", a, b)
	}
}
