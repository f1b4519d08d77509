//go:build e2ekube

package e2ekube

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Scenario 3: a PVC grown while its Pod runs (csi-resizer with the chart's --handle-volume-inuse-error=false,
// then kubelet's NodeExpandVolume): the RDS's file grows and the Pod sees the new size without a restart.
// xfs: online ext4 growth fails on this host (resize2fs gets EPERM without CAP_SYS_RESOURCE), while
// xfs_growfs works; the VM lane is where ext4 grows online.
func TestOnlineExpansion(t *testing.T) {
	l := need(t)
	ctx := context.Background()
	claim := uniq("grow")
	l.createPVC(t, pvc(claim, "rds-nvme-xfs", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce))
	p := claim + "-pod"
	l.createPod(t, pod(p, claim, false, "while true; do echo kb=$(df -k /data | tail -1 | awk '{print $2}'); sleep 1; done"))
	l.waitPodPhase(t, p, 3*time.Minute, corev1.PodRunning)
	pv := l.boundPV(t, claim)
	before := lastKB(l.podLog(testNS, p))
	if before <= 0 || before > 1<<20 {
		t.Fatalf("the Pod sees %d KiB before growing, want about 1 GiB", before)
	}
	patch := `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`
	if _, err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Patch(ctx, claim, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	want := resource.MustParse("2Gi")
	poll(t, 3*time.Minute, "PVC capacity 2Gi", func() (bool, string) {
		c, err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got := c.Status.Capacity[corev1.ResourceStorage]
		return got.Cmp(want) >= 0, fmt.Sprintf("capacity %s, conditions %v; events:%s", got.String(), c.Status.Conditions, l.events(claim))
	})
	poll(t, 2*time.Minute, "the running Pod sees the grown filesystem", func() (bool, string) {
		kb := lastKB(l.podLog(testNS, p))
		return kb > 3*before/2, fmt.Sprintf("df says %d KiB (was %d)", kb, before)
	})
	if pod, _ := l.kc.CoreV1().Pods(testNS).Get(ctx, p, metav1.GetOptions{}); pod.Status.Phase != corev1.PodRunning ||
		pod.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("the Pod did not keep running through the growth: %s", pod.Status.Phase)
	}
	st := l.simBackingFile(t, pv.Spec.CSI.VolumeHandle)
	if st < 2<<30 {
		t.Fatalf("the RDS's file of the volume is %d bytes, want 2 GiB", st)
	}
	l.deletePod(t, p, true)
	l.deletePVC(t, claim, true)
	l.waitPVGone(t, pv.Name, 2*time.Minute)
}

// lastKB is the last "kb=N" the Pod printed.
func lastKB(log string) int64 {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "kb="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// simBackingFile is the size of the file rds-sim keeps a volume in.
func (l *lane) simBackingFile(t *testing.T, id string) int64 {
	t.Helper()
	for _, h := range l.simHolds(t, id) {
		if p, ok := strings.CutPrefix(h, "file "); ok {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return fi.Size()
			}
		}
	}
	t.Fatalf("rds-sim has no file of volume %s", id)
	return 0
}
