package mount

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRestage measures a repeated NodeStage of a staged volume (the
// kubelet-restart path): one mountinfo read and two stats, no commands.
func BenchmarkRestage(b *testing.B) {
	requireRoot(b, "mkfs.ext4")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dev, _ := loopDevice(b, 64<<20)
	target := filepath.Join(b.TempDir(), "globalmount")
	unmountOnCleanup(b, target)
	m := NewLinux(Options{})
	if err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatAndMountBlank measures the first NodeStage of a blank
// 512 MiB volume: probe, zero check, mkfs, mount (and the unmount between
// rounds, outside the timer).
func BenchmarkFormatAndMountBlank(b *testing.B) {
	requireRoot(b, "mkfs.ext4")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m := NewLinux(Options{})
	for b.Loop() {
		b.StopTimer()
		dev, _ := loopDevice(b, 512<<20)
		target := filepath.Join(b.TempDir(), "globalmount")
		b.StartTimer()
		if err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := m.Unmount(ctx, target); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
