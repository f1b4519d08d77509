//go:build e2ekube

package e2ekube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Scenario 1: a filesystem PVC of each of the chart's filesystem classes is provisioned on the RDS,
// attached, formatted, mounted and written by a Pod; a second Pod, after the first is gone, reads the same
// data; deleting the PVC leaves nothing of the volume on the RDS.
func TestFilesystemPVCLifecycle(t *testing.T) {
	l := need(t)
	for _, tc := range []struct{ class, fstype string }{{"rds-nvme", "ext4"}, {"rds-nvme-xfs", "xfs"}} {
		t.Run(tc.fstype, func(t *testing.T) {
			claim, token := uniq("fs-"+tc.fstype), rand.String(16)
			l.createPVC(t, pvc(claim, tc.class, "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce))
			writer := claim + "-writer"
			out := l.runPod(t, pod(writer, claim, false,
				"set -e; grep ' /data ' /proc/mounts; echo "+token+" > /data/f; sync; cat /data/f"))
			if !strings.Contains(out, token) {
				t.Fatalf("the writer did not read back what it wrote: %q", out)
			}
			if !strings.Contains(out, " /data "+tc.fstype+" ") {
				t.Fatalf("/data is not %s in the writer: %q", tc.fstype, out)
			}
			pv := l.boundPV(t, claim)
			id := pv.Spec.CSI.VolumeHandle
			l.simDisk(t, id) // the RDS holds a disk of the volume
			if got := pv.Spec.CSI.FSType; got != tc.fstype {
				t.Errorf("PV fsType %q, want %q", got, tc.fstype)
			}
			l.deletePod(t, writer, true)
			// With no Pod left the attach-detach controller detaches the volume from the node.
			poll(t, 2*time.Minute, "volume detached after the writer", func() (bool, string) {
				va := l.attachments(t, pv.Name)
				return len(va) == 0, strings.Join(va, "; ")
			})

			reader := claim + "-reader"
			out = l.runPod(t, pod(reader, claim, false, "cat /data/f"))
			if !strings.Contains(out, token) {
				t.Fatalf("the second Pod does not see the data the first wrote: %q", out)
			}
			l.deletePod(t, reader, true)
			l.deletePVC(t, claim, true)
			l.waitPVGone(t, pv.Name, 2*time.Minute)
			poll(t, 30*time.Second, "RDS holds nothing of "+id, func() (bool, string) {
				left := l.simHolds(t, id)
				return len(left) == 0, strings.Join(left, "; ")
			})
		})
	}
}

// Scenario 2: a raw block PVC is written with dd by one Pod and read back by a second.
func TestBlockPVCWriteRead(t *testing.T) {
	l := need(t)
	claim := uniq("block")
	l.createPVC(t, pvc(claim, "rds-nvme-block", "64Mi", corev1.PersistentVolumeBlock, corev1.ReadWriteOnce))
	writer := claim + "-writer"
	out := l.runPod(t, pod(writer, claim, true, "set -e; test -b /dev/xvda; dd if=/dev/urandom of=/tmp/x bs=1M count=8 2>/dev/null; "+
		"dd if=/tmp/x of=/dev/xvda bs=1M count=8 conv=fsync 2>/dev/null; echo sum=$(md5sum < /tmp/x)"))
	sum := field(out, "sum=")
	if len(sum) < 32 {
		t.Fatalf("no checksum from the writer: %q", out)
	}
	pv := l.boundPV(t, claim)
	if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeBlock {
		t.Fatalf("PV %s is not a block volume", pv.Name)
	}
	l.deletePod(t, writer, true)
	reader := claim + "-reader"
	out = l.runPod(t, pod(reader, claim, true, "echo sum=$(dd if=/dev/xvda bs=1M count=8 2>/dev/null | md5sum)"))
	if got := field(out, "sum="); got != sum {
		t.Fatalf("read back %q, wrote %q", got, sum)
	}
	l.deletePod(t, reader, true)
	l.deletePVC(t, claim, true)
	l.waitPVGone(t, pv.Name, 2*time.Minute)
	if left := l.simHolds(t, pv.Spec.CSI.VolumeHandle); len(left) > 0 {
		t.Fatalf("the RDS still holds %v", left)
	}
}

// field is the rest of the first line of out that starts with prefix.
func field(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
