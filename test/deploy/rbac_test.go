package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rds-csi/rds-csi/test/kubeenv"
	"github.com/rds-csi/rds-csi/test/procenv"
)

// rbacInstall is the chart's RBAC, created for real in a namespace of its own under a release name of
// its own (ClusterRoles are cluster-wide), for a driver name of its own (so the controller sees only
// this test's PersistentVolumes and VolumeAttachments).
type rbacInstall struct {
	namespace, release, driver string
	controllerSA, nodeSA       string
	driverRole                 string // the driver's own ClusterRole
	admin                      kubernetes.Interface
	adminCfg                   *rest.Config
}

// installChartRBAC renders the chart with storage capacity and snapshots on (the most rules) and
// creates its ServiceAccounts, Roles and bindings.
func installChartRBAC(ctx context.Context, t *testing.T) *rbacInstall {
	t.Helper()
	cfg := kubeenv.RestConfig(t)
	in := &rbacInstall{
		namespace: kubeenv.UniqueName(t, "ns"),
		release:   kubeenv.UniqueName(t, "rel"),
		driver:    kubeenv.DriverName(t),
		admin:     kubeenv.NewClient(t, cfg),
		adminCfg:  cfg,
	}
	if len(in.release) > 40 {
		in.release = strings.TrimRight(in.release[:40], "-")
	}
	kubeenv.WaitReady(t, in.admin, 30*time.Second)
	if _, err := in.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: in.namespace}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	manifest := render(t, "capacity-monitoring-values.yaml", renderOptions{release: in.release, namespace: in.namespace,
		set: []string{"driverName=" + in.driver}})
	c := newAPIClient(t, cfg)
	for _, o := range decodeObjects(t, manifest) {
		switch o.GetKind() {
		case "ServiceAccount":
			switch {
			case strings.HasSuffix(o.GetName(), "-node"):
				in.nodeSA = o.GetName()
			case strings.HasSuffix(o.GetName(), "-controller"):
				in.controllerSA = o.GetName()
			}
		case "ClusterRole":
			if strings.HasSuffix(o.GetName(), "-driver") {
				in.driverRole = o.GetName()
			}
		case "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if err := c.create(ctx, o); err != nil {
			t.Fatal(err)
		}
		if o.GetNamespace() == "" {
			obj := o
			t.Cleanup(func() {
				r, err := c.resourceFor(obj)
				if err == nil {
					_ = r.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{})
				}
			})
		}
	}
	if in.controllerSA == "" || in.nodeSA == "" || in.driverRole == "" {
		t.Fatalf("rendering lacks the controller or node ServiceAccount or the driver's ClusterRole (got %q, %q, %q)",
			in.controllerSA, in.nodeSA, in.driverRole)
	}
	return in
}

// serviceAccountUser is the user name Kubernetes gives a ServiceAccount's token.
func (in *rbacInstall) serviceAccountUser(sa string) string {
	return "system:serviceaccount:" + in.namespace + ":" + sa
}

// as returns a client acting as the ServiceAccount, through impersonation by the test's admin.
func (in *rbacInstall) as(t *testing.T, sa string) kubernetes.Interface {
	cfg := rest.CopyConfig(in.adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: in.serviceAccountUser(sa)}
	return kubeenv.NewClient(t, cfg)
}

// kubeconfigAs writes a kubeconfig that impersonates the ServiceAccount, for the driver process.
func (in *rbacInstall) kubeconfigAs(t *testing.T, sa string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(os.Getenv(kubeenv.EnvKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range kc.AuthInfos {
		auth.Impersonate = in.serviceAccountUser(sa)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestControllerRBACIsEnough runs the real driver (controller mode, embedded RDS simulator) as the
// chart's controller ServiceAccount against the kube lane's API server and makes it do what the
// attachment tests do: rebuild its state from VolumeAttachments and PVs, check nodes, refuse a
// conflicting attach and record the event on the claim, start a live migration, win and release the
// leader Lease. Nothing it does may be forbidden.
func TestControllerRBACIsEnough(t *testing.T) {
	t.Run("the controller ServiceAccount", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		in := installChartRBAC(ctx, t)
		runControllerAs(ctx, t, in, in.controllerSA)
	})
	// The sidecars' rules overlap the driver's (nodes, PVs, VolumeAttachments, events): an account
	// bound to the driver's ClusterRole and the namespace Role alone proves the driver's role is
	// complete by itself, whatever the sidecars' documentation grants.
	t.Run("the driver's roles alone", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		in := installChartRBAC(ctx, t)
		runControllerAs(ctx, t, in, in.driverOnlyAccount(ctx, t))
	})
}

// driverOnlyAccount makes a ServiceAccount bound to nothing but the chart's driver ClusterRole and its
// namespace Role (Leases), and returns its name.
func (in *rbacInstall) driverOnlyAccount(ctx context.Context, t *testing.T) string {
	t.Helper()
	sa := in.controllerSA + "-driver-only"
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: in.namespace}}
	mustCreate(t, func() error {
		_, err := in.admin.CoreV1().ServiceAccounts(in.namespace).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := in.admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: in.driverRole}}, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() {
		_ = in.admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), sa, metav1.DeleteOptions{})
	})
	mustCreate(t, func() error {
		_, err := in.admin.RbacV1().RoleBindings(in.namespace).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: in.controllerSA}}, metav1.CreateOptions{})
		return err
	})
	return sa
}

// runControllerAs runs the controller as the ServiceAccount sa through the attachment scenario.
func runControllerAs(ctx context.Context, t *testing.T, in *rbacInstall, sa string) {

	nodeA, nodeB := kubeenv.UniqueName(t, "node-a"), kubeenv.UniqueName(t, "node-b")
	claim := "data"
	volRWO, volRWX := kubeenv.UniqueName(t, "pvc"), kubeenv.UniqueName(t, "pvc")
	for _, n := range []string{nodeA, nodeB} {
		mustCreate(t, func() error {
			_, err := in.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
			return err
		})
	}
	// What the provisioner and the attach/detach controller would have made: both volumes bound and
	// attached to node A before this controller starts, so it must learn that from the API server.
	in.createPV(ctx, t, volRWO, claim, false)
	in.createPV(ctx, t, volRWX, "", true)
	in.createAttachedVA(ctx, t, volRWO, nodeA)
	in.createAttachedVA(ctx, t, volRWX, nodeA)

	drv := startDriver(ctx, t, in, sa)
	ctrl := csi.NewControllerClient(drv.conn)
	mount := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}
	for _, v := range []struct {
		name string
		cap  *csi.VolumeCapability
	}{{volRWO, mount}, {volRWX, block}} {
		if _, err := ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: v.name, VolumeCapabilities: []*csi.VolumeCapability{v.cap},
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}); err != nil {
			t.Fatalf("CreateVolume %s: %v", v.name, err)
		}
	}

	publish := func(vol, node string, c *csi.VolumeCapability) error {
		_, err := ctrl.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: node, VolumeCapability: c})
		return err
	}
	tests := []struct {
		what      string
		vol, node string
		cap       *csi.VolumeCapability
		want      codes.Code
		mentions  string
	}{
		{"the holder again", volRWO, nodeA, mount, codes.OK, ""},
		{"a second node of a single-node volume", volRWO, nodeB, mount, codes.FailedPrecondition, nodeA},
		{"a node that does not exist", volRWO, "no-such-node-" + in.namespace, mount, codes.NotFound, "does not exist"},
		{"the migration target of a block RWX volume", volRWX, nodeB, block, codes.OK, ""},
	}
	for _, tc := range tests {
		err := publish(tc.vol, tc.node, tc.cap)
		if status.Code(err) != tc.want || (tc.mentions != "" && !strings.Contains(err.Error(), tc.mentions)) {
			t.Errorf("publish to %s: %v; want %s mentioning %q", tc.what, err, tc.want, tc.mentions)
		}
	}

	// Events land on the claim, or on the PV when it has none.
	for _, e := range []struct{ kind, name, reason string }{
		{"PersistentVolumeClaim", claim, "AttachConflict"},
		{"PersistentVolume", "pv-" + volRWX, "MigrationStarted"},
	} {
		eventually(t, e.reason+" event on "+e.kind+" "+e.name, 30*time.Second, func() bool {
			sel := fields.Set{"involvedObject.kind": e.kind, "involvedObject.name": e.name, "reason": e.reason}.AsSelector()
			list, err := in.admin.CoreV1().Events(in.namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
			if e.kind == "PersistentVolume" {
				list, err = in.admin.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
			}
			return err == nil && len(list.Items) > 0 && list.Items[0].Source.Component == "rds-csi-controller"
		})
	}

	lease := "rds-csi-controller-" + strings.Trim(regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(in.driver, "-"), "-")
	eventually(t, "leader Lease "+in.namespace+"/"+lease, 30*time.Second, func() bool {
		l, err := in.admin.CoordinationV1().Leases(in.namespace).Get(ctx, lease, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
	})

	drv.stop(t)
	// Stopping releases the Lease (an update), so a standby takes over at once.
	l, err := in.admin.CoordinationV1().Leases(in.namespace).Get(ctx, lease, metav1.GetOptions{})
	if err != nil || (l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "") {
		t.Errorf("Lease after the controller stopped: %+v, %v; want released", l.Spec, err)
	}
	if m := regexp.MustCompile(`(?i).*forbidden.*`).FindString(drv.log()); m != "" {
		t.Errorf("the controller was refused something by RBAC:\n%s", m)
	}
}

// TestChartRBACGrantsTheSidecarsTheirDocumentedRules asks the API server (SelfSubjectAccessReview as
// the controller's ServiceAccount) whether each sidecar may do the things its documentation lists; a
// missing binding or a role in the wrong namespace shows here.
func TestChartRBACGrantsTheSidecarsTheirDocumentedRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := installChartRBAC(ctx, t)
	ctrl := in.as(t, in.controllerSA)
	ns := in.namespace
	allowed := []authorizationv1.ResourceAttributes{
		{Verb: "create", Resource: "persistentvolumes"},                                                               // provisioner
		{Verb: "update", Resource: "persistentvolumeclaims"},                                                          // provisioner
		{Verb: "watch", Group: "storage.k8s.io", Resource: "storageclasses"},                                          // provisioner
		{Verb: "get", Group: "storage.k8s.io", Resource: "volumeattributesclasses"},                                   // provisioner
		{Verb: "get", Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"},                                  // provisioner (restore)
		{Verb: "create", Group: "storage.k8s.io", Resource: "csistoragecapacities", Namespace: ns},                    // provisioner --enable-capacity
		{Verb: "get", Group: "apps", Resource: "replicasets", Namespace: ns},                                          // capacity owner lookup
		{Verb: "patch", Group: "storage.k8s.io", Resource: "volumeattachments", Subresource: "status"},                // attacher
		{Verb: "list", Group: "storage.k8s.io", Resource: "csinodes"},                                                 // attacher
		{Verb: "patch", Resource: "persistentvolumeclaims", Subresource: "status"},                                    // resizer
		{Verb: "update", Group: "snapshot.storage.k8s.io", Resource: "volumesnapshotcontents", Subresource: "status"}, // snapshotter
		{Verb: "get", Group: "groupsnapshot.storage.k8s.io", Resource: "volumegroupsnapshotclasses"},                  // snapshotter
		{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns},                             // every sidecar
		{Verb: "watch", Resource: "nodes"},                                                                            // the driver (node metadata cache)
		{Verb: "patch", Resource: "events", Namespace: "any"},                                                         // the driver
	}
	for _, ra := range allowed {
		if ok, why := selfAccess(ctx, t, ctrl, ra); !ok {
			t.Errorf("controller may not %s: %s", describe(ra), why)
		}
	}
}

// TestChartRBACIsLeastPrivilege tries, as each ServiceAccount, things no component needs; every one
// must be refused with 403, so the roles grant no more than they should.
func TestChartRBACIsLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := installChartRBAC(ctx, t)
	ctrl, node := in.as(t, in.controllerSA), in.as(t, in.nodeSA)
	ns := in.namespace
	tests := []struct {
		who  string
		what string
		do   func(c kubernetes.Interface) error
		c    kubernetes.Interface
	}{
		{"controller", "list Secrets in its namespace", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}, ctrl},
		{"controller", "read a Secret in kube-system", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets("kube-system").Get(ctx, "any", metav1.GetOptions{})
			return err
		}, ctrl},
		{"controller", "create Pods", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}, metav1.CreateOptions{})
			return err
		}, ctrl},
		{"controller", "delete a Node", func(c kubernetes.Interface) error {
			return c.CoreV1().Nodes().Delete(ctx, "any", metav1.DeleteOptions{})
		}, ctrl},
		{"controller", "patch a Node", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().Patch(ctx, "any", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
			return err
		}, ctrl},
		{"controller", "read a Lease outside its namespace", func(c kubernetes.Interface) error {
			_, err := c.CoordinationV1().Leases("default").Get(ctx, "any", metav1.GetOptions{})
			return err
		}, ctrl},
		{"controller", "delete VolumeAttachments", func(c kubernetes.Interface) error {
			return c.StorageV1().VolumeAttachments().Delete(ctx, "any", metav1.DeleteOptions{})
		}, ctrl},
		{"controller", "list ConfigMaps", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return err
		}, ctrl},
		{"controller", "list ClusterRoles", func(c kubernetes.Interface) error {
			_, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
			return err
		}, ctrl},
		{"node plugin", "list Nodes", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}, node},
		{"node plugin", "read PersistentVolumes", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			return err
		}, node},
		{"node plugin", "create Events", func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: ns}}, metav1.CreateOptions{})
			return err
		}, node},
	}
	for _, tc := range tests {
		err := tc.do(tc.c)
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s may %s (error %v); want 403 Forbidden", tc.who, tc.what, err)
		}
	}
}

func selfAccess(ctx context.Context, t *testing.T, c kubernetes.Interface, ra authorizationv1.ResourceAttributes) (bool, string) {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview %s: %v", describe(ra), err)
	}
	return r.Status.Allowed, r.Status.Reason + r.Status.EvaluationError
}

func describe(ra authorizationv1.ResourceAttributes) string {
	res := ra.Resource
	if ra.Subresource != "" {
		res += "/" + ra.Subresource
	}
	if ra.Group != "" {
		res += "." + ra.Group
	}
	if ra.Namespace != "" {
		res += " in " + ra.Namespace
	}
	return ra.Verb + " " + res
}

// createPV makes the PV of volume id vol for this test's driver, bound to claim in the test namespace
// (none when claim is empty), as external-provisioner does.
func (in *rbacInstall) createPV(ctx context.Context, t *testing.T, vol, claim string, blockRWX bool) {
	t.Helper()
	mode, access := corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce
	if blockRWX {
		mode, access = corev1.PersistentVolumeBlock, corev1.ReadWriteMany
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + vol},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:             &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: in.driver, VolumeHandle: vol}},
		},
	}
	if claim != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: in.namespace,
			Name: claim, UID: types.UID("uid-" + claim)}
	}
	mustCreate(t, func() error {
		_, err := in.admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		return err
	})
	t.Cleanup(func() {
		_ = in.admin.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
}

// createAttachedVA makes a VolumeAttachment of the volume's PV to node and marks it attached, as the
// attach/detach controller and external-attacher do.
func (in *rbacInstall) createAttachedVA(ctx context.Context, t *testing.T, vol, node string) {
	t.Helper()
	pv := "pv-" + vol
	name := kubeenv.UniqueName(t, "va")
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: in.driver, NodeName: node, Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}}}
	mustCreate(t, func() error {
		if _, err := in.admin.StorageV1().VolumeAttachments().Create(ctx, va, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := in.admin.StorageV1().VolumeAttachments().Patch(ctx, name, types.MergePatchType, []byte(`{"status":{"attached":true}}`),
			metav1.PatchOptions{}, "status")
		return err
	})
	t.Cleanup(func() {
		_ = in.admin.StorageV1().VolumeAttachments().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func mustCreate(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runningDriver is the rds-csi controller process of a test.
type runningDriver struct {
	cmd    *exec.Cmd
	conn   *grpc.ClientConn
	output *procenv.Output
	exited chan error
}

// startDriver runs the driver as the chart runs its controller (controller mode, leader election in
// the release namespace), with the chart's controller ServiceAccount's identity and the embedded RDS
// simulator, and returns once it answers gRPC.
func startDriver(ctx context.Context, t *testing.T, in *rbacInstall, sa string) *runningDriver {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	d := &runningDriver{output: &procenv.Output{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(procenv.DriverBinary(t), "--mode=controller", "--endpoint=unix://"+sock, "--driver-name="+in.driver,
		"--rds-simulator="+filepath.Join(dir, "rds"), "--kubeconfig="+in.kubeconfigAs(t, sa),
		"--leader-election=true", "--leader-election-namespace="+in.namespace, "--v=4")
	d.cmd.Stdout, d.cmd.Stderr = d.output, d.output
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", d.log())
		}
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			if err := <-d.exited; err != nil {
				t.Logf("controller killed at the end of the test: %v", err)
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-d.exited:
			t.Fatalf("the controller exited during start-up (%v):\n%s", err, d.log())
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no CSI socket after 60s:\n%s", d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	t.Cleanup(func() { conn.Close() })
	if _, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{}); err != nil {
		t.Fatalf("GetPluginInfo: %v\n%s", err, d.log())
	}
	return d
}

// stop sends SIGTERM, as the kubelet does, and waits for a clean exit.
func (d *runningDriver) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("controller exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("controller did not stop within 30s of SIGTERM:\n%s", d.log())
	}
}

func (d *runningDriver) log() string { return d.output.String() }
