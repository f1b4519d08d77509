package attachment

import (
	"testing"
	"time"
)

// The Nodes, PVs and VolumeAttachments of these tests come from kubeenv.Fixtures.

// eventually polls cond until it holds or 20 s pass; the informers deliver changes in
// milliseconds, the margin is for a loaded CI machine. On time-out, describe says what was seen.
func eventually(tb testing.TB, what string, cond func() bool, describe func() string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s: %s", what, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
