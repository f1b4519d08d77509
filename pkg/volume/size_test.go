package volume

import (
	"errors"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

func TestRoundSize(t *testing.T) {
	for _, c := range []struct {
		name            string
		required, limit int64
		want            int64
		err             error
	}{
		{"nothing asked gets the minimum", 0, 0, MinSize, nil},
		{"below the minimum", 1, 0, MinSize, nil},
		{"exact GiB", 10 * GiB, 0, 10 * GiB, nil},
		{"1.5 GiB is kept exact", 3 * GiB / 2, 0, 3 * GiB / 2, nil},
		{"rounded up, never down", GiB + 1, 0, GiB + MiB, nil},
		{"limit equal to the rounded size", GiB + 1, GiB + MiB, GiB + MiB, nil},
		{"limit below the rounded size", GiB + 1, GiB + 2, 0, ErrOutOfRange},
		{"limit below the minimum", 0, MiB, 0, ErrOutOfRange},
		{"required above limit", 2 * GiB, GiB, 0, ErrOutOfRange},
		{"negative", -1, 0, 0, rds.ErrInvalid},
		{"negative limit", GiB, -1, 0, rds.ErrInvalid},
		{"too large", MaxSize + 1, 0, 0, ErrOutOfRange},
		{"largest", MaxSize, 0, MaxSize, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := RoundSize(c.required, c.limit)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("RoundSize(%d, %d) = %d, %v; want %d, %v", c.required, c.limit, got, err, c.want, c.err)
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	for in, want := range map[string]Location{
		"pool/k8s": {"pool", "k8s"}, "/raid10/k8s/vols/": {"raid10", "k8s/vols"},
	} {
		if got, err := ParseLocation(in); err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "pool", "pool/", "pool/../etc", "pool/a b", `pool/"x"`, "pool/a;b"} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) accepted", bad)
		}
	}
}
