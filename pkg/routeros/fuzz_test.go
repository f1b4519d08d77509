package routeros

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<target>/: the golden inputs plus RouterOS error texts.

func FuzzParseDetail(f *testing.F) {
	f.Add(" 0 Bt a=1 b=\"x\"\n      c=1 2\n")
	f.Fuzz(func(t *testing.T, out string) {
		items, err := ParseDetail(out)
		if err != nil {
			return
		}
		for _, it := range items {
			if len(it.Keys) == 0 || len(it.Keys) != len(it.Props) {
				t.Fatalf("item %+v: keys and props disagree", it)
			}
			for _, k := range it.Keys {
				if _, ok := it.Props[k]; !ok {
					t.Fatalf("key %q listed but has no value", k)
				}
			}
		}
		// Line ends do not matter: the same text sent with \r\n parses the same.
		crlf, err := ParseDetail(strings.ReplaceAll(out, "\n", "\r\n"))
		if err != nil {
			t.Fatalf("parses with \\n but not with \\r\\n: %v", err)
		}
		if !reflect.DeepEqual(items, crlf) {
			t.Fatalf("\\r\\n changed the result:\n%+v\n%+v", items, crlf)
		}
	})
}

func FuzzParseBytes(f *testing.F) {
	f.Add("1 099 511 627 776")
	f.Fuzz(func(t *testing.T, v string) {
		n, err := ParseBytes(v)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", v, n)
		}
		back, err := ParseBytes(strconv.FormatInt(n, 10))
		if err != nil || back != n {
			t.Fatalf("%d does not parse back: %d, %v", n, back, err)
		}
	})
}

func FuzzParseKeyValueLines(f *testing.F) {
	f.Add("read-ops: 1 234\r\n")
	f.Fuzz(func(t *testing.T, out string) {
		kv, err := ParseKeyValueLines(out)
		if err != nil {
			return
		}
		for k, v := range kv {
			if k == "" || strings.ContainsAny(k, " \r\n") || strings.TrimSpace(v) != v {
				t.Fatalf("bad pair %q: %q", k, v)
			}
		}
	})
}
