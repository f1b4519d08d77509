//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// stageRounds: how many blank volumes each side stages. Rounds alternate which side goes first, so
// neither always meets a warm page cache.
const stageRounds = 3

// TestNodeStageTiming measures what NodeStage costs over a bare `nvme connect` + `mkfs.ext4` + `mount` by
// a shell script, on the same kind of blank volume in the same guest. It is a measurement, printed as
// E2E-TIMING lines, not a pass/fail threshold; it fails only when a side fails.
func TestNodeStageTiming(t *testing.T) {
	st := need(t)
	var csiTimes, shellTimes []time.Duration
	for round := 0; round < stageRounds; round++ {
		a := st.createVolume(t, fmt.Sprintf("pvc-e2e-time-csi-%d", round), gib, mountCapability("ext4"), nil)
		b := st.createVolume(t, fmt.Sprintf("pvc-e2e-time-sh-%d", round), gib, mountCapability("ext4"), nil)
		a.controllerPublish(t)
		runCSI := func() { csiTimes = append(csiTimes, a.stage(t)) }
		runShell := func() { shellTimes = append(shellTimes, stageByShell(t, b)) }
		if round%2 == 0 {
			runCSI()
			runShell()
		} else {
			runShell()
			runCSI()
		}
		a.stagedDevice(t, "ext4")
		if err := a.unstage(); err != nil {
			t.Fatalf("NodeUnstageVolume: %v", err)
		}
		if out, err := exec.Command(*bareStage, "down", b.nqn, b.staging).CombinedOutput(); err != nil {
			t.Fatalf("%s down: %v\n%s", *bareStage, err, out)
		}
		waitForNoController(t, a.nqn, 15*time.Second)
		waitForNoController(t, b.nqn, 15*time.Second)
		if err := a.controllerUnpublish(); err != nil {
			t.Fatal(err)
		}
		a.delete(t)
		b.delete(t)
	}
	fmt.Printf("E2E-TIMING NodeStage (1 GiB blank ext4: connect, find device, blkid, mkfs, mount): %s; median %.2fs\n",
		seconds(csiTimes), median(csiTimes).Seconds())
	fmt.Printf("E2E-TIMING shell    (1 GiB blank ext4: nvme connect, find device, mkfs.ext4, mount): %s; median %.2fs\n",
		seconds(shellTimes), median(shellTimes).Seconds())
}

// stageByShell runs the shell baseline on the volume's subsystem, found from its volume context as the node
// would, and returns how long it took.
func stageByShell(t *testing.T, v *volume) time.Duration {
	t.Helper()
	addr, port := v.context[nvme.VolumeContextAddress], v.context[nvme.VolumeContextPort]
	if addr == "" {
		addr = dataAddress
	}
	if _, err := strconv.Atoi(port); err != nil {
		port = strconv.Itoa(nvme.DefaultPort)
	}
	start := time.Now()
	out, err := exec.Command(*bareStage, "up", v.nqn, addr, port, v.staging).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s up %s: %v\n%s", filepath.Base(*bareStage), v.nqn, err, out)
	}
	if dev := strings.TrimSpace(string(out)); nqnOfDevice(dev) != v.nqn {
		t.Fatalf("%s mounted %q, which is not %s's device", *bareStage, dev, v.nqn)
	}
	return took
}
