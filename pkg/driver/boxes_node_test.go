package driver

import (
	"context"
	"reflect"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// A volume of a named box works on a node that knows no boxes: the node connects to the address in the
// volume context, under the NQN of the slot (the name without the box), and every later call finds the
// same device from the id alone.
func TestNodeServesABoxPrefixedVolume(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	id := "rds2/" + volA
	vc := nodeVolumeContext(volA, "nvmeAddress", "10.0.2.5")
	conn, err := nvme.ParseConnectParams(vc)
	if err != nil {
		t.Fatal(err)
	}
	if conn.NQN != nqnA || conn.Address != "10.0.2.5" {
		t.Fatalf("connection: %+v", conn)
	}
	if _, err := e.d.NodeStageVolume(ctx, stageReq(id, nodeFSCap(rwo, ""), vc)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.NodeUnstageVolume(ctx, unstageReq(id)); err != nil {
		t.Fatal(err)
	}
	want := []any{node.StageRequest{ID: volA, Staging: stage, Conn: conn}, unstageCall{volA, stage}}
	if got := e.node.recorded(); !reflect.DeepEqual(got, want) {
		t.Fatalf("node asked %+v, want %+v", got, want)
	}
	// The NQN must still be the slot's: a context naming the box-prefixed id is refused.
	_, err = e.d.NodeStageVolume(ctx, stageReq(id, nodeFSCap(rwo, ""), nodeVolumeContext(volA, "nqn", nvme.NQNPrefix+"rds2-pvc-a")))
	wantNodeCode(t, err, codes.InvalidArgument, "NQN")
	_, err = e.d.NodeStageVolume(ctx, stageReq("Bad/"+volA, nodeFSCap(rwo, ""), vc))
	wantNodeCode(t, err, codes.InvalidArgument, "not a valid id")
}
