package routeros

import (
	"reflect"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1 099 511 627 776", 1099511627776, false},
		{"1099511627776", 1099511627776, false},
		{"1 099511 627 776", 1099511627776, false}, // a wrap glued the groups back together
		{"50.0GiB", 50 << 30, false},
		{"1024.0GiB", 1 << 40, false},
		{"1.5GiB", 3 << 29, false},
		{"10.0KiB", 10 << 10, false},
		{"12.3MiB", 12897485, false}, // 12.3 * 1048576 = 12897484.8, rounded
		{"2.0TiB", 2 << 40, false},
		{"10G", 10 << 30, false},
		{"512M", 512 << 20, false},
		{"4K", 4096, false},
		{"4k", 4096, false},
		{"1T", 1 << 40, false},
		{"0", 0, false},
		{"4 096", 4096, false},
		{"8B", 8, false},
		{".5KiB", 512, false},
		{"7E", 7 << 60, false},
		{"8E", 0, true}, // 2^63 overflows int64
		{"9223372036854775807", 9223372036854775807, false},
		{"9223372036854775808", 0, true},
		{"", 0, true},
		{"   ", 0, true},
		{"G", 0, true},
		{"1.5", 0, true}, // a fraction of a byte
		{"-1", 0, true},
		{"10GB", 0, true},
		{"10X", 0, true},
		{"1.2.3G", 0, true},
		{"none", 0, true},
		{"1e9", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseBytes(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"12.8Mbps", 12800000, false},
		{"0bps", 0, false},
		{"1.5Gbps", 1500000000, false},
		{"800kbps", 800000, false},
		{"3", 3, true},
		{"12.8MiB", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2025, 11, 11, 14, 32, 41, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2025-11-11 14:32:41", want, false},
		{"nov/11/2025 14:32:41", want, false},
		{"Nov/11/2025 14:32:41", want, false},
		{"2025-11-1114:32:41", want, false}, // glued by a wrap
		{"nov/11/202514:32:41", want, false},
		{"  2025-11-11   14:32:41 ", want, false},
		{"14:32:41", time.Time{}, true}, // a time without a date cannot be placed
		{"2025-11-11", time.Time{}, true},
		{"2025-13-11 14:32:41", time.Time{}, true},
		{"", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := ParseTime(tc.in)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseKeyValueLines(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"right-aligned keys and crlf", "   read-ops: 1 234\r\n  write-rate: 0bps\r\n",
			map[string]string{"read-ops": "1 234", "write-rate": "0bps"}, false},
		{"blank lines and empty value", "\n a: \n\n b: x: y\n", map[string]string{"a": "", "b": "x: y"}, false},
		{"empty", "", map[string]string{}, false},
		{"routeros error", "no such item\r\n", nil, true},
		{"bad command", "bad command name monitor-trafic (line 1 column 7)\n", nil, true},
		{"detail listing is not key-value", " 0 a=1\n", nil, true},
		{"empty key", ": x\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeyValueLines(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
