package doctor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdsflag"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Main is `rds-csi doctor`: it parses args (the controller's RDS flags plus --capture and --read-only),
// runs every check and returns the exit code: 0 when every required check passed, 1 when one failed or
// the run was interrupted, 2 for bad flags. The first SIGINT or SIGTERM stops the checks and removes the
// scratch items; a second one ends the process at once.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rds-csi doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn rdsflag.Values
	rdsflag.Register(fs, &conn)
	captureDir := fs.String("capture", "", "write every command and its raw output, verbatim, into DIR")
	nvmeConnect := fs.Bool("nvme-connect", false, "try the host-access check's scratch export with nvme-cli on this "+
		"machine (must fail for a host NQN it does not name, succeed for the one it names)")
	nvmeAddress := fs.String("nvme-address", "", "the RDS's NVMe/TCP data address for --nvme-connect (default: the --rds-address host)")
	readOnly := fs.Bool("read-only", false, "run only the checks that change nothing on the RDS (those the controller runs at start-up)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rds-csi doctor --rds-address HOST --rds-user USER --rds-key-file KEY --rds-host-key FILE [--base-path POOL/DIR] [--capture DIR]")
		fmt.Fprintln(stderr, "Checks an RDS for everything rds-csi relies on; creates and removes scratch items named "+ScratchPrefix+"*.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rds-csi doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	loc, err := volume.ParseLocation(conn.BasePath)
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi doctor: --base-path:", err)
		return 2
	}
	cfg, err := conn.ClientConfig()
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi doctor:", err)
		return 2
	}
	client, err := rds.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi doctor:", err)
		return 2
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopNotice := context.AfterFunc(ctx, func() {
		stop() // a second signal ends the process
		fmt.Fprintln(stderr, "rds-csi doctor: interrupted; removing the scratch items (interrupt again to abandon them)")
	})
	defer stopNotice()
	opts := Options{Location: loc, ReadOnly: *readOnly, HostKeyUnverified: conn.InsecureHostKey,
		CaptureDir: *captureDir, Out: stdout, Address: cfg.Address, User: cfg.User}
	if *nvmeConnect {
		opts.Connector, opts.NVMeAddress = NVMeCLI{}, *nvmeAddress
		if opts.NVMeAddress == "" {
			opts.NVMeAddress = hostPart(cfg.Address)
		}
	}
	rep, err := Run(ctx, client, opts)
	if err != nil {
		fmt.Fprintln(stderr, "rds-csi doctor:", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// hostPart is the host of a host[:port] address.
func hostPart(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
