package nvme

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	testingexec "k8s.io/utils/exec/testing"
)

// newTestCLI returns a CLI over a fake sysfs tree with a host NQN file and a
// recording exec.
func newTestCLI(t *testing.T, f *fakeSysfs, respond func(argv []string) (string, error)) (*CLI, *recordingExec) {
	t.Helper()
	hostnqn := filepath.Join(t.TempDir(), "hostnqn")
	if err := os.WriteFile(hostnqn, []byte(sampleHostNQN+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := newRecordingExec(t, respond)
	return NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev, HostNQNFile: hostnqn, Exec: rec}), rec
}

func connectParams(nqn string) ConnectParams {
	p := DefaultConnectParams()
	p.Address = "10.0.0.5"
	p.NQN = nqn
	return p
}

func TestConnectArgv(t *testing.T) {
	tests := []struct {
		name   string
		params func() ConnectParams
		want   []string
	}{
		{
			name:   "defaults: never give up on a rebooting RDS",
			params: func() ConnectParams { return connectParams(nqnA) },
			want: []string{"nvme", "connect", "-t", "tcp", "-a", "10.0.0.5", "-s", "4420", "-n", nqnA,
				"-q", sampleHostNQN, "--ctrl-loss-tmo=-1", "--reconnect-delay=5", "--keep-alive-tmo=5"},
		},
		{
			name: "StorageClass values and an explicit host NQN",
			params: func() ConnectParams {
				p := connectParams(nqnB)
				p.Address, p.Port = "fd00::5", 4421
				p.CtrlLossTmo, p.ReconnectDelay, p.KeepAliveTmo = 1800, 10, 30
				p.HostNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
				return p
			},
			want: []string{"nvme", "connect", "-t", "tcp", "-a", "fd00::5", "-s", "4421", "-n", nqnB,
				"-q", "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555",
				"--ctrl-loss-tmo=1800", "--reconnect-delay=10", "--keep-alive-tmo=30"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSysfs(t)
			f.addLocalDisk()
			cli, rec := newTestCLI(t, f, nil)
			if err := cli.Connect(context.Background(), tc.params()); err != nil {
				t.Fatal(err)
			}
			rec.expectCalls(tc.want)
		})
	}
}

func TestConnectSkipsOrRefuses(t *testing.T) {
	tests := []struct {
		name    string
		state   string // of an existing controller for nqnA; "" = none
		params  func(cli *CLI) ConnectParams
		wantErr error
		runs    bool
	}{
		{name: "live controller: nothing to do", state: StateLive, runs: false},
		{name: "kernel reconnecting: leave it to ctrl_loss_tmo", state: StateConnecting, wantErr: ErrNotLive},
		{name: "kernel resetting", state: StateResetting, wantErr: ErrNotLive},
		{name: "old controller being deleted: connect anew", state: StateDeleting, runs: true},
		{name: "dead controller: connect anew", state: StateDead, runs: true},
		{name: "foreign NQN", params: func(*CLI) ConnectParams { return connectParams(foreignNQN) }, wantErr: ErrForeignNQN},
		{name: "address that looks like an option", wantErr: ErrInvalidParams,
			params: func(*CLI) ConnectParams { p := connectParams(nqnA); p.Address = "--duplicate-connect"; return p }},
		{name: "host NQN file missing", wantErr: errAny,
			params: func(cli *CLI) ConnectParams {
				cli.opts.HostNQNFile = filepath.Join(os.TempDir(), "does-not-exist", "hostnqn")
				return connectParams(nqnA)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSysfs(t)
			if tc.state != "" {
				f.addController("nvme0", 0, nqnA, tc.state)
			}
			cli, rec := newTestCLI(t, f, nil)
			p := connectParams(nqnA)
			if tc.params != nil {
				p = tc.params(cli)
			}
			err := cli.Connect(context.Background(), p)
			checkErr(t, err, tc.wantErr)
			if got := len(rec.recorded()); (got > 0) != tc.runs {
				t.Errorf("ran %d commands %q, want runs=%v", got, rec.recorded(), tc.runs)
			}
		})
	}
}

func TestConnectFailure(t *testing.T) {
	fail := func([]string) (string, error) {
		return "Failed to write to /dev/nvme-fabrics: Input/output error\n", testingexec.FakeExitError{Status: 1}
	}
	t.Run("error carries nvme-cli's output", func(t *testing.T) {
		f := newFakeSysfs(t)
		cli, _ := newTestCLI(t, f, fail)
		err := cli.Connect(context.Background(), connectParams(nqnA))
		var ce *CommandError
		if !errors.As(err, &ce) || ce.ExitStatus() != 1 || !strings.Contains(err.Error(), "Input/output error") {
			t.Fatalf("Connect error = %v, want a CommandError with exit status 1 and the output", err)
		}
	})
	t.Run("lost race to a concurrent connect is success", func(t *testing.T) {
		f := newFakeSysfs(t)
		cli, _ := newTestCLI(t, f, func(argv []string) (string, error) {
			f.addController("nvme0", 0, nqnA, StateLive) // the other connect won
			return "Failed to write to /dev/nvme-fabrics: Operation already in progress\n", testingexec.FakeExitError{Status: 1}
		})
		if err := cli.Connect(context.Background(), connectParams(nqnA)); err != nil {
			t.Fatalf("Connect = %v, want nil once the subsystem is live", err)
		}
	})
}

// TestConnectTimeout runs a real program that hangs, to show that the
// timeout ends it.
func TestConnectTimeout(t *testing.T) {
	hang := filepath.Join(t.TempDir(), "nvme")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFakeSysfs(t)
	cli, _ := newTestCLI(t, f, nil)
	cli = NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev, HostNQNFile: cli.opts.HostNQNFile,
		NvmeBinary: hang, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := cli.Connect(context.Background(), connectParams(nqnA))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Connect returned after %s: the hung command was not ended", d)
	}
}

func TestDisconnect(t *testing.T) {
	foreign := []string{
		foreignNQN,
		"nqn.2014.08.org.nvmexpress:144d144dS4EWNX0R123456      Samsung SSD 980 1TB",
		"nqn.2000-02.com.mikrotik",        // prefix without the colon
		NQNPrefix,                         // prefix without a volume id
		"nqn.2000-02.com.mikrotik.evil:x", // look-alike
		" " + nqnA,
		"",
	}
	for _, nqn := range foreign {
		t.Run("refuses "+strings.TrimSpace(nqn), func(t *testing.T) {
			f := newFakeSysfs(t)
			f.addLocalDisk()
			f.addController("nvme0", 0, nqn, StateLive) // connected, yet not ours
			cli, rec := newTestCLI(t, f, nil)
			err := cli.Disconnect(context.Background(), nqn)
			checkErr(t, err, ErrForeignNQN)
			rec.expectCalls()
		})
	}

	t.Run("not connected: nothing to do", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.addLocalDisk()
		f.addController("nvme0", 0, nqnB, StateLive)
		cli, rec := newTestCLI(t, f, nil)
		if err := cli.Disconnect(context.Background(), nqnA); err != nil {
			t.Fatal(err)
		}
		rec.expectCalls()
	})

	for _, state := range []string{StateLive, StateConnecting} {
		t.Run("disconnects a "+state+" controller", func(t *testing.T) {
			f := newFakeSysfs(t)
			f.addController("nvme1", 1, nqnA, state)
			f.addMultipathNamespace(1, "nvme1", 1, 1)
			cli, rec := newTestCLI(t, f, func(argv []string) (string, error) {
				f.removeController("nvme1")
				return "NQN:" + nqnA + " disconnected 1 controller(s)\n", nil
			})
			if err := cli.Disconnect(context.Background(), nqnA); err != nil {
				t.Fatal(err)
			}
			rec.expectCalls([]string{"nvme", "disconnect", "-n", nqnA})
		})
	}

	t.Run("controller left behind is an error", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.addController("nvme1", 1, nqnA, StateLive)
		cli, _ := newTestCLI(t, f, nil) // "succeeds" without removing anything
		if err := cli.Disconnect(context.Background(), nqnA); err == nil {
			t.Fatal("Disconnect = nil although the controller is still there")
		}
	})
}

func TestRescan(t *testing.T) {
	tests := []struct {
		name    string
		build   func(f *fakeSysfs)
		want    [][]string
		wantErr error
	}{
		{
			name: "every live path of the subsystem",
			build: func(f *fakeSysfs) {
				f.addController("nvme2", 0, nqnA, StateLive)
				f.addController("nvme5", 0, nqnA, StateConnecting)
				f.addController("nvme6", 0, nqnA, StateLive)
				f.addController("nvme7", 1, nqnB, StateLive)
			},
			want: [][]string{{"nvme", "ns-rescan", "DEV/nvme2"}, {"nvme", "ns-rescan", "DEV/nvme6"}},
		},
		{name: "not connected", build: func(f *fakeSysfs) {}, wantErr: ErrNotConnected},
		{
			name:    "only a reconnecting controller",
			build:   func(f *fakeSysfs) { f.addController("nvme2", 0, nqnA, StateConnecting) },
			wantErr: ErrNotLive,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSysfs(t)
			tc.build(f)
			cli, rec := newTestCLI(t, f, nil)
			err := cli.Rescan(context.Background(), nqnA)
			checkErr(t, err, tc.wantErr)
			var want [][]string
			for _, argv := range tc.want {
				argv = append([]string(nil), argv...)
				argv[2] = strings.Replace(argv[2], "DEV", f.dev, 1)
				want = append(want, argv)
			}
			rec.expectCalls(want...)
		})
	}
}

func TestWaitForDevice(t *testing.T) {
	t.Run("device appears after connect", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.addController("nvme0", 0, nqnA, StateLive)
		cli, _ := newTestCLI(t, f, nil)
		// The namespace shows up a little after the controller, as it does
		// when the kernel scans the new controller.
		timer := time.AfterFunc(150*time.Millisecond, func() { f.addMultipathNamespace(0, "nvme0", 0, 1) })
		defer timer.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dev, err := cli.WaitForDevice(ctx, nqnA)
		if err != nil || dev != filepath.Join(f.dev, "nvme0n1") {
			t.Fatalf("WaitForDevice = %q, %v", dev, err)
		}
	})
	t.Run("gives up at the deadline", func(t *testing.T) {
		f := newFakeSysfs(t)
		cli, _ := newTestCLI(t, f, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
		defer cancel()
		_, err := cli.WaitForDevice(ctx, nqnA)
		if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("WaitForDevice = %v, want ErrNoDevice naming the deadline", err)
		}
	})
	t.Run("without a deadline the fallback bounds the wait", func(t *testing.T) {
		f := newFakeSysfs(t)
		cli := NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev, Exec: newRecordingExec(t, nil), Timeout: 100 * time.Millisecond})
		if _, err := cli.WaitForDevice(context.Background(), nqnA); !errors.Is(err, ErrNoDevice) {
			t.Fatalf("WaitForDevice = %v, want ErrNoDevice", err)
		}
	})
	t.Run("an ambiguous subsystem fails at once", func(t *testing.T) {
		f := newFakeSysfs(t)
		f.addController("nvme0", 0, nqnA, StateLive)
		f.addMultipathNamespace(0, "nvme0", 0, 1)
		f.addMultipathNamespace(0, "nvme0", 0, 2)
		cli, _ := newTestCLI(t, f, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := cli.WaitForDevice(ctx, nqnA)
		if err == nil || errors.Is(err, ErrNoDevice) || ctx.Err() != nil {
			t.Fatalf("WaitForDevice = %v (ctx %v), want an immediate ambiguity error", err, ctx.Err())
		}
	})
}
