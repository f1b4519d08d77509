//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// outage is how long the target's port is taken away: longer than the reconnect delay, so the host
// really goes through a failed reconnect, and far below the loss timeout, so it must not give up.
const outage = 4 * time.Second

// TestTargetOutageDuringIO takes the volume's subsystem off its port in the kernel target while a writer
// is fsyncing into the mounted filesystem, as an RDS reboot or a network cut would, and puts it back.
// The kernel must hold the I/O, reconnect, and complete it: the data verifies and the filesystem is still
// mounted read-write on the same device, with nothing remounted.
func TestTargetOutageDuringIO(t *testing.T) {
	st := need(t)
	v := st.createVolume(t, "pvc-e2e-outage", gib, mountCapability("ext4"), map[string]string{"reconnectDelay": "1"})
	v.controllerPublish(t)
	v.stage(t)
	v.publish(t)
	ctrls := controllersOf(t, v.nqn)
	if len(ctrls) != 1 {
		t.Fatalf("want one controller for %s, have %v", v.nqn, ctrls)
	}
	// The StorageClass tunables reached the kernel: the RDS default never gives up, the delay is ours.
	sys := "/sys/class/nvme/" + ctrls[0].name
	if got := readAttr(sys + "/ctrl_loss_tmo"); got != "off" {
		t.Errorf("ctrl_loss_tmo = %q, want off (retry forever)", got)
	}
	if got := readAttr(sys + "/reconnect_delay"); got != "1" {
		t.Errorf("reconnect_delay = %q, want the StorageClass's 1", got)
	}
	before, _ := mountAt(t, v.staging)
	links := portLinksOf(v.nqn)
	if len(links) != 1 {
		t.Fatalf("want %s on exactly one nvmet port, have %v", v.nqn, links)
	}

	const chunks, chunkSize = 48, 256 << 10
	data := payload(3, chunks*chunkSize)
	file := filepath.Join(v.target, "stream.bin")
	var written atomic.Int32
	var slowest atomic.Int64
	done := make(chan error, 1)
	go func() {
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		for i := 0; i < chunks; i++ {
			start := time.Now()
			if _, err := f.Write(data[i*chunkSize : (i+1)*chunkSize]); err != nil {
				done <- err
				return
			}
			if err := f.Sync(); err != nil {
				done <- err
				return
			}
			if d := int64(time.Since(start)); d > slowest.Load() {
				slowest.Store(d)
			}
			written.Add(1)
		}
		done <- nil
	}()
	for written.Load() < 8 {
		select {
		case err := <-done:
			t.Fatalf("writer ended before the outage: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}

	cut := time.Now()
	if err := os.Remove(links[0]); err != nil {
		t.Fatalf("taking %s off its port: %v", v.nqn, err)
	}
	atCut := written.Load()
	state := waitForState(t, v.nqn, 15*time.Second, func(s string) bool { return s != "live" })
	t.Logf("port link removed after %d chunks; controller went %q", atCut, state)
	if v.st.nodeCaps[csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH] {
		if h := v.health(t); len(h) == 0 {
			t.Errorf("NodeGetVolumeHealth during the outage reports no problem (controller %s)", state)
		} else {
			t.Logf("NodeGetVolumeHealth during the outage: %v", h)
		}
	}
	time.Sleep(outage - time.Since(cut))
	duringOutage := written.Load() - atCut
	if err := os.Symlink(filepath.Join(nvmetRoot, "subsystems", v.nqn), links[0]); err != nil {
		t.Fatalf("putting %s back on its port: %v", v.nqn, err)
	}
	restored := time.Now()

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("writer failed across the outage: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("writer still blocked 90s after the port came back (%d of %d chunks)", written.Load(), chunks)
	}
	waitForState(t, v.nqn, 30*time.Second, func(s string) bool { return s == "live" })
	t.Logf("I/O resumed %.2fs after the port came back; %d chunk(s) completed during the %s outage; slowest write+fsync %.2fs",
		time.Since(restored).Seconds(), duringOutage, outage, time.Duration(slowest.Load()).Seconds())
	// At most the chunk in flight when the port went can finish: everything else waits for the target.
	if duringOutage > 1 {
		t.Errorf("%d chunks were fsynced while the target was away: the outage did not reach the I/O path", duringOutage)
	}
	after, ok := mountAt(t, v.staging)
	if !ok || after.majorMinor != before.majorMinor || after.source != before.source {
		t.Fatalf("staging mount changed across the outage: before %+v, after %+v (ok=%v)", before, after, ok)
	}
	if !strings.HasPrefix(after.options, "rw") {
		t.Fatalf("filesystem is mounted %q after the outage: the kernel gave up on it", after.options)
	}
	dropCaches(t)
	checkFile(t, file, data)
	if v.st.nodeCaps[csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH] {
		if h := v.health(t); len(h) != 0 {
			t.Errorf("NodeGetVolumeHealth after the outage still reports %v", h)
		}
	}
	v.detach(t)
	v.delete(t)
}
