package mount

import "github.com/rds-csi/rds-csi/pkg/hostcmd"

// CommandError is a failed mount, umount, mkfs, blkid or resize tool, with the tool's output and
// its ExitStatus (blkid's 2 means "no signature").
type CommandError = hostcmd.Error
