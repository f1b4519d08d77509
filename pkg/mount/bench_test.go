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
	if _, err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
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
		if _, err := m.FormatAndMount(ctx, dev, target, "ext4", nil, false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := m.Unmount(ctx, target); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkNeedsResize measures the size check a repeated NodeStage of a
// filesystem that existed before now makes: the mount table, one tool run
// (dumpe2fs for ext4, xfs_io for xfs) and the device size.
func BenchmarkNeedsResize(b *testing.B) {
	for _, fsType := range []string{"ext4", "xfs"} {
		b.Run(fsType, func(b *testing.B) {
			requireRoot(b, "mkfs."+fsType, "dumpe2fs", "xfs_io")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			dev, _ := loopDevice(b, 512<<20)
			target := filepath.Join(b.TempDir(), "globalmount")
			unmountOnCleanup(b, target)
			m := NewLinux(Options{})
			if _, err := m.FormatAndMount(ctx, dev, target, fsType, nil, false); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if need, err := m.NeedsResize(ctx, dev, target); err != nil || need {
					b.Fatalf("NeedsResize of a fresh filesystem = %v, %v", need, err)
				}
			}
		})
	}
}
