//go:build e2ekube

package e2ekube

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// lane is the running system the scenarios share: one cluster, one simulator, one driver install.
type lane struct {
	e       *env
	kc      kubernetes.Interface
	dyn     dynamic.Interface
	sim     *proc
	simDir  string
	simAddr string

	controller, node *podRun
	snapshotCtl      *proc

	mu          sync.Mutex
	disruptions [][2]time.Time // when a scenario restarted the driver on purpose
}

// disrupt records that a scenario restarts the driver on purpose, from now until the returned func is
// called. A sidecar that was running across such a restart exits once when it notices the driver's socket
// went away (at its next call, which may be minutes later: "Lost connection to CSI driver, exiting"); it
// is restarted, as kubelet would, and that exit is not held against the lane.
func (l *lane) disrupt() func() {
	from := time.Now()
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.disruptions = append(l.disruptions, [2]time.Time{from, time.Now()})
	}
}

// tolerated: the run that ended in x had lived through a deliberate driver restart.
func (l *lane) tolerated(x exit) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.disruptions {
		if x.started.Before(d[0]) && !x.at.Before(d[0]) {
			return true
		}
	}
	return false
}

// the lane, or why there is none (tests skip with it, or fail under CI=true)
var (
	theLane *lane
	laneErr error
)

func TestMain(m *testing.M) {
	e, err := loadEnv()
	if err != nil && os.Getenv("E2E_KUBE_DIR") == "" {
		laneErr = err // not run by e2e.sh: the tests skip (or fail under CI=true)
		os.Exit(m.Run())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e-kube: the lane's environment is incomplete: %v\n", err)
		os.Exit(1)
	}
	l, err := startLane(e)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e-kube: the lane did not start: %v\n", err)
		if l != nil {
			l.stop()
		}
		os.Exit(1)
	}
	theLane = l
	code := m.Run()
	exits := l.unexpectedExits()
	l.stop()
	if len(exits) > 0 {
		fmt.Fprintf(os.Stderr, "e2e-kube: processes of the lane exited during the run:\n  %s\n", strings.Join(exits, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// need returns the lane or ends the test: skipped with the reason, or failed under CI=true.
func need(t *testing.T) *lane {
	t.Helper()
	if theLane != nil {
		return theLane
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and the kube lane is not available: %v", laneErr)
	}
	t.Skipf("the kube lane is not available: %v", laneErr)
	return nil
}

func (l *lane) procs() []*proc {
	var all []*proc
	if l.sim != nil {
		all = append(all, l.sim)
	}
	if l.snapshotCtl != nil {
		all = append(all, l.snapshotCtl)
	}
	for _, pr := range []*podRun{l.controller, l.node} {
		if pr != nil {
			all = append(all, pr.procs...)
		}
	}
	return all
}

func (l *lane) unexpectedExits() []string {
	var out []string
	for _, p := range l.procs() {
		for _, x := range p.unexpectedExits() {
			if l.tolerated(x) {
				fmt.Fprintf(os.Stderr, "e2e-kube: %s at %s, having lived through a deliberate driver restart; restarted as kubelet would\n",
					x.msg, x.at.Format(time.TimeOnly))
				continue
			}
			out = append(out, x.msg+" at "+x.at.Format(time.TimeOnly)+"\n"+indent(p.tail(15)))
		}
	}
	return out
}

func (l *lane) stop() {
	all := l.procs()
	for i := len(all) - 1; i >= 0; i-- {
		all[i].stop()
	}
}

func indent(s string) string { return "    | " + strings.ReplaceAll(s, "\n", "\n    | ") }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startSim starts rds-sim on the lane's fixed address (kept across restarts, as an RDS keeps its IP).
func (l *lane) startSim() error {
	if err := l.sim.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", l.simAddr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if !l.sim.alive() {
			return fmt.Errorf("rds-sim exited:\n%s", l.sim.tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("rds-sim does not listen on %s", l.simAddr)
}

func startLane(e *env) (*lane, error) {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		return nil, err
	}
	l := &lane{e: e, simDir: filepath.Join(e.dir, "rds-sim")}
	if l.kc, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if l.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	for _, d := range []string{l.simDir, filepath.Join(e.dir, "pods"), filepath.Join(e.dir, "node-sim"), filepath.Join(e.dir, "logs")} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "logs"), 0o755); err != nil {
		return nil, err
	}

	// The RDS: rds-sim with the chart's default user.
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	l.simAddr = fmt.Sprintf("127.0.0.1:%d", port)
	l.sim = &proc{name: "rds-sim", argv: []string{e.sim, "--data-dir", l.simDir, "--listen", l.simAddr, "--user", "csi"},
		env: os.Environ(), log: filepath.Join(e.dir, "logs", "rds-sim.log")}
	if err := l.startSim(); err != nil {
		return l, err
	}

	objs, err := renderChart(e, l.simAddr, filepath.Join(l.simDir, "client_key"), filepath.Join(l.simDir, "known_hosts"))
	if err != nil {
		return l, err
	}
	r, err := splitRendered(objs)
	if err != nil {
		return l, err
	}
	if _, err := l.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return l, err
	}

	// The VolumeSnapshot CRDs and snapshot-controller of the release the chart's csi-snapshotter comes from.
	snapTag := ""
	for _, c := range r.controller.Spec.Template.Spec.Containers {
		if c.Name == "csi-snapshotter" {
			snapTag = c.Image[strings.LastIndex(c.Image, ":")+1:]
		}
	}
	if snapTag == "" {
		return l, fmt.Errorf("the chart renders no csi-snapshotter (the lane's values enable snapshots)")
	}
	snapDir := filepath.Join(e.sidecars, "external-snapshotter", snapTag)
	crds, err := filepath.Glob(filepath.Join(snapDir, "crd", "*storage.k8s.io_*.yaml"))
	if err != nil || len(crds) == 0 {
		return l, fmt.Errorf("no VolumeSnapshot CRDs in %s (hack/e2e-kube/build.sh sidecars): %v", snapDir, err)
	}
	for _, verb := range [][]string{{"apply"}, {"wait", "--for=condition=established", "--timeout=60s"}} {
		args := verb
		for _, f := range crds {
			args = append(args, "-f", f)
		}
		if out, err := l.kubectl(args...); err != nil {
			return l, fmt.Errorf("snapshot CRDs: %v: %s", err, out)
		}
	}
	manifest := filepath.Join(e.dir, "chart-objects.yaml")
	var sb strings.Builder
	for _, o := range r.apply {
		b, err := o.MarshalJSON()
		if err != nil {
			return l, err
		}
		sb.WriteString("---\n")
		sb.Write(b)
		sb.WriteString("\n")
	}
	if err := os.WriteFile(manifest, []byte(sb.String()), 0o644); err != nil {
		return l, err
	}
	if out, err := l.kubectl("apply", "-f", manifest); err != nil {
		return l, fmt.Errorf("applying the chart's objects: %v: %s", err, out)
	}
	l.snapshotCtl = &proc{name: "snapshot-controller", argv: []string{filepath.Join(snapDir, "snapshot-controller"),
		"--kubeconfig=" + e.kubeconfig, "--leader-election=false", "--v=2"},
		env: os.Environ(), log: filepath.Join(e.dir, "logs", "snapshot-controller.log")}

	// In-cluster configuration for the controller pod's containers, as kubelet would give them.
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return l, err
	}
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}
	if err := os.MkdirAll("/var/run/secrets/kubernetes.io/serviceaccount", 0o755); err != nil {
		return l, err
	}
	ctlSpec := &r.controller.Spec.Template.Spec
	tokenDir, err := l.serviceAccountToken(ctx, ctlSpec.ServiceAccountName, r.controller.Name)
	if err != nil {
		return l, err
	}
	if l.controller, err = podProcesses(e, r, r.controller.Name+"-0", ctlSpec, baseEnv, tokenDir, nil); err != nil {
		return l, err
	}

	// The node: the chart's args, but the simulator's loop data path instead of the kernel's NVMe/TCP,
	// which this machine lacks. The loop initiator attaches the files of an embedded simulator; that
	// simulator's pool directory is rds-sim's, so the loop devices are rds-sim's disks.
	nodeSim := filepath.Join(e.dir, "node-sim")
	if err := os.MkdirAll(filepath.Join(nodeSim, "fs"), 0o755); err != nil {
		return l, err
	}
	if err := os.Symlink(filepath.Join(l.simDir, "fs", "pool"), filepath.Join(nodeSim, "fs", "pool")); err != nil {
		return l, err
	}
	nodeSpec := &r.node.Spec.Template.Spec
	if ptr.Deref(nodeSpec.AutomountServiceAccountToken, true) {
		return l, fmt.Errorf("the chart's node plugin now mounts a service account token; the lane does not give it one")
	}
	fixNode := func(container string, args []string) ([]string, error) {
		if container != "rds-csi" {
			return args, nil
		}
		for i, a := range args {
			if a == "--nvme-initiator=nvme-cli" {
				args[i] = "--nvme-initiator=loop"
				return append(args, "--rds-simulator="+nodeSim), nil
			}
		}
		return nil, fmt.Errorf("the chart's node plugin has no --nvme-initiator=nvme-cli to swap for the loop data path: %q", args)
	}
	if l.node, err = podProcesses(e, r, r.node.Name+"-"+nodeName, nodeSpec, baseEnv, "", fixNode); err != nil {
		return l, err
	}

	for _, pr := range []*podRun{l.controller, l.node} {
		for _, s := range pr.skipped {
			fmt.Fprintf(os.Stderr, "e2e-kube: pod %s: not run: %s\n", pr.name, s)
		}
		for _, n := range pr.notes {
			fmt.Fprintf(os.Stderr, "e2e-kube: pod %s: %s\n", pr.name, n)
		}
		for _, p := range pr.procs {
			fmt.Fprintf(os.Stderr, "e2e-kube: %s: %s\n", p.name, strings.Join(p.argv, " "))
		}
	}
	for _, p := range l.procs()[1:] {
		if err := p.start(); err != nil {
			return l, err
		}
	}
	return l, l.waitRegistered(ctx, 90*time.Second)
}

// waitRegistered waits for kubelet to list the driver on the node's CSINode, with every process alive.
func (l *lane) waitRegistered(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, p := range l.procs() {
			for _, x := range p.unexpectedExits() {
				if !l.tolerated(x) {
					return fmt.Errorf("%s:\n%s", x.msg, indent(p.tail(25)))
				}
			}
		}
		if n, err := l.kc.StorageV1().CSINodes().Get(ctx, nodeName, metav1.GetOptions{}); err == nil {
			for _, d := range n.Spec.Drivers {
				if d.Name == driverName {
					return nil
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("kubelet did not register %s on %s within %s", driverName, nodeName, timeout)
}

// serviceAccountToken writes a pod's service account files (a bound token from the TokenRequest API, the
// cluster CA, the namespace) to a directory of its own, for the process's mount namespace.
func (l *lane) serviceAccountToken(ctx context.Context, sa, pod string) (string, error) {
	tr, err := l.kc.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](4 * 3600)}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of service account %s: %w", sa, err)
	}
	dir := filepath.Join(l.e.dir, "pods", pod+"-0", "serviceaccount")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ca, err := os.ReadFile(filepath.Join(l.e.dir, "pki", "ca.crt"))
	if err != nil {
		return "", err
	}
	for name, b := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": ca, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (l *lane) kubectl(args ...string) (string, error) {
	out, err := exec.Command(l.e.kubectl, append([]string{"--kubeconfig=" + l.e.kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// podLog is a Pod's container output as kubelet wrote it to podLogsDir (kubectl logs cannot reach a
// kubelet on a loopback address): the CRI log format, "<time> <stream> <tag> <text>", reduced to the text.
func (l *lane) podLog(ns, pod string) string {
	files, _ := filepath.Glob(filepath.Join(l.e.dir, "podlogs", ns+"_"+pod+"_*", "c", "*.log"))
	var sb strings.Builder
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), " ", 4)
			if len(parts) == 4 {
				sb.WriteString(parts[3])
				if parts[2] == "F" {
					sb.WriteString("\n")
				}
			}
		}
		fh.Close()
	}
	return sb.String()
}
