// Package rdssim simulates a MikroTik ROSE Data Server (RDS) for people who
// want to try rds-csi without the hardware, and for tests.
//
// It is a real SSH server (golang.org/x/crypto/ssh, public-key auth, exec
// requests only) that parses and runs the RouterOS console subset the driver
// uses: /disk add|set|remove|print|monitor-traffic, /file print|remove,
// /disk btrfs subvolume add|remove|print, :put, [find ...] and where
// filters. Output has the real console's shape (Flags legend, index and flag
// columns, wrapping, grouped numbers, human sizes, "\r\n"), errors print on
// stdout with RouterOS's texts, and the exit status is non-zero on failure.
//
// Volumes are real sparse files under Config.DataDir/fs/<pool>; snapshots are
// reflinked or sparse copies; the state is saved atomically to
// DataDir/state.json so it survives restarts. Faults (latency, disk full,
// dropped connections, hangs, exit status 0 on failure) can be switched on
// by Config.Faults, SetFaults or the --fault flag of cmd/rds-sim.
//
// README.md next to this file documents the fault grammar and every place
// where the simulator had to decide something the RouterOS facts leave open.
package rdssim
