package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// capture writes every command of a run and the RDS's raw answer, verbatim, into a directory:
// NN-<check>-<step>.cmd holds the script as sent, NN-<check>-<step>.txt its standard output byte for
// byte (ready to become a parser's golden input), .stderr and .err what else there was, and capture.log
// one line per command with its exit status.
type capture struct {
	dir string
	mu  sync.Mutex
	n   int
	log *os.File
	err error // the first write error, reported once at the end
}

func newCapture(dir string) (*capture, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--capture: %w", err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "capture.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--capture: %w", err)
	}
	return &capture{dir: dir, log: log}, nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

func (c *capture) write(x Exchange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	base := fmt.Sprintf("%02d-%s", c.n, strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(x.Label), "-"), "-"))
	put := func(ext, text string) {
		if err := os.WriteFile(filepath.Join(c.dir, base+ext), []byte(text), 0o644); err != nil && c.err == nil {
			c.err = err
		}
	}
	put(".cmd", x.Script)
	status := "error"
	if x.Err != nil {
		put(".err", x.Err.Error()+"\n")
	} else {
		put(".txt", x.Out.Stdout)
		if x.Out.Stderr != "" {
			put(".stderr", x.Out.Stderr)
		}
		status = exitText(x.Out.ExitStatus)
	}
	if _, err := fmt.Fprintf(c.log, "%s\texit=%s\t%q\n", base, status, x.Script); err != nil && c.err == nil {
		c.err = err
	}
}

// close flushes the log; a nil capture is fine.
func (c *capture) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.log.Close(); err != nil && c.err == nil {
		c.err = err
	}
	return c.err
}
