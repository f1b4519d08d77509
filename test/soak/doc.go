// Package soak holds the fault-and-kill soak of the controller (issue 12): the rds-csi binary in
// controller mode against an rds-sim process, SIGKILLed mid-operation while the simulator is restarted
// with injected faults, ending in an exact comparison of the RDS with what the CO was told. `go test`
// runs a short soak; `make soak` a long one.
package soak
