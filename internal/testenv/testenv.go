// Package testenv is the one rule for tests that need something of the machine: root, a tool, the
// kube-apiserver of the kube lane, or the VM of the NVMe lane. Outside CI such a test skips and says what
// is missing; under CI (CI=true) it fails, so a lane whose machine lost a capability cannot go green by
// skipping everything.
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true, as set by GitHub Actions, GitLab and .ci/run).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing stops tb because the machine lacks what; what names the missing thing and how to get it.
// Under CI it fails the test; elsewhere it skips it.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("CI=true, but this test cannot run: %s", what)
		return
	}
	tb.Skip(what)
}

// RequireRoot stops tb (Missing) unless the process runs as root; why says what needs root.
func RequireRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, "not root: "+why+" needs root")
	}
}

// RequireTools stops tb (Missing) unless every tool is in PATH; install says how to get them.
func RequireTools(tb testing.TB, install string, tools ...string) {
	tb.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		Missing(tb, "needs "+strings.Join(missing, ", ")+" in PATH ("+install+")")
	}
}

// RequireLoopDevices stops tb (Missing) unless the process is root and loop devices can be made.
func RequireLoopDevices(tb testing.TB, why string) {
	tb.Helper()
	RequireRoot(tb, why)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		Missing(tb, why+" needs loop devices: "+err.Error())
	}
}

// CapSysResource is the bit of CAP_SYS_RESOURCE (linux/capability.h), which online ext4 growth needs: the
// kernel answers EXT4_IOC_RESIZE_FS with EPERM without it, even to root.
const CapSysResource = 24

// HasCapability reports whether the process has the capability bit in its effective set
// (/proc/self/status CapEff); false when that cannot be read.
func HasCapability(bit uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && eff&(1<<bit) != 0
		}
	}
	return false
}

// SkipIfLacksCapability skips tb when err is the symptom of a missing capability and the process does lack
// it: both must hold, so any other failure with similar words still fails the test. It is a plain skip
// under CI too: a capability the host lane's sandbox cannot grant is the VM lane's to cover.
func SkipIfLacksCapability(tb testing.TB, err error, bit uint, capName, symptom, coveredBy string) {
	tb.Helper()
	if err != nil && strings.Contains(err.Error(), symptom) && !HasCapability(bit) {
		tb.Skipf("this process lacks %s (%q); %s covers it: %v", capName, symptom, coveredBy, err)
	}
}
