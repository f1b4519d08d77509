//go:build e2e

package e2e

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestBlockVolume is a raw block volume (what KubeVirt and databases use): the published target is the
// NVMe device itself, and bytes written through it land in the RDS's file and survive a detach.
func TestBlockVolume(t *testing.T) {
	st := need(t)
	v := st.createVolume(t, "pvc-e2e-block", gib, blockCapability(), nil)
	v.controllerPublish(t)
	v.stage(t)
	v.publish(t)

	fi, err := os.Stat(v.target)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("published %s is %s, not a block device", v.target, fi.Mode())
	}
	const off = 64 << 20
	data := payload(2, 4<<20)
	f, err := os.OpenFile(v.target, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size != v.capacity {
		t.Fatalf("published device is %d bytes (%v), the volume %d", size, err, v.capacity)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatalf("write through %s: %v", v.target, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", v.target, err)
	}
	f.Close()

	// The target's side: the bytes are in the exported file at the same offset.
	if got := readAt(t, exportedFile(t, v.nqn), off, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("the exported file holds sum %s at %d, written %s", sum(got), off, sum(data))
	}
	dropCaches(t)
	if got := readAt(t, v.target, off, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("read back through %s: sum %s, written %s", v.target, sum(got), sum(data))
	}

	v.detach(t)
	v.controllerPublish(t)
	v.stage(t)
	v.publish(t)
	if got := readAt(t, v.target, off, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("after detach and attach %s reads sum %s, written %s", v.target, sum(got), sum(data))
	}
	v.detach(t)
	v.delete(t)
}
