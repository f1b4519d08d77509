package attachment

import (
	"reflect"
	"testing"
	"time"
)

// TestHolderMergeRule: the holders of a volume are Kubernetes' attached nodes minus the ones this process
// released, plus its own grants Kubernetes does not confirm yet, each since its earliest attach; the
// list (holdersLocked) and the count behind the metrics (holderCountLocked) agree, because both come
// from forEachHolderLocked.
func TestHolderMergeRule(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cases := []struct {
		name     string
		kube     map[string]time.Time
		local    map[string]time.Time
		released []string
		want     []NodeAttachment
	}{
		{"nothing", nil, nil, nil, nil},
		{"Kubernetes only", map[string]time.Time{"b": at(2), "a": at(1)}, nil, nil,
			[]NodeAttachment{{"a", at(1)}, {"b", at(2)}}},
		{"local only", nil, map[string]time.Time{"a": at(5)}, nil, []NodeAttachment{{"a", at(5)}}},
		{"a grant Kubernetes confirms later keeps the earlier time", map[string]time.Time{"a": at(9)},
			map[string]time.Time{"a": at(3)}, nil, []NodeAttachment{{"a", at(3)}}},
		{"Kubernetes' earlier time wins over a later grant", map[string]time.Time{"a": at(1)},
			map[string]time.Time{"a": at(3)}, nil, []NodeAttachment{{"a", at(1)}}},
		{"a released node is not a holder", map[string]time.Time{"a": at(1), "b": at(2)}, nil, []string{"a"},
			[]NodeAttachment{{"b", at(2)}}},
		{"released, then granted again", map[string]time.Time{"a": at(1)}, map[string]time.Time{"a": at(7)}, []string{"a"},
			[]NodeAttachment{{"a", at(7)}}},
		{"a migration: one confirmed, one granted", map[string]time.Time{"src": at(1)},
			map[string]time.Time{"dst": at(4)}, nil, []NodeAttachment{{"src", at(1)}, {"dst", at(4)}}},
		{"equal times sort by name", map[string]time.Time{"b": at(1)}, map[string]time.Time{"a": at(1)}, nil,
			[]NodeAttachment{{"a", at(1)}, {"b", at(1)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTestManager()
			m.kube = &kubeIndex{holders: map[string]map[string]time.Time{}}
			if tc.kube != nil {
				m.kube.holders["vol"] = tc.kube
			}
			if tc.local != nil || tc.released != nil {
				st := m.state("vol")
				for n, at := range tc.local {
					st.local[n] = at
				}
				for _, n := range tc.released {
					st.released[n] = struct{}{}
				}
			}
			m.mu.Lock()
			got := m.holdersLocked("vol")
			n, newest := m.holderCountLocked("vol")
			m.mu.Unlock()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("holders %v, want %v", got, tc.want)
			}
			var wantNewest time.Time
			for _, h := range tc.want {
				if h.AttachedAt.After(wantNewest) {
					wantNewest = h.AttachedAt
				}
			}
			if n != len(tc.want) || !newest.Equal(wantNewest) {
				t.Fatalf("count %d newest %v, want %d and %v", n, newest, len(tc.want), wantNewest)
			}
		})
	}
}
