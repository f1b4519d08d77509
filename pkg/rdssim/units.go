package rdssim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// groupDigits writes n with a space between groups of three digits, the way
// RouterOS prints byte counts (size=1 099 511 627 776).
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	first := len(s) % 3
	if first == 0 {
		first = 3
	}
	b.WriteString(s[:first])
	for i := first; i < len(s); i += 3 {
		b.WriteByte(' ')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

var binaryUnits = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// humanSize prints a byte count with one decimal and a binary unit. The real
// box prints a 1 TiB file as file-size=1024.0GiB, so a value moves to the next
// unit only once it is strictly greater than 1024 of the current one.
func humanSize(n int64) string {
	if n <= 1024 {
		return strconv.FormatInt(n, 10)
	}
	v := float64(n) / 1024
	i := 0
	for v > 1024 && i < len(binaryUnits)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", v, binaryUnits[i])
}

// humanRate prints a bit rate the way RouterOS monitors do: 0bps, 950bps,
// 12.8Mbps (decimal units).
func humanRate(bitsPerSecond int64) string {
	if bitsPerSecond < 1000 {
		return strconv.FormatInt(bitsPerSecond, 10) + "bps"
	}
	units := []string{"kbps", "Mbps", "Gbps", "Tbps"}
	v := float64(bitsPerSecond) / 1000
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// unitShift maps a size suffix letter to its power of 1024.
func unitShift(c byte) (uint, bool) {
	switch c {
	case 'k', 'K':
		return 10, true
	case 'm', 'M':
		return 20, true
	case 'g', 'G':
		return 30, true
	case 't', 'T':
		return 40, true
	}
	return 0, false
}

// parseFileSize parses a RouterOS size argument: plain bytes or digits with a
// single K/M/G/T suffix (1024-based), as `/disk add file-size=` accepts it.
func parseFileSize(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	digits := s
	var shift uint
	if sh, ok := unitShift(s[len(s)-1]); ok {
		digits = s[:len(s)-1]
		shift = sh
	}
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	if shift > 0 && n > math.MaxInt64>>shift {
		return 0, false
	}
	return n << shift, true
}

// ParseSize parses a size given on the command line or in a Config: plain
// bytes, or a number with K, M, G, T, KiB, MiB, GiB or TiB (all 1024-based;
// "GB" is read as GiB too, because RouterOS has no decimal units).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "iB"), "B")
	if n, ok := parseFileSize(t); ok {
		return n, nil
	}
	return 0, fmt.Errorf("invalid size %q: want bytes or a number with K, M, G or T (1024-based), e.g. 100GiB", s)
}

// parseNumberArg reads a value that may be grouped digits ("1 099 511 627 776"),
// plain digits or a size with a suffix, for numeric comparisons in filters.
func parseNumberArg(s string) (int64, bool) {
	t := strings.ReplaceAll(s, " ", "")
	t = strings.TrimSuffix(t, "%")
	if n, ok := parseFileSize(t); ok {
		return n, true
	}
	if u := strings.TrimSuffix(t, "iB"); u != t {
		if i := strings.IndexByte(u, '.'); i >= 0 {
			f, err := strconv.ParseFloat(u[:len(u)-1], 64)
			sh, ok := unitShift(u[len(u)-1])
			if err == nil && ok && f >= 0 && f < float64(int64(math.MaxInt64)>>sh) {
				return int64(f * float64(int64(1)<<sh)), true
			}
		}
		return parseFileSize(u)
	}
	return 0, false
}
