package routeros

import (
	"fmt"
	"strings"
	"time"
)

// timeLayouts are the two date styles RouterOS prints (docs/routeros.md §1.3). Month names match regardless of
// case, so "nov/11/2025" parses.
var timeLayouts = []string{"2006-01-02 15:04:05", "Jan/02/2006 15:04:05"}

// ParseTime parses a RouterOS timestamp such as "2025-11-11 14:32:41" or "nov/11/2025 14:32:41". RouterOS
// prints the router's local time without a zone; the result is in UTC, which is what the RDS runs unless
// configured otherwise. A wrap that glued the date and the time together ("2025-11-1114:32:41") is undone.
func ParseTime(v string) (time.Time, error) {
	s := strings.Join(strings.Fields(v), " ")
	if !strings.Contains(s, " ") && len(s) > 8 {
		// Date and time glued by a wrap: the time is the last 8 characters.
		s = s[:len(s)-8] + " " + s[len(s)-8:]
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", clip(v))
}
