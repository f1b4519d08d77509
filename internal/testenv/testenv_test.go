package testenv

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "1": true, "false": false, "": false, "yes": false} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI() = %v, want %v", v, got, want)
		}
	}
}

// recorder is a testing.TB that records how the helper stopped it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissingSkipsOutsideCIAndFailsUnderIt(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Missing(r, "no kube-apiserver")
	if r.skipped != "no kube-apiserver" || r.failed != "" {
		t.Fatalf("outside CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	Missing(r, "no kube-apiserver")
	if r.skipped != "" || r.failed == "" {
		t.Fatalf("under CI: skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestRequireToolsNamesTheMissingOnes(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	RequireTools(r, "apt-get install -y nothing", "sh", "no-such-tool-rds-csi")
	if !strings.Contains(r.skipped, "no-such-tool-rds-csi") || strings.Contains(r.skipped, "sh,") {
		t.Fatalf("skip %q", r.skipped)
	}
}

func TestSkipIfLacksCapabilityNeedsBoth(t *testing.T) {
	eperm := errors.New("resize2fs: Permission denied to resize filesystem")
	r := &recorder{TB: t}
	SkipIfLacksCapability(r, errors.New("mount: Permission denied"), CapSysResource, "CAP_SYS_RESOURCE",
		"Permission denied to resize filesystem", "the VM lane")
	if r.skipped != "" {
		t.Fatalf("skipped on another permission error: %q", r.skipped)
	}
	r = &recorder{TB: t}
	SkipIfLacksCapability(r, eperm, CapSysResource, "CAP_SYS_RESOURCE", "Permission denied to resize filesystem", "the VM lane")
	if has := HasCapability(CapSysResource); has == (r.skipped != "") {
		t.Fatalf("with the capability %v: skipped %q", has, r.skipped)
	}
}

func TestHasCapability(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		Missing(t, "no /proc/self/status: "+err.Error())
	}
	// CAP_CHOWN (0) is in root's effective set on every Linux this runs on; no process has bit 63.
	if os.Geteuid() == 0 && !HasCapability(0) {
		t.Error("root without CAP_CHOWN")
	}
	if HasCapability(63) {
		t.Error("bit 63 is set")
	}
}
