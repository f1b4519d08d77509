package routeros

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDetail(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Item
	}{
		{"empty output", "", []Item{}},
		{"legend only", "Flags: X - DISABLED\r\n", []Item{}},
		{"wrapped legend", "Flags: X - DISABLED; B - BLOCK-DEVICE;\nM - MOUNTED\n 0 B  slot=a\n", []Item{
			{Index: 0, Flags: "B", Props: map[string]string{"slot": "a"}, Keys: []string{"slot"}}}},
		{"columns header of a plain print", "Columns: NAME, TYPE\n 0 name=x\n", []Item{
			{Index: 0, Props: map[string]string{"name": "x"}, Keys: []string{"name"}}}},
		{"no index no legend", "  a=1 b=\"x y\"\n      c=3\n", []Item{
			{Index: -1, Props: map[string]string{"a": "1", "b": "x y", "c": "3"}, Keys: []string{"a", "b", "c"}}}},
		{"two unindexed items split by a blank line", "  a=1\n \n  a=2\n", []Item{
			{Index: -1, Props: map[string]string{"a": "1"}, Keys: []string{"a"}},
			{Index: -1, Props: map[string]string{"a": "2"}, Keys: []string{"a"}}}},
		{"less indented line starts a new item", " 5 Bt a=1\n      b=2\n 6 B  a=3\n", []Item{
			{Index: 5, Flags: "Bt", Props: map[string]string{"a": "1", "b": "2"}, Keys: []string{"a", "b"}},
			{Index: 6, Flags: "B", Props: map[string]string{"a": "3"}, Keys: []string{"a"}}}},
		{"continuation starting with digits", " 0   size=1 099\n     511 627 776 x=y\n", []Item{
			{Index: 0, Props: map[string]string{"size": "1 099511 627 776", "x": "y"}, Keys: []string{"size", "x"}}}},
		{"wrap inside a quoted value", ` 0   nqn="nqn.2000-02.com.mik` + "\n" + `     rotik:a b=c" z=1` + "\n", []Item{
			{Index: 0, Props: map[string]string{"nqn": "nqn.2000-02.com.mikrotik:a b=c", "z": "1"}, Keys: []string{"nqn", "z"}}}},
		{"hard wrap inside a key", " 0   a=1 nvme-tcp-ser\n     ver-port=4420\n", []Item{
			{Index: 0, Props: map[string]string{"a": "1", "nvme-tcp-server-port": "4420"}, Keys: []string{"a", "nvme-tcp-server-port"}}}},
		// A long bare value split at the width ends on a short line: the next line starts a new property even
		// though the value's last piece looks like the start of a key.
		{"wrapped bare value ends on a short line", " 0   name=pool/a/bbbbbbbbbbbbbbbbbbbb\n     cccc\n     type=directory\n", []Item{
			{Index: 0, Props: map[string]string{"name": "pool/a/bbbbbbbbbbbbbbbbbbbbcccc", "type": "directory"}, Keys: []string{"name", "type"}}}},
		{"file size key", " 0   name=x type=.img file size=1.0KiB\n", []Item{
			{Index: 0, Props: map[string]string{"name": "x", "type": ".img", "size": "1.0KiB"}, Keys: []string{"name", "type", "size"}}}},
		{"type=file followed by size", " 0   type=file size=4 096\n", []Item{
			{Index: 0, Props: map[string]string{"type": "file", "size": "4 096"}, Keys: []string{"type", "size"}}}},
		{"value with equals sign", " 0   a=x=y b=2\n", []Item{
			{Index: 0, Props: map[string]string{"a": "x=y", "b": "2"}, Keys: []string{"a", "b"}}}},
		{"empty bare value", " 0   a= b=2\n", []Item{
			{Index: 0, Props: map[string]string{"a": "", "b": "2"}, Keys: []string{"a", "b"}}}},
		{"index then properties on the next line", " 0 X\n     a=1\n", []Item{
			{Index: 0, Flags: "X", Props: map[string]string{"a": "1"}, Keys: []string{"a"}}}},
		{"repeated key keeps the last value and the first position", " 0 a=1 b=2 a=3\n", []Item{
			{Index: 0, Props: map[string]string{"a": "3", "b": "2"}, Keys: []string{"a", "b"}}}},
		{"tabs and lone carriage returns", "Flags: X\r\r\n\t0 a=1\r\n", []Item{
			{Index: 0, Props: map[string]string{"a": "1"}, Keys: []string{"a"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDetail(tc.in)
			if err != nil {
				t.Fatalf("ParseDetail: %v", err)
			}
			for i := range tc.want {
				if tc.want[i].Props == nil {
					tc.want[i].Props = map[string]string{}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestParseDetailRejects checks that RouterOS error messages and other non-listings are errors, never an
// empty listing: a caller that took `no such item` for "nothing there" would act on a false state.
func TestParseDetailRejects(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"no such item", "no such item\r\n", "expected an item"},
		{"failure", "failure: not enough space\r\n", "expected an item"},
		{"syntax error", "syntax error (line 1 column 12)\r\n", "expected an item"},
		{"bad command", "Flags: X\nbad command name addd (line 1 column 7)\n", "expected an item"},
		{"index without properties", " 0\n", "no properties"},
		{"unterminated quote", ` 0 a="abc` + "\n", "unterminated"},
		{"garbage after a property", " 0 a=1\n ;x\n", "expected an item"},
		{"index glued to text", "12ab a=1\n", "expected an item index"},
		{"overlong index", "12345678901 a=1\n", "too long"},
		{"comment only is fine but stray text is not", " 0 ;;; c\n   hello\n", "expected key=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := ParseDetail(tc.in)
			if err == nil {
				t.Fatalf("ParseDetail(%q) = %v, want an error", tc.in, items)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}
