package rds

import (
	"errors"
	"testing"
)

func TestUnless(t *testing.T) {
	add, err := AddSubvolume("pool-fs", "k8s/pvc-1")
	if err != nil {
		t.Fatal(err)
	}
	disk, err := AddFileDisk(FileDiskSpec{Slot: "pvc-1", FilePath: "pool/k8s/pvc-1/disk.img", SizeBytes: 1 << 30,
		NQN: "nqn.2000-02.com.mikrotik:pvc-1", Port: 4420})
	if err != nil {
		t.Fatal(err)
	}
	read, err := PrintDisks(Eq("slot", "pvc-1"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Unless([]Absence{NoDisk(Eq("slot", "pvc-1")), NoSubvolume(Match("name", `pvc-1`)), NoFile(Eq("name", "pool/k8s/pvc-1"))}, add, disk)
	if err != nil {
		t.Fatal(err)
	}
	want := `:if ([:len [/disk find where slot="pvc-1"]] = 0 && [:len [/disk/btrfs/subvolume find where name~"pvc-1"]] = 0 && ` +
		`[:len [/file find where name="pool/k8s/pvc-1"]] = 0) do={` + add.String() + "; " + disk.String() + "}"
	if g.String() != want || !g.Mutates() || g.Verb() != "guarded.subvolume.add+disk.add" {
		t.Errorf("guard = %q (verb %q), want %q", g.String(), g.Verb(), want)
	}
	one, err := Unless([]Absence{OneDisk(Eq("slot", "a")), OneFile(Eq("name", "p"))}, add)
	if err != nil || one.String() != `:if ([:len [/disk find where slot="a"]] = 1 && [:len [/file find where name="p"]] = 1) do={`+add.String()+"}" {
		t.Errorf("One... conditions: %q, %v", one.String(), err)
	}
	for _, tc := range []struct {
		name  string
		conds []Absence
		body  []Cmd
	}{
		{"no conditions", nil, []Cmd{add}},
		{"no body", []Absence{NoDisk(Eq("slot", "a"))}, nil},
		{"a read in the body", []Absence{NoDisk(Eq("slot", "a"))}, []Cmd{read}},
		{"an empty filter", []Absence{NoDisk(All())}, []Cmd{add}},
		{"a refused value", []Absence{NoDisk(Eq("slot", `a"; /system reboot`))}, []Cmd{add}},
		{"a refused pattern", []Absence{NoSubvolume(Match("name", `a"]]`))}, []Cmd{add}},
		{"a guard in the body", []Absence{NoDisk(Eq("slot", "a"))}, []Cmd{g}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := Unless(tc.conds, tc.body...); !errors.Is(err, ErrInvalid) {
				t.Errorf("Unless = %q, %v; want ErrInvalid", c.String(), err)
			}
		})
	}
}
