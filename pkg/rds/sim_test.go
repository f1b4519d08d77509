package rds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// These tests run the client against the RDS simulator: a real SSH server that parses RouterOS commands
// and prints RouterOS-shaped output from real sparse files.

func startSim(t testing.TB, cfg rdssim.Config) *rdssim.Simulator {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func simClient(t testing.TB, sim *rdssim.Simulator, cfg Config) *Client {
	t.Helper()
	signer, err := LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Address, cfg.User, cfg.Signer, cfg.HostKeyCallback = sim.Addr(), "admin", signer, hk
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type volumeCmds struct {
	create, expand, remove []Cmd
	readDisk, readFile     Cmd
	readSub                Cmd
}

func volumeFor(t testing.TB, id string, size int64) volumeCmds {
	t.Helper()
	must := func(c Cmd, err error) Cmd {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	path := "pool/k8s/" + id + "/disk.img"
	return volumeCmds{
		create: []Cmd{
			must(AddSubvolume("pool-fs", "k8s/"+id)), // fs= is the label: the simulator's default "<slot>-fs"
			must(AddFileDisk(FileDiskSpec{Slot: id, FilePath: path, SizeBytes: size, NQN: "nqn.2000-02.com.mikrotik:" + id})),
		},
		expand:   []Cmd{must(SetDiskSize(id, 2*size))},
		remove:   []Cmd{must(RemoveDisk(id)), must(RemoveFile(path)), must(RemoveSubvolume("pool-fs", id))}, // by the leaf, as the manual removes
		readDisk: must(PrintDisks(Eq("slot", id))),
		readFile: must(PrintFiles(Eq("name", path))),
		readSub:  must(PrintSubvolumes(Eq("fs", "pool-fs"), Eq("name", id))),
	}
}

// TestSimulatorVolumeLifecycle creates, reads, grows, snapshots and deletes a volume, in both exec modes,
// as the driver does: mutations and their read-back in one Run.
func TestSimulatorVolumeLifecycle(t *testing.T) {
	for _, oneCmd := range []bool{false, true} {
		t.Run(fmt.Sprintf("one-per-exec=%v", oneCmd), func(t *testing.T) {
			sim := startSim(t, rdssim.Config{})
			c := simClient(t, sim, Config{OneCommandPerExec: oneCmd})
			ctx := context.Background()
			const id = "pvc-3f2a9c1e-5b7d-4e8a-9c0f-1a2b3c4d5e6f" // long enough to wrap at 80 columns
			v := volumeFor(t, id, 3<<29)                          // 1.5 GiB: a size a unit suffix would round

			out, err := c.Run(ctx, v.create, v.readDisk, v.readSub)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			disks, err := DisksFrom(out[0])
			if err != nil || len(disks) != 1 {
				t.Fatalf("read-back: %+v, %v", disks, err)
			}
			d := disks[0]
			if d.Slot != id || d.SizeBytes != 3<<29 || d.FilePath != "pool/k8s/"+id+"/disk.img" || !d.Exported ||
				d.MountFilesystem || d.NQN != "nqn.2000-02.com.mikrotik:"+id || d.Port != 4420 {
				t.Errorf("created disk: %+v", d)
			}
			if len(out[1]) != 1 {
				t.Errorf("subvolume read-back: %v", out[1])
			}

			again, err := c.Run(ctx, v.create[1:], v.readDisk)
			if !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("adding the same slot again = %v, %v; want ErrAlreadyExists", again, err)
			}

			out, err = c.Run(ctx, v.expand, v.readDisk)
			if err != nil {
				t.Fatalf("expand: %v", err)
			}
			if disks, _ := DisksFrom(out[0]); len(disks) != 1 || disks[0].SizeBytes != 3<<30 {
				t.Errorf("after expand: %+v", disks)
			}

			snap, err := AddSnapshot("pool-fs", id, "k8s-snap/snap-1", true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Run(ctx, []Cmd{snap}); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			subs, err := c.Subvolumes(ctx, Eq("name", "snap-1"))
			if err != nil || len(subs) != 1 || !subs[0].ReadOnly || subs[0].Parent != id || subs[0].FS != "pool-fs" {
				t.Errorf("snapshot read-back: %+v, %v", subs, err)
			}

			files, err := c.Files(ctx, Eq("name", "pool/k8s/"+id+"/disk.img"))
			if err != nil || len(files) != 1 || files[0].Name != "pool/k8s/"+id+"/disk.img" {
				t.Errorf("file read-back: %+v, %v", files, err)
			}
			readFS, err := PrintFilesystems(Eq("present-devs", "pool"))
			if err != nil {
				t.Fatal(err)
			}
			if items, err := c.Run(ctx, nil, readFS); err != nil ||
				len(items[0]) != 1 || FilesystemsFrom(items[0])[0].Label != "pool-fs" {
				t.Errorf("filesystem read-back: %v, %v", items, err)
			}
			pool, err := c.Pool(ctx, "pool")
			if err != nil || pool.FS != "btrfs" || pool.FSLabel != "pool-fs" || pool.SizeBytes <= 0 || pool.FreeBytes <= 0 {
				t.Errorf("pool: %+v, %v", pool, err)
			}
			got, err := c.Disk(ctx, id)
			if err != nil || got.Slot != id {
				t.Errorf("Disk: %+v, %v", got, err)
			}
			if _, err := c.Traffic(ctx, id); err != nil {
				t.Errorf("Traffic: %v", err)
			}
			if err := c.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}

			for round := 0; round < 2; round++ { // the second delete finds nothing and must succeed too
				out, err = c.Run(ctx, v.remove, v.readDisk, v.readFile)
				if err != nil {
					t.Fatalf("delete round %d: %v", round, err)
				}
				if len(out[0]) != 0 || len(out[1]) != 0 {
					t.Errorf("delete round %d left %v", round, out)
				}
			}
			if _, err := c.Disk(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Disk after delete = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestSimulatorFaults(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	c := simClient(t, sim, Config{CommandTimeout: 2 * time.Second})
	ctx := context.Background()
	v := volumeFor(t, "pvc-1", 1<<30)

	sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDiskFull, Count: 1})
	if _, err := c.Run(ctx, v.create, v.readDisk); !errors.Is(err, ErrNoSpace) {
		t.Errorf("disk full = %v, want ErrNoSpace", err)
	}
	sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "/disk set", Count: 1})
	if _, err := c.Run(ctx, v.expand, v.readDisk); !errors.Is(err, ErrUnavailable) {
		t.Errorf("dropped after a mutation = %v, want ErrUnavailable", err)
	}
	sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "/disk print", Count: 1})
	if _, err := c.Run(ctx, nil, v.readDisk); err != nil {
		t.Errorf("a read dropped once should be retried: %v", err)
	}
	sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultHang, Match: "/file print", Count: 1})
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Run(tctx, nil, v.readFile); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung read = %v, want the deadline", err)
	}
	sim.SetFaults()
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping after the faults: %v", err)
	}
}

// TestSimulatorHostileInputNeverSent: refused values never reach the simulator, whose command log is the
// RDS's view of what it was asked.
func TestSimulatorHostileInputNeverSent(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	c := simClient(t, sim, Config{})
	ctx := context.Background()
	for _, h := range hostile {
		if _, err := c.Disk(ctx, h); !errors.Is(err, ErrInvalid) {
			t.Errorf("Disk(%q) = %v", h, err)
		}
		if _, err := c.Files(ctx, Match("name", "^"+h)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Files(%q) = %v", h, err)
		}
		if _, err := AddFileDisk(FileDiskSpec{Slot: "a", FilePath: "pool/" + h, SizeBytes: 1, NQN: "nqn.2000-02.com.mikrotik:a"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddFileDisk(%q) = %v", h, err)
		}
	}
	if got, cmds := sim.Scripts(), sim.Commands(); len(got) != 0 || len(cmds) != 0 {
		t.Fatalf("the simulator received %q and ran %q", got, cmds)
	}
	if _, err := c.Disks(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sim.Scripts(); len(got) != 1 || !strings.HasPrefix(got[0], "/disk print detail") {
		t.Fatalf("the simulator's log after one valid read: %q", got)
	}
}
