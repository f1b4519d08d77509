package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// blkid exit statuses (util-linux blkid(8)).
const (
	blkidFound    = 0
	blkidNotFound = 2
)

// blankCheckBytes is how much of the device's start must read back as zeros
// for it to count as blank. Every signature blkid knows for the filesystems
// and partition tables a volume could carry lives in the first MiB.
const blankCheckBytes = 1 << 20

// parseBlkidExport reads `blkid -o export` output (KEY=value lines) and
// returns the TYPE and PTTYPE values.
func parseBlkidExport(out string) (fsType, ptType string) {
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch key {
		case "TYPE":
			fsType = val
		case "PTTYPE":
			ptType = val
		}
	}
	return fsType, ptType
}

// probe returns the filesystem type on device, or "" only when the device is
// provably blank.
//
// blkid exit status 2 ("nothing found") alone proves nothing: util-linux
// blkid also exits 2 when it cannot open the device or a read fails. So a
// blank verdict also needs: no output from blkid, a block device that opens,
// has a size, and whose first MiB reads back as zeros. Anything else is
// ErrUncertain or ErrNotBlank, never a reason to format.
func (m *Linux) probe(ctx context.Context, device string) (string, error) {
	out, err := m.run.Run(ctx, "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", device)
	if err == nil {
		fsType, ptType := parseBlkidExport(out)
		switch {
		case ptType != "":
			return "", fmt.Errorf("%w: %s has a %s partition table", ErrNotBlank, device, ptType)
		case fsType == "":
			return "", fmt.Errorf("%w: blkid found a signature of no known type on %s: %q", ErrNotBlank, device, out)
		}
		return fsType, nil
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitStatus() != blkidNotFound {
		// The verdict is ErrUncertain; why blkid failed (even a timeout) only explains it.
		return "", fmt.Errorf("%w: probing %s: %s", ErrUncertain, device, err.Error())
	}
	if strings.TrimSpace(out) != "" {
		return "", fmt.Errorf("%w: blkid found nothing on %s but said %q", ErrUncertain, device, strings.TrimSpace(out))
	}
	if err := verifyZeroStart(device); err != nil {
		return "", err
	}
	return "", nil
}

// verifyZeroStart checks that device is a readable block device of non-zero
// size whose first blankCheckBytes are zeros.
func verifyZeroStart(device string) error {
	if _, err := blockDeviceNumber(device); err != nil {
		return fmt.Errorf("%w: %s", ErrUncertain, err.Error())
	}
	fh, err := os.Open(device)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrUncertain, err.Error())
	}
	defer fh.Close()
	size, err := blockDeviceSize(fh)
	if err != nil {
		return fmt.Errorf("%w: %s: %s", ErrUncertain, device, err.Error())
	}
	if size == 0 {
		return fmt.Errorf("%w: %s has size 0 (not ready)", ErrUncertain, device)
	}
	n := min(size, blankCheckBytes)
	buf := make([]byte, n)
	if _, err := io.ReadFull(io.NewSectionReader(fh, 0, n), buf); err != nil {
		return fmt.Errorf("%w: reading %s: %s", ErrUncertain, device, err.Error())
	}
	if !bytes.Equal(buf, make([]byte, n)) {
		return fmt.Errorf("%w: %s holds data in its first %d bytes that blkid does not recognise; "+
			"inspect it (e.g. wipefs -n) and wipe it by hand if it is really unused", ErrNotBlank, device, n)
	}
	return nil
}

// blockDeviceSize asks the kernel for the size of an open block device.
func blockDeviceSize(fh *os.File) (int64, error) {
	conn, err := fh.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size uint64
	var ioctlErr error
	if err := conn.Control(func(fd uintptr) {
		size, ioctlErr = unix.IoctlGetUint64(int(fd), unix.BLKGETSIZE64)
	}); err != nil {
		return 0, err
	}
	if ioctlErr != nil {
		return 0, fmt.Errorf("BLKGETSIZE64: %w", ioctlErr)
	}
	return int64(size), nil
}
