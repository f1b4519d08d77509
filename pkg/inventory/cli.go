package inventory

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdsflag"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// clusterFlags say where the cluster side comes from: a kubeconfig (or in-cluster), a saved listing, or
// (import only) nothing.
type clusterFlags struct {
	driver, kubeconfig, file, box string
	none                          bool
}

func (c *clusterFlags) register(fs *flag.FlagSet, allowNone bool) {
	fs.StringVar(&c.driver, "driver-name", driver.DefaultDriverName, "CSI driver name of the PVs and VolumeSnapshotContents")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: in-cluster in a pod, else $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&c.file, "cluster-file", "", "read the cluster from FILE, saved with `kubectl get pv,volumesnapshotcontent -o json`, instead of an API server")
	fs.StringVar(&c.box, "box", "", "with several RDS boxes (--rds-boxes-config): the name of the box the RDS flags reach; "+
		"its volume ids are <box>/<name> (default: the default box, whose ids have no prefix)")
	if allowNone {
		fs.BoolVar(&c.none, "no-cluster", false, "do not look at any cluster (the check that no PV has the disk is then not made)")
	}
}

// open returns the cluster side, as seen from the box (box.go); nil for --no-cluster.
func (c *clusterFlags) open() (Cluster, error) {
	if c.box != "" {
		if err := driver.ValidBoxName(c.box); err != nil {
			return nil, fmt.Errorf("--box: %w", err)
		}
	}
	cl, err := c.openAll()
	if err != nil || cl == nil {
		return cl, err
	}
	return OnBox(cl, c.box), nil
}

func (c *clusterFlags) openAll() (Cluster, error) {
	switch {
	case c.none && c.file != "":
		return nil, errors.New("--no-cluster and --cluster-file exclude each other")
	case c.none:
		return nil, nil
	case c.file != "":
		return ReadFile(c.file, c.driver)
	}
	cfg, err := restConfig(c.kubeconfig)
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Kube{Client: kc, Dynamic: dc, Driver: c.driver}, nil
}

func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return rest.InClusterConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes cluster: give --kubeconfig or --cluster-file: %w", err)
	}
	return cfg, nil
}

// rdsClient connects to the RDS the shared flags name.
func rdsClient(conn rdsflag.Values) (*rds.Client, error) {
	cfg, err := conn.ClientConfig()
	if err != nil {
		return nil, err
	}
	return rds.New(cfg)
}

func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "rds-csi %s: %v\n", cmd, err)
	return 2
}

// OrphansMain is `rds-csi orphans`: it lists what is on the RDS under the base paths without a PV or
// VolumeSnapshotContent, and the driver's PVs and contents whose volume or snapshot is not on the RDS. With
// --delete it then deletes what it listed that the driver owns. Exit status: 0 when it ran (and every
// deletion succeeded), 1 on a failure, 2 for bad flags.
func OrphansMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rds-csi orphans", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn rdsflag.Values
	rdsflag.Register(fs, &conn)
	var cl clusterFlags
	cl.register(fs, false)
	var extra []string
	fs.Func("scan-base-path", "another base path to look in, POOL/DIR (repeatable; the base paths the PVs name are always looked in)",
		func(s string) error { extra = append(extra, s); return nil })
	output := fs.String("output", "table", "table or json")
	del := fs.Bool("delete", false, "delete what is listed and the driver owns (its volumes, snapshots and leftovers); default: only list")
	emptyOK := fs.Bool("delete-with-no-pvs", false, "let --delete delete volumes although the cluster lists no PV of the driver at all (a wrong kubeconfig or driver name looks like that)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rds-csi orphans --rds-address HOST --rds-key-file KEY --rds-host-key FILE [--base-path POOL/DIR] "+
			"[--kubeconfig FILE | --cluster-file FILE] [--output table|json] [--delete]")
		fmt.Fprintln(stderr, "Lists what is on the RDS without a PV or VolumeSnapshotContent, and the other way round; deletes only with --delete.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "orphans", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *output != "table" && *output != "json" {
		return usageError(stderr, "orphans", fmt.Errorf("--output %q: use table or json", *output))
	}
	var locs []volume.Location
	for _, s := range append([]string{conn.BasePath}, extra...) {
		l, err := volume.ParseLocation(s)
		if err != nil {
			return usageError(stderr, "orphans", err)
		}
		locs = append(locs, l)
	}
	cluster, err := cl.open()
	if err != nil {
		return usageError(stderr, "orphans", err)
	}
	client, err := rdsClient(conn)
	if err != nil {
		return usageError(stderr, "orphans", err)
	}
	defer client.Close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := volume.NewManager(client)
	rep, err := Compare(ctx, m, cluster, locs)
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi orphans:", err)
		return 1
	}
	if *output == "json" {
		err = WriteJSON(stdout, rep)
	} else {
		err = WriteTable(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi orphans:", err)
		return 1
	}
	if !*del {
		return 0
	}
	if rep.PVs == 0 && !*emptyOK {
		for _, it := range rep.Items {
			if it.Deletable && it.Kind == KindVolume {
				fmt.Fprintf(stderr, "rds-csi orphans: the cluster lists no PersistentVolume of %s at all, so every volume "+
					"looks orphaned; nothing deleted. Check --kubeconfig/--cluster-file and --driver-name, or give "+
					"--delete-with-no-pvs if the cluster really has none\n", cl.driver)
				return 1
			}
		}
	}
	w := stdout
	if *output == "json" {
		w = stderr // keep stdout one JSON document
	}
	failed := 0
	for _, o := range Delete(ctx, m, cluster, rep, w) {
		if o.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "rds-csi orphans: %d deletions failed\n", failed)
		return 1
	}
	return 0
}

// ImportMain is `rds-csi import`: it checks an existing disk and prints a static PV manifest for it on
// stdout (the checks go to stderr). Exit status: 0 with a manifest, 1 when a check failed or the RDS could
// not be read, 2 for bad flags.
func ImportMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rds-csi import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn rdsflag.Values
	rdsflag.Register(fs, &conn)
	var cl clusterFlags
	cl.register(fs, true)
	var req ImportRequest
	var volumeMode, accessMode, reclaim string
	fs.StringVar(&req.Slot, "disk", "", "the disk's slot (its volume id)")
	fs.StringVar(&req.FilePath, "file", "", "or the disk's backing file, e.g. pool/k8s/pvc-1.img")
	fs.StringVar(&req.NVMeAddress, "nvme-address", "", "NVMe/TCP address the nodes connect to (default: the host of --rds-address)")
	fs.StringVar(&req.PVName, "pv-name", "", "name of the PersistentVolume (default: the slot)")
	fs.StringVar(&req.FSType, "fs-type", "", "filesystem on the disk, ext4 or xfs (default: the node's, ext4); a blank disk is formatted at first use, one with a filesystem never")
	fs.StringVar(&volumeMode, "volume-mode", "Filesystem", "Filesystem or Block")
	fs.StringVar(&accessMode, "access-mode", "ReadWriteOnce", "ReadWriteOnce, ReadWriteOncePod, ReadOnlyMany, or ReadWriteMany (Block only)")
	fs.StringVar(&reclaim, "reclaim-policy", "Retain", "Retain, or Delete (deleting the PV then deletes the disk and its file)")
	fs.StringVar(&req.StorageClass, "storage-class", "", "storageClassName of the PV (default none, so no dynamic class claims it)")
	fs.StringVar(&req.PVCNamespace, "pvc-namespace", "", "with --pvc-name: reserve the PV for this claim and print the PVC too")
	fs.StringVar(&req.PVCName, "pvc-name", "", "the claim's name")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rds-csi import --rds-address HOST --rds-key-file KEY --rds-host-key FILE (--disk SLOT | --file PATH) "+
			"[--kubeconfig FILE | --cluster-file FILE | --no-cluster] [--pvc-namespace NS --pvc-name NAME] > pv.yaml")
		fmt.Fprintln(stderr, "Checks an existing RDS disk and prints a static PersistentVolume for it; changes nothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "import", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	req.Driver = cl.driver
	req.VolumeMode = corev1.PersistentVolumeMode(volumeMode)
	req.AccessMode = corev1.PersistentVolumeAccessMode(accessMode)
	req.ReclaimPolicy = corev1.PersistentVolumeReclaimPolicy(reclaim)
	if req.NVMeAddress == "" {
		req.NVMeAddress = conn.Address
		if h, _, err := net.SplitHostPort(conn.Address); err == nil {
			req.NVMeAddress = h
		}
	}
	if err := req.valid(); err != nil {
		return usageError(stderr, "import", err)
	}
	req.Box = cl.box
	cluster, err := cl.open()
	if err != nil {
		return usageError(stderr, "import", err)
	}
	client, err := rdsClient(conn)
	if err != nil {
		return usageError(stderr, "import", err)
	}
	defer client.Close()
	res, err := Import(ctx, client, cluster, req)
	if res != nil {
		WriteChecks(stderr, res.Checks)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi import:", err)
		return 1
	}
	if _, err := stdout.Write(res.Manifest); err != nil {
		return 1
	}
	return 0
}

// WriteChecks prints import's checks, one a line.
func WriteChecks(w io.Writer, checks []Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%-7s %s: %s\n", c.Status, c.Name, c.Detail)
	}
}
