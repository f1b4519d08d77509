package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sidecarSource maps a sidecar image to the Go module of its source: the image tag is the module's
// version tag.
var sidecarSource = map[string]string{
	"csi-provisioner": "github.com/kubernetes-csi/external-provisioner",
	"csi-attacher":    "github.com/kubernetes-csi/external-attacher",
	"csi-resizer":     "github.com/kubernetes-csi/external-resizer",
	"csi-snapshotter": "github.com/kubernetes-csi/external-snapshotter",
}

// Sidecars whose source the Go module proxy here does not serve; their flags are not checked.
var sidecarSourceMissing = map[string]bool{"csi-node-driver-registrar": true, "livenessprobe": true}

// flagDefinition matches a flag registered with the standard flag package or a FlagSet, e.g.
// flag.Duration("timeout", ...) or flags.StringVar(&c.CSIAddress, "csi-address", ...).
var flagDefinition = regexp.MustCompile(`\.(?:Bool|String|Duration|Int|Int64|Uint|Uint64|Float64|Var|Func|TextVar)(?:Var)?\((?:&[^,()]+,\s*)?"([a-z][a-z0-9-]*)"`)

// csiLibUtils matches the csi-lib-utils requirement of a sidecar's go.mod; its standardflags package
// registers the common flags (--csi-address, --leader-election, --http-endpoint, ...).
var csiLibUtils = regexp.MustCompile(`(?m)^\s*github\.com/kubernetes-csi/csi-lib-utils (v[0-9.]+)`)

// goFlagsIn collects the flag names defined in the non-test Go files under dir.
func goFlagsIn(t *testing.T, dir string, into map[string]bool) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range flagDefinition.FindAllStringSubmatch(string(src), -1) {
			into[m[1]] = true
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// sidecarFlags returns the flags the sidecar at this version defines: its commands', csi-lib-utils'
// standard ones, and klog's -v.
func sidecarFlags(t *testing.T, image string) (map[string]bool, bool) {
	t.Helper()
	repo, tag, _ := strings.Cut(image, ":")
	base := repo[strings.LastIndex(repo, "/")+1:]
	module, ok := sidecarSource[base]
	if !ok {
		if !sidecarSourceMissing[base] {
			t.Errorf("image %s: no known source module; add it to sidecarSource", image)
		}
		return nil, false
	}
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(tag, "v"), ".", 2)[0])
	if err != nil {
		t.Fatalf("image %s: tag is not a version", image)
	}
	if major >= 2 {
		module += "/v" + strconv.Itoa(major)
	}
	dir := moduleDir(t, module+"@"+tag)
	flags := map[string]bool{"v": true}
	goFlagsIn(t, filepath.Join(dir, "cmd"), flags)
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := csiLibUtils.FindSubmatch(goMod); m != nil {
		goFlagsIn(t, filepath.Join(moduleDir(t, "github.com/kubernetes-csi/csi-lib-utils@"+string(m[1])), "standardflags"), flags)
	}
	if !flags["csi-address"] || !flags["timeout"] {
		t.Fatalf("found no --csi-address or --timeout in %s's source; the flag scan is broken: %v", module, flags)
	}
	return flags, true
}

// TestSidecarFlagsExist checks every flag the chart passes to a CSI sidecar against the source of that
// sidecar at the pinned image tag (downloaded from the Go module proxy into the module cache): a flag
// that a sidecar release dropped or never had makes it exit at start-up.
func TestSidecarFlagsExist(t *testing.T) {
	known := map[string]map[string]bool{}
	for _, v := range variants {
		for _, o := range decodeObjects(t, render(t, v.valuesFile, renderOptions{})) {
			for _, c := range containers(t, o) {
				name, image := c["name"].(string), c["image"].(string)
				if name == "rds-csi" || name == "prepare-host" {
					continue
				}
				flags, ok := known[image]
				if !ok {
					flags, ok = sidecarFlags(t, image)
					if !ok {
						t.Logf("%s: flags not checked: the source of %s is not served by the Go module proxy here", name, image)
						known[image] = nil
						continue
					}
					known[image] = flags
				}
				if flags == nil {
					continue
				}
				for _, arg := range stringList(c, "args") {
					if f := flagName(arg); f == "" || !flags[f] {
						t.Errorf("%s: %s container: %q is not a flag of %s", v.name, name, arg, image)
					}
				}
			}
		}
	}
	if len(known) < 6 {
		t.Errorf("only %d sidecar images seen: %v", len(known), known)
	}
}

// TestSnapshotCRDsMatchTheSnapshotterImage keeps the CRDs the dry run installs at the release of the
// csi-snapshotter the chart runs.
func TestSnapshotCRDsMatchTheSnapshotterImage(t *testing.T) {
	for _, o := range decodeObjects(t, render(t, "default-values.yaml", renderOptions{})) {
		for _, c := range containers(t, o) {
			if c["name"] == "csi-snapshotter" {
				if img := c["image"].(string); !strings.HasSuffix(img, ":"+snapshotterVersion) {
					t.Errorf("csi-snapshotter image %s, but the dry run installs the CRDs of %s", img, snapshotterVersion)
				}
				return
			}
		}
	}
	t.Fatal("no csi-snapshotter container in the default rendering")
}
