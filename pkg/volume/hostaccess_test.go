package volume_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/routeros"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

const (
	hostA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	hostB = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
)

// TestSetAllowedHosts: a volume created closed reads back NoHost, a set of one or two hosts reads back as
// set, and a disk that is not the volume is never touched.
func TestSetAllowedHosts(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	v, err := e.m.Create(ctx, volume.CreateRequest{ID: "pvc-acl", RequiredBytes: 1 << 30, Location: e.loc,
		AllowedHosts: []string{volume.NoHost}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Restricted() || !reflect.DeepEqual(v.AllowedHosts(), []string{volume.NoHost}) {
		t.Fatalf("created closed: allows %q", v.AllowedHosts())
	}
	for _, hosts := range [][]string{{hostA}, {hostA, hostB}, {volume.NoHost}} {
		v, err := e.m.SetAllowedHosts(ctx, "pvc-acl", hosts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.AllowedHosts(), hosts) {
			t.Fatalf("set %q, reads back %q", hosts, v.AllowedHosts())
		}
	}
	if _, err := e.m.SetAllowedHosts(ctx, "pvc-acl", nil); !errors.Is(err, rds.ErrInvalid) {
		t.Fatalf("no host (which would open the export): %v", err)
	}
	if _, err := e.m.SetAllowedHosts(ctx, "pvc-missing", []string{hostA}); !errors.Is(err, volume.ErrNotFound) {
		t.Fatalf("a missing volume: %v", err)
	}
	open, err := e.m.Create(ctx, volume.CreateRequest{ID: "pvc-open", RequiredBytes: 1 << 30, Location: e.loc})
	if err != nil || open.Restricted() || !open.AllowHostShown {
		t.Fatalf("a volume without host access control: %+v, %v", open, err)
	}
}

// refusingRDS answers the set as a box without the property would.
type refusingRDS struct{ out string }

func (r refusingRDS) Run(_ context.Context, steps []rds.Cmd, _ ...rds.Cmd) ([][]routeros.Item, error) {
	return nil, &rds.CommandError{Kind: rds.ErrProtocol, Script: steps[0].String(), Output: r.out, ExitStatus: 1}
}

// printingRDS runs nothing and prints the disk without the property.
type printingRDS struct{}

func (printingRDS) Run(_ context.Context, _ []rds.Cmd, _ ...rds.Cmd) ([][]routeros.Item, error) {
	return [][]routeros.Item{{{Index: 0, Props: map[string]string{"type": "file", "slot": "pvc-1",
		"nvme-tcp-server-nqn": volume.NQN("pvc-1"), "nvme-tcp-export": "yes", "file-path": "/pool/k8s/pvc-1/disk.img",
		"size": "1073741824"}}}}, nil
}

func TestSetAllowedHostsOnABoxWithoutIt(t *testing.T) {
	for name, ros := range map[string]volume.RouterOS{
		"refused":       refusingRDS{out: "expected end of command (line 1 column 80)"},
		"not displayed": printingRDS{},
	} {
		_, err := volume.NewManager(ros).SetAllowedHosts(context.Background(), "pvc-1", []string{hostA})
		if !errors.Is(err, volume.ErrHostAccessUnsupported) {
			t.Errorf("%s: %v, want ErrHostAccessUnsupported", name, err)
		}
	}
}
