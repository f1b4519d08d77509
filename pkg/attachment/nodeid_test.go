package attachment

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestNodeIDForms: a CSI node id with the host NQN ("name,<nqn>", pkg/nodeid) and the plain name are the
// same node, whichever form attaches, detaches or Kubernetes reports (VolumeAttachment.spec.nodeName is
// the plain name).
func TestNodeIDForms(t *testing.T) {
	const nqnA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	cases := []struct {
		name           string
		attach, detach string
		kube           bool // Kubernetes reports the node as attached (by its plain name)
	}{
		{"long attach, long detach", "node-a," + nqnA, "node-a," + nqnA, false},
		{"long attach, plain detach", "node-a," + nqnA, "node-a", false},
		{"plain attach, long detach", "node-a", "node-a," + nqnA, false},
		{"Kubernetes' plain name, long attach and detach", "node-a," + nqnA, "node-a," + nqnA, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTestManager()
			if tc.kube {
				m.kube = &kubeIndex{holders: map[string]map[string]time.Time{"vol": {"node-a": t0}}}
			}
			if err := m.Attach("vol", tc.attach, SingleNode); err != nil {
				t.Fatal(err)
			}
			if got := m.Holders("vol"); !reflect.DeepEqual(got, []string{"node-a"}) {
				t.Fatalf("holders %v, want [node-a]", got)
			}
			// The same node again, in the other form: no conflict.
			other := "node-a"
			if tc.attach == "node-a" {
				other = "node-a," + nqnA
			}
			if err := m.Attach("vol", other, SingleNode); err != nil {
				t.Fatalf("the same node in the other form: %v", err)
			}
			// Another node is refused, naming node-a by its name.
			var cerr *ConflictError
			if err := m.Attach("vol", "node-b,"+nqnA, SingleNode); !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Holders, []string{"node-a"}) || cerr.Node != "node-b" {
				t.Fatalf("node-b: %v", err)
			}
			m.Detach("vol", tc.detach)
			if got := m.Holders("vol"); got != nil {
				t.Fatalf("after detach holders %v", got)
			}
		})
	}
}
