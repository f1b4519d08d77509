//go:build e2ekube

package e2ekube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Scenario 6: a ReadWriteMany block volume used by two Pods on the node at once, as KubeVirt does while it
// migrates a VM (source and target launcher Pods both hold the disk), then the source Pod removed: the
// target keeps its disk, sees what the source wrote, and the volume stays attached until it too is gone.
func TestRWXBlockMigration(t *testing.T) {
	l := need(t)
	claim, marker := uniq("rwx"), rand.String(24)
	l.createPVC(t, pvc(claim, "rds-nvme-block", "64Mi", corev1.PersistentVolumeBlock, corev1.ReadWriteMany))
	source, target := claim+"-source", claim+"-target"
	l.createPod(t, pod(source, claim, true, "set -e; printf "+marker+" | dd of=/dev/xvda conv=fsync 2>/dev/null; echo wrote; "+
		"while true; do sleep 1; done"))
	l.waitPodPhase(t, source, 3*time.Minute, corev1.PodRunning)
	poll(t, time.Minute, "the source wrote its marker", func() (bool, string) {
		out := l.podLog(testNS, source)
		return strings.Contains(out, "wrote"), out
	})
	l.createPod(t, pod(target, claim, true, "i=0; while true; do i=$((i+1)); echo read$i=$(dd if=/dev/xvda bs=24 count=1 2>/dev/null); sleep 1; done"))
	l.waitPodPhase(t, target, 3*time.Minute, corev1.PodRunning)
	poll(t, time.Minute, "the target reads the source's marker", func() (bool, string) {
		out := l.podLog(testNS, target)
		return strings.Contains(out, "="+marker), out
	})
	pv := l.boundPV(t, claim)
	if va := l.attachments(t, pv.Name); len(va) != 1 || !strings.Contains(va[0], "attached=true") {
		t.Fatalf("want one attachment to %s while both Pods run, have %v", nodeName, va)
	}

	l.deletePod(t, source, true)
	seen := strings.Count(l.podLog(testNS, target), "\n")
	poll(t, time.Minute, "the target keeps reading its disk after the source is gone", func() (bool, string) {
		out := l.podLog(testNS, target)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		return strings.Count(out, "\n") >= seen+3 && strings.HasSuffix(last, "="+marker), last
	})
	if va := l.attachments(t, pv.Name); len(va) != 1 {
		t.Fatalf("the volume must stay attached for the target, have %v", va)
	}
	l.deletePod(t, target, true)
	poll(t, 2*time.Minute, "volume detached after both Pods", func() (bool, string) {
		va := l.attachments(t, pv.Name)
		return len(va) == 0, strings.Join(va, "; ")
	})
	l.deletePVC(t, claim, true)
	l.waitPVGone(t, pv.Name, 2*time.Minute)
}
