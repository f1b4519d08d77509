package attachment

import (
	"fmt"
	"os"
	"testing"
)

// afterTests are cleanups of fixtures shared across the runs of a benchmark.
var afterTests []func() error

func TestMain(m *testing.M) {
	code := m.Run()
	for _, cleanup := range afterTests {
		if err := cleanup(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
