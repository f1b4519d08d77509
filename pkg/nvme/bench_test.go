package nvme

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDeviceLookup measures the sysfs walk every node RPC does, on a
// node with 64 connected volumes (multipath layout: 128 /sys/block entries).
func BenchmarkDeviceLookup(b *testing.B) {
	f := newFakeSysfs(b)
	for i := range 64 {
		nqn := fmt.Sprintf("%spvc-%03d", NQNPrefix, i)
		ctrl := fmt.Sprintf("nvme%d", i)
		f.addController(ctrl, i, nqn, StateLive)
		f.addMultipathNamespace(i, ctrl, i, 1)
	}
	want := fmt.Sprintf("%spvc-%03d", NQNPrefix, 63)
	cli := NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev})
	for b.Loop() {
		if _, err := cli.Device(context.Background(), want); err != nil {
			b.Fatal(err)
		}
	}
}
