package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No Docker engine runs here, so the images are never built in CI. These checks catch what breaks a
// Dockerfile without building it: a base image that floats, a COPY of something that is not in the
// repository, a tool the node plugin runs missing from its image.

// dockerfile reads deploy/docker/Dockerfile.<name> and joins continuation lines.
func dockerfile(t *testing.T, name string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "docker", "Dockerfile."+name))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(raw), "\\\n", " ")
	var lines []string
	for _, l := range strings.Split(joined, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

var fromImage = regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?(\S+)`)

func TestDockerfiles(t *testing.T) {
	tests := []struct {
		name      string
		finalBase string
		// packages the final image must install (the node plugin's tools).
		packages []string
	}{
		{"controller", "gcr.io/distroless/static-debian12:nonroot", nil},
		{"node", "debian:bookworm-slim", []string{"nvme-cli", "e2fsprogs", "xfsprogs", "util-linux", "mount", "kmod"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := dockerfile(t, tc.name)
			var bases []string
			install := ""
			for _, l := range lines {
				if m := fromImage.FindStringSubmatch(l); m != nil {
					bases = append(bases, m[1])
					if !strings.Contains(m[1], ":") || strings.HasSuffix(m[1], ":latest") {
						t.Errorf("base image %s has no fixed tag", m[1])
					}
				}
				if strings.HasPrefix(l, "COPY ") && !strings.Contains(l, "--from=") {
					fields := strings.Fields(l)
					for _, src := range fields[1 : len(fields)-1] {
						if _, err := os.Stat(filepath.Join(repoRoot(t), src)); err != nil {
							t.Errorf("COPY %s: not in the repository", src)
						}
					}
				}
				if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "apt-get install") {
					install = l
				}
				if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") && !strings.Contains(l, "./cmd/rds-csi") {
					t.Errorf("the build step does not build ./cmd/rds-csi: %s", l)
				}
			}
			if len(bases) == 0 || bases[len(bases)-1] != tc.finalBase {
				t.Errorf("final base %v, want %s", bases, tc.finalBase)
			}
			for _, p := range tc.packages {
				if !regexp.MustCompile(`\s` + regexp.QuoteMeta(p) + `(\s|$)`).MatchString(install) {
					t.Errorf("the image does not install %s", p)
				}
			}
		})
	}
}

// TestChartRunsTheImagesEntrypoints checks that the chart's containers and the images agree on how
// the driver starts: the chart gives only args (the images' ENTRYPOINT is the driver), and the node
// image, which the prepare-host init container runs with /bin/sh, is the one with a shell.
func TestChartRunsTheImagesEntrypoints(t *testing.T) {
	for _, name := range []string{"controller", "node"} {
		found := false
		for _, l := range dockerfile(t, name) {
			if strings.HasPrefix(l, "ENTRYPOINT ") && strings.Contains(l, "rds-csi") {
				found = true
			}
		}
		if !found {
			t.Errorf("Dockerfile.%s has no ENTRYPOINT running rds-csi", name)
		}
	}
	for _, o := range decodeObjects(t, render(t, "default-values.yaml", renderOptions{})) {
		for _, c := range containers(t, o) {
			image, _ := c["image"].(string)
			switch {
			case c["name"] == "rds-csi" && c["command"] != nil:
				t.Errorf("%s: the rds-csi container overrides the image's ENTRYPOINT", objectKey(o))
			case c["name"] == "prepare-host" && !strings.Contains(image, "rds-csi-node"):
				t.Errorf("%s: prepare-host runs %s, which has no shell; it needs the node image", objectKey(o), image)
			}
		}
	}
}
