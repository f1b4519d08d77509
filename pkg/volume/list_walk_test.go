package volume

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWalksForgetIdleAndLeastRecentlyUsed(t *testing.T) {
	now := time.Unix(1000, 0)
	w := &walks{now: func() time.Time { return now }}
	first := w.put([]Volume{{ID: "a"}})
	var ids []string
	for i := 1; i < maxWalks; i++ {
		now = now.Add(time.Second)
		ids = append(ids, w.put([]Volume{{ID: fmt.Sprint(i)}}))
	}
	now = now.Add(time.Second)
	if w.get(first) == nil { // used now: the least recently used is ids[0]
		t.Fatal("a remembered walk was forgotten")
	}
	w.put([]Volume{{ID: "new"}})
	if w.get(ids[0]) != nil {
		t.Fatal("the least recently used walk is still remembered beyond maxWalks")
	}
	if w.get(first) == nil || w.get(ids[1]) == nil {
		t.Fatal("a more recently used walk was forgotten")
	}
	now = now.Add(walkIdle + time.Second)
	if w.get(first) != nil {
		t.Fatal("a walk idle past walkIdle is still remembered")
	}
}

func TestParseToken(t *testing.T) {
	for _, c := range []struct {
		token string
		ok    bool
	}{
		{"", true},
		{"0123456789abcdef/pvc-1", true},
		{"pvc-1", false},
		{"0123456789abcdef/", false},
		{"0123456789abcdeg/pvc-1", false},
		{"0123456789abcde/pvc-1", false},
		{"0123456789abcdef/pvc;1", false},
		{"0123456789abcdef/a/b", false},
	} {
		_, _, err := parseToken(c.token)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadToken)) {
			t.Errorf("parseToken(%q) = %v, want ok=%v", c.token, err, c.ok)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("0123456789abcdef/pvc-1")
	f.Add("x/y")
	f.Fuzz(func(t *testing.T, token string) {
		walkID, start, err := parseToken(token)
		if err == nil && token != "" && walkID+"/"+start != token {
			t.Fatalf("parseToken(%q) = %q, %q", token, walkID, start)
		}
	})
}
