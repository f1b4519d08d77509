package routeros

import (
	"fmt"
	"math/big"
	"strings"
)

// binaryUnits are the size suffixes RouterOS prints or accepts; all are 1024-based (docs/routeros.md §1.1).
var binaryUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "k": 1 << 10, "KiB": 1 << 10, "kiB": 1 << 10,
	"M": 1 << 20, "MiB": 1 << 20,
	"G": 1 << 30, "GiB": 1 << 30,
	"T": 1 << 40, "TiB": 1 << 40,
	"P": 1 << 50, "PiB": 1 << 50,
	"E": 1 << 60, "EiB": 1 << 60,
}

// rateUnits are the suffixes of monitor rates (bits per second, 1000-based).
var rateUnits = map[string]int64{
	"bps": 1, "kbps": 1e3, "Kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9, "Tbps": 1e12,
}

// ParseBytes parses a size as RouterOS prints it: plain or space-grouped bytes ("1 099 511 627 776"),
// a unit suffix ("10G", "512M", "4K") or a human size with a decimal ("50.0GiB"). Units are 1024-based.
// Spaces anywhere are ignored, so a grouped number glued back together after a wrap parses the same.
// A human size is rounded by RouterOS; the result is its nearest byte count, not the exact size.
func ParseBytes(v string) (int64, error) {
	return parseScaled(v, binaryUnits, "size")
}

// ParseRate parses a monitor rate such as "12.8Mbps" or "0bps" into bits per second (1000-based units).
func ParseRate(v string) (int64, error) {
	return parseScaled(v, rateUnits, "rate")
}

func parseScaled(v string, units map[string]int64, what string) (int64, error) {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, v)
	if s == "" || len(s) > 64 {
		return 0, fmt.Errorf("invalid %s %q", what, clip(v))
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		frac, i = s[i+1:j], j
	}
	if intPart == "" && frac == "" {
		return 0, fmt.Errorf("invalid %s %q: no digits", what, clip(v))
	}
	mult, ok := units[s[i:]]
	if !ok {
		return 0, fmt.Errorf("invalid %s %q: unknown unit %q", what, clip(v), clip(s[i:]))
	}
	if frac != "" && mult == 1 {
		return 0, fmt.Errorf("invalid %s %q: a fraction needs a unit", what, clip(v))
	}
	// (int.frac) * mult, computed exactly and rounded to the nearest unit.
	num, _ := new(big.Int).SetString("0"+intPart+frac, 10)
	num.Mul(num, big.NewInt(mult))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	num.Add(num, new(big.Int).Rsh(den, 1))
	num.Quo(num, den)
	if !num.IsInt64() {
		return 0, fmt.Errorf("invalid %s %q: too large", what, clip(v))
	}
	return num.Int64(), nil
}
