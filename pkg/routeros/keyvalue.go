package routeros

import (
	"fmt"
	"strings"
)

// ParseKeyValueLines parses `key: value` lines, as `monitor-traffic ... once` prints them (keys may be
// right-aligned with leading spaces). Blank lines are skipped; a line without a colon is an error, which
// is how a RouterOS error message in place of the expected output is caught.
func ParseKeyValueLines(out string) (map[string]string, error) {
	kv := map[string]string{}
	lineNo := 0
	for rest := out; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		lineNo++
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || !validMonitorKey(key) {
			return nil, fmt.Errorf("line %d: expected \"key: value\", found %q", lineNo, clip(line))
		}
		kv[key] = strings.TrimSpace(val)
	}
	return kv, nil
}

// validMonitorKey accepts the names monitor commands print (read-ops, in-flight-ops, ...).
func validMonitorKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isKeyByte(k[i]) {
			return false
		}
	}
	return true
}
