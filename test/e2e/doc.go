// Package e2e is the e2e-nvme lane's test: the driver's node plugin over a real kernel NVMe/TCP target and
// initiator. Its tests carry the e2e build tag, so `go test ./...` on a development machine builds nothing
// here; `make e2e-nvme` (hack/e2e-nvme/e2e-nvme.sh) builds them with -tags e2e into a static test binary and
// runs it as part of the /init of a QEMU guest whose kernel has nvmet and nvme-tcp. Built and run anywhere
// else (no /sys/kernel/config/nvmet, or not root), every test skips and says why.
//
// Inside the guest the test binary starts the RDS simulator with its kernel nvmet exporter and the rds-csi
// binary in `all` mode with the nvme-cli initiator, then drives the CSI API over the driver's unix socket
// the way kubelet and the external sidecars would. Adding a case is adding a Test function that takes the
// stack with need(t) and uses the volume helpers in csi_test.go.
package e2e
