//go:build e2ekube

package e2ekube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 7: the Pod and its PVC deleted while the RDS is down (rds-sim stopped). Nothing can finish on
// the RDS's side meanwhile; once it is back at the same address, the attacher, the provisioner and the
// driver converge on their own: the VolumeAttachment and the PV go, and the RDS holds nothing of the volume.
func TestDeleteWhileRDSDown(t *testing.T) {
	l := need(t)
	claim := uniq("rdsdown")
	l.createPVC(t, pvc(claim, "rds-nvme", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce))
	p := claim + "-pod"
	l.createPod(t, pod(p, claim, false, "echo up > /data/f; sync; while true; do sleep 1; done"))
	l.waitPodPhase(t, p, 3*time.Minute, corev1.PodRunning)
	pv := l.boundPV(t, claim)
	id := pv.Spec.CSI.VolumeHandle

	l.sim.stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := l.startSim(); err != nil {
				t.Errorf("restarting rds-sim: %v", err)
			}
		}
	})
	l.deletePod(t, p, true)
	l.deletePVC(t, claim, false)
	// While the RDS is down the volume cannot be deleted: the PV must still be there after a while.
	time.Sleep(15 * time.Second)
	if _, err := l.kc.CoreV1().PersistentVolumes().Get(t.Context(), pv.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("PV %s went while the RDS was down (%v): the volume cannot have been deleted on it", pv.Name, err)
	}
	if err := l.startSim(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	l.waitPVGone(t, pv.Name, 5*time.Minute)
	poll(t, time.Minute, "RDS holds nothing of "+id, func() (bool, string) {
		left := l.simHolds(t, id)
		return len(left) == 0, strings.Join(left, "; ")
	})
}
