//go:build e2ekube

package e2ekube

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// driverProc is the rds-csi container of a pod of the chart.
func driverProc(t *testing.T, pr *podRun) *proc {
	t.Helper()
	for _, p := range pr.procs {
		if strings.HasSuffix(p.name, "/rds-csi") {
			return p
		}
	}
	t.Fatalf("pod %s has no rds-csi container", pr.name)
	return nil
}

// metricsAddress is the --metrics-address the chart gives a driver container.
func metricsAddress(t *testing.T, p *proc) string {
	t.Helper()
	for _, a := range p.argv {
		if v, ok := strings.CutPrefix(a, "--metrics-address="); ok {
			if strings.HasPrefix(v, ":") {
				v = "127.0.0.1" + v
			}
			return v
		}
	}
	t.Fatalf("%s has no --metrics-address", p.name)
	return ""
}

// scrape reads one unlabelled gauge from a /metrics endpoint.
func scrape(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s has no %s", addr, name)
}

// attachedCount is the number of VolumeAttachments of this driver Kubernetes reports attached.
func (l *lane) attachedCount(t *testing.T) int {
	t.Helper()
	vas, err := l.kc.StorageV1().VolumeAttachments().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, va := range vas.Items {
		if va.Spec.Attacher == driverName && va.Status.Attached {
			n++
		}
	}
	return n
}

// Scenario 5: the driver's controller and node processes restarted while a Pod writes to its volume: the
// writes go on, the controller's rds_csi_nvme_connections_active gauge is right on its first scrape after
// the restart (it is rebuilt from the VolumeAttachments before the driver serves), and the restarted node
// plugin still unstages the volume when the Pod goes.
func TestDriverRestartWhilePodWrites(t *testing.T) {
	l := need(t)
	claim := uniq("restart")
	l.createPVC(t, pvc(claim, "rds-nvme", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce))
	p := claim + "-writer"
	l.createPod(t, pod(p, claim, false, "i=0; while true; do i=$((i+1)); echo line$i >> /data/log; sync; echo n=$i; sleep 0.2; done"))
	l.waitPodPhase(t, p, 3*time.Minute, corev1.PodRunning)
	pv := l.boundPV(t, claim)
	written := func() int {
		n, _ := strconv.Atoi(lastField(l.podLog(testNS, p), "n="))
		return n
	}
	poll(t, time.Minute, "the Pod writes", func() (bool, string) { return written() >= 3, fmt.Sprint(written()) })
	want := float64(l.attachedCount(t))
	if want < 1 {
		t.Fatalf("no attached VolumeAttachment while the Pod runs")
	}

	ctl := driverProc(t, l.controller)
	addr := metricsAddress(t, ctl)
	done := l.disrupt()
	defer done()
	if err := ctl.restart(); err != nil {
		t.Fatal(err)
	}
	// The first answer of the new process is the one that counts: nothing may have been re-learnt lazily.
	var got float64
	poll(t, time.Minute, "the restarted controller serves metrics", func() (bool, string) {
		v, err := scrape(addr, "rds_csi_nvme_connections_active")
		got = v
		return err == nil, fmt.Sprint(err)
	})
	if got != want {
		t.Fatalf("rds_csi_nvme_connections_active = %v right after the controller restart, want %v", got, want)
	}

	node := driverProc(t, l.node)
	if err := node.restart(); err != nil {
		t.Fatal(err)
	}
	if err := l.waitRegistered(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	before := written()
	poll(t, time.Minute, "the Pod's writes go on after both restarts", func() (bool, string) {
		return written() >= before+10, fmt.Sprintf("%d lines, %d before", written(), before)
	})
	if v, err := scrape(addr, "rds_csi_nvme_connections_active"); err != nil || v != want {
		t.Fatalf("rds_csi_nvme_connections_active = %v (%v) after the node restart, want %v", v, err, want)
	}

	l.deletePod(t, p, true)
	poll(t, 2*time.Minute, "volume unstaged and detached by the restarted node plugin", func() (bool, string) {
		va := l.attachments(t, pv.Name)
		return len(va) == 0, strings.Join(va, "; ")
	})
	last := before + 10
	out := l.runPod(t, pod(claim+"-reader", claim, false, "wc -l < /data/log; tail -1 /data/log"))
	lines, _ := strconv.Atoi(strings.TrimSpace(strings.Split(out, "\n")[0]))
	if lines < last {
		t.Fatalf("the volume holds %d lines, the Pod had written at least %d: %q", lines, last, out)
	}
	l.deletePod(t, claim+"-reader", true)
	l.deletePVC(t, claim, true)
	l.waitPVGone(t, pv.Name, 2*time.Minute)
}

// lastField is the value of the last line of out starting with prefix.
func lastField(out, prefix string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), prefix); ok {
			return v
		}
	}
	return ""
}
