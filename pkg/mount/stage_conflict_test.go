package mount

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckStageConflict(t *testing.T) {
	const a, b, pod = "/k/plugins/a/globalmount", "/k/plugins/b/globalmount", "/k/pods/1/mount"
	for _, c := range []struct {
		name    string
		staging string
		mounts  []string
		mention string // "" means allowed
	}{
		{"not mounted anywhere", a, nil, ""},
		{"repeat of a finished stage", a, []string{a}, ""},
		{"repeat while published", a, []string{a, pod}, ""},
		{"repeat, path given unclean", a + "/", []string{a}, ""},
		{"second staging path", b, []string{a}, a},
		{"second staging path while published", b, []string{a, pod}, a + ", " + pod},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckStageConflict("pvc-1", c.staging, c.mounts)
			if c.mention == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrStagedElsewhere) || !strings.Contains(err.Error(), c.mention) || !strings.Contains(err.Error(), c.staging) {
				t.Fatalf("got %v, want ErrStagedElsewhere naming %q and %q", err, c.mention, c.staging)
			}
		})
	}
}
