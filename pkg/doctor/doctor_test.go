package doctor

import (
	"context"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func TestDoctorDefault(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	rep, out := runDoctor(t, context.Background(), newClient(t, sim), Options{})
	t.Log(out)
	if !rep.OK() {
		t.Errorf("failed: %v", rep.Failed())
	}
	assertNothingLeft(t, sim)
}
