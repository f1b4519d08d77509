//go:build e2ekube

package e2ekube

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// testNS is where the scenarios' PVCs and Pods live.
const testNS = "default"

const busybox = "localhost/e2e/busybox:1"

func uniq(prefix string) string { return prefix + "-" + rand.String(5) }

func pvc(name, class string, size string, mode corev1.PersistentVolumeMode, access corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class),
			AccessModes:      []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:       ptr.To(mode),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

// pod is a busybox Pod running script with the claim at /data (filesystem) or /dev/xvda (block).
func pod(name, claim string, block bool, script string) *corev1.Pod {
	c := corev1.Container{Name: "c", Image: busybox, ImagePullPolicy: corev1.PullNever, Command: []string{"sh", "-c", script}}
	if block {
		c.VolumeDevices = []corev1.VolumeDevice{{Name: "vol", DevicePath: "/dev/xvda"}}
	} else {
		c.VolumeMounts = []corev1.VolumeMount{{Name: "vol", MountPath: "/data"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.PodSpec{
			HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{c},
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Volumes: []corev1.Volume{{Name: "vol", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// poll calls f every 250 ms until it returns true, fails the test after timeout with the last message.
func poll(t *testing.T, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, msg := f()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (l *lane) createPVC(t *testing.T, c *corev1.PersistentVolumeClaim) {
	t.Helper()
	if _, err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.deletePVC(t, c.Name, false) })
}

func (l *lane) createPod(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if _, err := l.kc.CoreV1().Pods(testNS).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.deletePod(t, p.Name, false) })
}

// events is the namespace's events about one object, for failure messages.
func (l *lane) events(name string) string {
	evs, err := l.kc.CoreV1().Events(testNS).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var sb strings.Builder
	for _, e := range evs.Items {
		fmt.Fprintf(&sb, "\n  %s %s: %s", e.Type, e.Reason, e.Message)
	}
	return sb.String()
}

// waitPodPhase waits for one of phases; a Pod ending in another terminal phase fails at once.
func (l *lane) waitPodPhase(t *testing.T, name string, timeout time.Duration, want corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	poll(t, timeout, "pod "+name+" "+string(want), func() (bool, string) {
		var err error
		p, err = l.kc.CoreV1().Pods(testNS).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase == want {
			return true, ""
		}
		if p.Status.Phase == corev1.PodFailed || (p.Status.Phase == corev1.PodSucceeded && want != corev1.PodSucceeded) {
			t.Fatalf("pod %s is %s, want %s; log:\n%s\nevents:%s", name, p.Status.Phase, want, l.podLog(testNS, name), l.events(name))
		}
		return false, fmt.Sprintf("phase %s; events:%s%s", p.Status.Phase, l.events(name), l.attachErrors())
	})
	return p
}

// attachErrors are the attach and detach errors the VolumeAttachments report, for failure messages: a
// Pod waiting for its volume has no events of its own about it.
func (l *lane) attachErrors() string {
	vas, err := l.kc.StorageV1().VolumeAttachments().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var sb strings.Builder
	for _, va := range vas.Items {
		if e := va.Status.AttachError; e != nil {
			fmt.Fprintf(&sb, "\n  VolumeAttachment %s attach error: %s", va.Name, e.Message)
		}
		if e := va.Status.DetachError; e != nil {
			fmt.Fprintf(&sb, "\n  VolumeAttachment %s detach error: %s", va.Name, e.Message)
		}
	}
	return sb.String()
}

// runPod runs a Pod to completion and returns its log.
func (l *lane) runPod(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	l.createPod(t, p)
	l.waitPodPhase(t, p.Name, 3*time.Minute, corev1.PodSucceeded)
	return l.podLog(testNS, p.Name)
}

func (l *lane) deletePod(t *testing.T, name string, wait bool) {
	t.Helper()
	err := l.kc.CoreV1().Pods(testNS).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
	if apierrors.IsNotFound(err) || !wait {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "pod "+name+" gone", func() (bool, string) {
		_, err := l.kc.CoreV1().Pods(testNS).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("%v; events:%s", err, l.events(name))
	})
}

func (l *lane) deletePVC(t *testing.T, name string, wait bool) {
	t.Helper()
	err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Delete(context.Background(), name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) || !wait {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "pvc "+name+" gone", func() (bool, string) {
		_, err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// boundPV waits for the claim to be bound and returns its PersistentVolume.
func (l *lane) boundPV(t *testing.T, claim string) *corev1.PersistentVolume {
	t.Helper()
	var pvName string
	poll(t, 2*time.Minute, "pvc "+claim+" Bound", func() (bool, string) {
		c, err := l.kc.CoreV1().PersistentVolumeClaims(testNS).Get(context.Background(), claim, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pvName = c.Spec.VolumeName
		return c.Status.Phase == corev1.ClaimBound, fmt.Sprintf("phase %s; events:%s", c.Status.Phase, l.events(claim))
	})
	pv, err := l.kc.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driverName {
		t.Fatalf("PV %s is not one of %s's: %+v", pv.Name, driverName, pv.Spec.PersistentVolumeSource)
	}
	return pv
}

// waitPVGone waits for the PV and every VolumeAttachment of it to be deleted.
func (l *lane) waitPVGone(t *testing.T, pv string, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, "PV "+pv+" and its VolumeAttachments gone", func() (bool, string) {
		vas, err := l.kc.StorageV1().VolumeAttachments().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, va := range vas.Items {
			if ptr.Deref(va.Spec.Source.PersistentVolumeName, "") == pv {
				return false, "VolumeAttachment " + va.Name + " still there"
			}
		}
		_, err = l.kc.CoreV1().PersistentVolumes().Get(context.Background(), pv, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("PV: %v", err)
	})
}

// attachments lists the VolumeAttachments of one PV.
func (l *lane) attachments(t *testing.T, pv string) []string {
	t.Helper()
	vas, err := l.kc.StorageV1().VolumeAttachments().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, va := range vas.Items {
		if ptr.Deref(va.Spec.Source.PersistentVolumeName, "") == pv {
			out = append(out, fmt.Sprintf("%s node=%s attached=%v", va.Name, va.Spec.NodeName, va.Status.Attached))
		}
	}
	return out
}

// simState is rds-sim's persisted state (its data dir's state.json), as raw JSON objects.
type simState struct {
	Disks      []map[string]any `json:"disks"`
	Subvolumes []map[string]any `json:"subvolumes"`
}

func (l *lane) simState(t *testing.T) simState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.simDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s simState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("rds-sim state.json: %v", err)
	}
	return s
}

// simHolds lists what rds-sim holds of a volume or snapshot id: disks and subvolumes that name it in any
// field, and files under its pool whose path contains it.
func (l *lane) simHolds(t *testing.T, id string) []string {
	t.Helper()
	s := l.simState(t)
	var out []string
	for _, group := range []struct {
		kind string
		objs []map[string]any
	}{{"disk", s.Disks}, {"subvolume", s.Subvolumes}} {
		for _, o := range group.objs {
			b, _ := json.Marshal(o)
			if strings.Contains(string(b), id) {
				out = append(out, group.kind+" "+string(b))
			}
		}
	}
	_ = filepath.Walk(filepath.Join(l.simDir, "fs"), func(p string, _ os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, id) {
			out = append(out, "file "+p)
		}
		return nil
	})
	return out
}

// simDisk is rds-sim's disk entry of a volume (its file-size and file-path among others), or fails.
func (l *lane) simDisk(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, d := range l.simState(t).Disks {
		b, _ := json.Marshal(d)
		if strings.Contains(string(b), id) {
			return d
		}
	}
	t.Fatalf("rds-sim has no disk of volume %s", id)
	return nil
}
