//go:build e2ekube

package e2ekube

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	namespace   = "rds-csi"
	nodeName    = "e2e-node"
	driverName  = "rds.csi.srvlab.io"
	kubeVersion = "v1.37.2"
)

// renderChart runs `helm template` on the chart with the lane's values file and the simulator's address
// and keys, and returns every object it renders.
func renderChart(e *env, simAddr, keyFile, hostKeyFile string) ([]*unstructured.Unstructured, error) {
	cmd := exec.Command(e.helm, "template", "rds-csi", e.chart, "--namespace", namespace,
		"--kube-version", kubeVersion, "--api-versions", "snapshot.storage.k8s.io/v1/VolumeSnapshotClass",
		"--values", e.values, "--set", "rds.address="+simAddr,
		"--set-file", "rds.privateKey="+keyFile, "--set-file", "rds.hostKey="+hostKeyFile,
		"--set", "node.kubeletDir="+filepath.Join(e.dir, "kubelet"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template: %v: %s", err, stderr.String())
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(&out, 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding the rendered chart: %w", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// rendered is the chart's output, split into what is applied to the cluster and the two workloads whose
// containers the lane runs as processes.
type rendered struct {
	apply      []*unstructured.Unstructured
	controller *appsv1.Deployment
	node       *appsv1.DaemonSet
	configMaps map[string]map[string]string
	secrets    map[string]map[string][]byte
}

func splitRendered(objs []*unstructured.Unstructured) (*rendered, error) {
	r := &rendered{configMaps: map[string]map[string]string{}, secrets: map[string]map[string][]byte{}}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			r.controller = &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, r.controller); err != nil {
				return nil, err
			}
			continue
		case "DaemonSet":
			r.node = &appsv1.DaemonSet{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, r.node); err != nil {
				return nil, err
			}
			continue
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm); err != nil {
				return nil, err
			}
			r.configMaps[cm.Name] = cm.Data
		case "Secret":
			var s corev1.Secret
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &s); err != nil {
				return nil, err
			}
			data := map[string][]byte{}
			for k, v := range s.Data {
				data[k] = v
			}
			for k, v := range s.StringData {
				data[k] = []byte(v)
			}
			r.secrets[s.Name] = data
		}
		r.apply = append(r.apply, o)
	}
	if r.controller == nil || r.node == nil {
		return nil, errors.New("the chart rendered no controller Deployment or no node DaemonSet")
	}
	return r, nil
}

// podRun is what a Pod of the chart becomes here: its containers as host processes.
type podRun struct {
	name     string
	dir      string // emptyDirs, Secrets and the service account token of this pod
	procs    []*proc
	skipped  []string // containers not run, with the reason
	notes    []string // where this host differs from what the pod expects
	tokenDir string   // the service account's token, ca.crt and namespace, or "" without one
}

// sidecarBinaries maps an image name of the chart to the directory of its build in the sidecar cache;
// the version is the image's tag, so the lane runs what the chart pins or fails.
var sidecarBinaries = map[string]string{
	"csi-provisioner": "external-provisioner",
	"csi-attacher":    "external-attacher",
	"csi-resizer":     "external-resizer",
	"csi-snapshotter": "external-snapshotter",
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does Kubernetes' $(VAR) expansion: references to unknown variables stay as they are.
func expand(s string, vars map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// hostPathArg rewrites a path argument that lies under a container mount to the host path behind it:
// "--csi-address=/csi/csi.sock" and "--endpoint=unix:///csi/csi.sock" point at the pod's socket dir.
func hostPathArg(arg string, mounts map[string]string) string {
	flag, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	scheme := ""
	if rest, ok := strings.CutPrefix(value, "unix://"); ok {
		scheme, value = "unix://", rest
	}
	keys := make([]string, 0, len(mounts))
	for k := range mounts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, mp := range keys {
		if value == mp || strings.HasPrefix(value, mp+"/") {
			return flag + "=" + scheme + mounts[mp] + strings.TrimPrefix(value, mp)
		}
	}
	return arg
}

// podProcesses turns a pod template of the chart into processes: each container's args with its
// environment expanded as kubelet would, and its mount paths replaced by the host paths behind them.
// fix may change one container's arguments (the node's data path) and returns them.
func podProcesses(e *env, r *rendered, podName string, spec *corev1.PodSpec, baseEnv []string, tokenDir string,
	fix func(container string, args []string) ([]string, error)) (*podRun, error) {
	pr := &podRun{name: podName, dir: filepath.Join(e.dir, "pods", podName), tokenDir: tokenDir}
	if err := os.MkdirAll(pr.dir, 0o755); err != nil {
		return nil, err
	}
	volumes := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.HostPath != nil:
			if v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return nil, err
				}
			}
			if _, err := os.Stat(v.HostPath.Path); err != nil {
				// kubelet would refuse the Pod (this sandbox has no /lib/modules); a process can still run,
				// and any argument that points into the volume fails on its own.
				pr.notes = append(pr.notes, fmt.Sprintf("hostPath volume %s: %v", v.Name, err))
			}
			volumes[v.Name] = v.HostPath.Path
		case v.EmptyDir != nil:
			volumes[v.Name] = filepath.Join(pr.dir, v.Name)
		case v.Secret != nil:
			dir := filepath.Join(pr.dir, v.Name)
			data, ok := r.secrets[v.Secret.SecretName]
			if !ok {
				return nil, fmt.Errorf("pod %s: Secret %s is not rendered by the chart", podName, v.Secret.SecretName)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			for _, it := range v.Secret.Items {
				b, ok := data[it.Key]
				if !ok {
					return nil, fmt.Errorf("pod %s: Secret %s has no key %s", podName, v.Secret.SecretName, it.Key)
				}
				if err := os.WriteFile(filepath.Join(dir, it.Path), b, 0o440); err != nil {
					return nil, err
				}
			}
			volumes[v.Name] = dir
		default:
			return nil, fmt.Errorf("pod %s: volume %s has a type the lane does not map", podName, v.Name)
		}
		if v.HostPath == nil {
			if err := os.MkdirAll(volumes[v.Name], 0o755); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range spec.Containers {
		bin, extra, err := containerBinary(e, c)
		if err != nil {
			return nil, err
		}
		if bin == "" {
			pr.skipped = append(pr.skipped, c.Name+" ("+extra[0]+")")
			continue
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			host, ok := volumes[m.Name]
			if !ok {
				return nil, fmt.Errorf("pod %s container %s mounts unknown volume %s", podName, c.Name, m.Name)
			}
			mounts[m.MountPath] = host
		}
		vars := map[string]string{}
		var procEnv []string
		for _, ev := range c.Env {
			val, err := envValue(r, podName, ev)
			if err != nil {
				return nil, fmt.Errorf("pod %s container %s env %s: %w", podName, c.Name, ev.Name, err)
			}
			vars[ev.Name] = expand(val, vars)
			procEnv = append(procEnv, ev.Name+"="+vars[ev.Name])
		}
		args := make([]string, 0, len(c.Args))
		for _, a := range c.Args {
			args = append(args, hostPathArg(expand(a, vars), mounts))
		}
		if fix != nil {
			if args, err = fix(c.Name, args); err != nil {
				return nil, err
			}
		}
		args = append(args, extra...)
		// A registrar stand-in argument for the /registration mount, which upstream hard-codes.
		if c.Name == "node-driver-registrar" {
			reg, ok := mounts["/registration"]
			if !ok {
				return nil, fmt.Errorf("the chart's node-driver-registrar mounts no /registration")
			}
			args = append(args, "--registration-dir="+reg)
		}
		argv := append([]string{bin}, args...)
		if pr.tokenDir != "" {
			// In-cluster configuration as in a pod: the service account token at its well-known path, in
			// a mount namespace of this process only.
			argv = append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
				`mount --bind "$0" /var/run/secrets/kubernetes.io/serviceaccount && exec "$@"`, pr.tokenDir}, argv...)
		}
		pr.procs = append(pr.procs, &proc{name: podName + "/" + c.Name, argv: argv, keepRunning: true,
			env: append(append([]string(nil), baseEnv...), procEnv...), log: filepath.Join(e.dir, "logs", podName+"_"+c.Name+".log")})
	}
	return pr, nil
}

// containerBinary is the host binary standing in for a container's image, with arguments to add; an empty
// path means the container is not run here, and extra[0] says why.
func containerBinary(e *env, c corev1.Container) (string, []string, error) {
	image, tag, _ := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")
	switch {
	case c.Name == "rds-csi":
		return e.driver, nil, nil
	case image == "csi-node-driver-registrar":
		return e.registrar, nil, nil
	case image == "livenessprobe":
		return "", []string{"livenessprobe is not served by the Go module proxy here; kubelet does not probe host processes"}, nil
	}
	dir, ok := sidecarBinaries[image]
	if !ok {
		return "", nil, fmt.Errorf("container %s: no binary for image %s", c.Name, c.Image)
	}
	bin := filepath.Join(e.sidecars, dir, tag, image)
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("container %s: the chart pins %s, not built (hack/e2e-kube/build.sh sidecars): %w", c.Name, c.Image, err)
	}
	return bin, nil, nil
}

func envValue(r *rendered, podName string, ev corev1.EnvVar) (string, error) {
	switch {
	case ev.ValueFrom == nil:
		return ev.Value, nil
	case ev.ValueFrom.ConfigMapKeyRef != nil:
		ref := ev.ValueFrom.ConfigMapKeyRef
		v, ok := r.configMaps[ref.Name][ref.Key]
		if !ok {
			return "", fmt.Errorf("ConfigMap %s key %s is not rendered", ref.Name, ref.Key)
		}
		return v, nil
	case ev.ValueFrom.SecretKeyRef != nil:
		ref := ev.ValueFrom.SecretKeyRef
		v, ok := r.secrets[ref.Name][ref.Key]
		if !ok {
			return "", fmt.Errorf("secret %s key %s is not rendered", ref.Name, ref.Key)
		}
		return string(v), nil
	case ev.ValueFrom.FieldRef != nil:
		switch ev.ValueFrom.FieldRef.FieldPath {
		case "metadata.namespace":
			return namespace, nil
		case "metadata.name":
			return podName, nil
		case "spec.nodeName":
			return nodeName, nil
		}
		return "", fmt.Errorf("fieldRef %s is not mapped", ev.ValueFrom.FieldRef.FieldPath)
	}
	return "", errors.New("unsupported valueFrom")
}
