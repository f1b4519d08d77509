package nvme

import "github.com/rds-csi/rds-csi/pkg/hostcmd"

// CommandError is a failed nvme-cli or losetup run, with the tool's output (which usually says
// why: "Failed to write to /dev/nvme-fabrics: ...") and its ExitStatus.
type CommandError = hostcmd.Error
