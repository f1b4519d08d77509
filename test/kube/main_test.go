package kube

import (
	"fmt"
	"os"
	"testing"

	"github.com/rds-csi/rds-csi/test/procenv"
)

// afterTests are cleanups of fixtures shared by the runs of a benchmark.
var afterTests []func() error

func TestMain(m *testing.M) {
	code := m.Run()
	for _, cleanup := range afterTests {
		if err := cleanup(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	procenv.RemoveBuilt()
	os.Exit(code)
}
