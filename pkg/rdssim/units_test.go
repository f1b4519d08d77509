package rdssim

import (
	"testing"
	"time"
)

func TestGroupDigits(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1 000"}, {4420, "4 420"}, {123456, "123 456"},
		{1099511627776, "1 099 511 627 776"}, {-1234, "-1 234"},
	}
	for _, tc := range tests {
		if got := groupDigits(tc.in); got != tc.want {
			t.Errorf("groupDigits(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {512, "512"}, {1024, "1024"}, {1536, "1.5KiB"},
		{1 << 30, "1024.0MiB"}, // RouterOS switches units only above 1024
		{1536 << 20, "1.5GiB"}, {10 << 30, "10.0GiB"}, {50 << 30, "50.0GiB"},
		{1 << 40, "1024.0GiB"}, // the captured 1 TiB disk prints file-size=1024.0GiB
		{3 << 40, "3.0TiB"},
	}
	for _, tc := range tests {
		if got := humanSize(tc.in); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHumanRate(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{{0, "0bps"}, {999, "999bps"}, {1000, "1.0kbps"}, {12_800_000, "12.8Mbps"}, {2_500_000_000, "2.5Gbps"}}
	for _, tc := range tests {
		if got := humanRate(tc.in); got != tc.want {
			t.Errorf("humanRate(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseFileSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1073741824", 1 << 30, true}, {"10G", 10 << 30, true}, {"512M", 512 << 20, true}, {"4k", 4096, true},
		{"2T", 2 << 40, true}, {"0", 0, true},
		{"", 0, false}, {"G", 0, false}, {"1.5G", 0, false}, {"10GiB", 0, false}, {"-1", 0, false},
		{"+1", 0, false}, {"1 024", 0, false}, {"99999999999999999999", 0, false}, {"9000000000T", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseFileSize(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseFileSize(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100GiB", 100 << 30, true}, {"100G", 100 << 30, true}, {"100GB", 100 << 30, true},
		{"1TiB", 1 << 40, true}, {"4096", 4096, true}, {" 2MiB ", 2 << 20, true},
		{"lots", 0, false}, {"1.5GiB", 0, false}, {"", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRoundToSector(t *testing.T) {
	for in, want := range map[int64]int64{1: 512, 512: 512, 513: 1024, 1 << 30: 1 << 30, (1 << 30) + 1: (1 << 30) + 512} {
		if got := roundToSector(in); got != want {
			t.Errorf("roundToSector(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestParseFault(t *testing.T) {
	tests := []struct {
		spec string
		want Fault
	}{
		{"latency=30ms", Fault{Kind: FaultLatency, Latency: 30 * time.Millisecond}},
		{"latency=1s@/disk add#2", Fault{Kind: FaultLatency, Latency: time.Second, Match: "/disk add", Count: 2}},
		{"disk-full", Fault{Kind: FaultDiskFull}},
		{"disk-full@/disk set#1", Fault{Kind: FaultDiskFull, Match: "/disk set", Count: 1}},
		{"drop-before=/disk add", Fault{Kind: FaultDropBefore, Match: "/disk add"}},
		{"drop-before@/disk add", Fault{Kind: FaultDropBefore, Match: "/disk add"}},
		{"drop-after=/disk add#1", Fault{Kind: FaultDropAfter, Match: "/disk add", Count: 1}},
		{"hang=/disk print", Fault{Kind: FaultHang, Match: "/disk print"}},
		{"hang", Fault{Kind: FaultHang}},
		{"exit-zero", Fault{Kind: FaultExitZero}},
		{"exit-zero#3", Fault{Kind: FaultExitZero, Count: 3}},
		{"hang=slot=a#b", Fault{Kind: FaultHang, Match: "slot=a#b"}},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseFault(tc.spec)
			if err != nil {
				t.Fatalf("ParseFault: %v", err)
			}
			if got != tc.want {
				t.Fatalf("ParseFault = %+v, want %+v", got, tc.want)
			}
			again, err := ParseFault(got.String())
			if err != nil || again != got {
				t.Errorf("round trip through %q = %+v, %v", got.String(), again, err)
			}
		})
	}
	for _, bad := range []string{"", "latency", "latency=fast", "latency=-1s", "disk-full=yes", "explode",
		"hang=", "drop-after#0", "exit-zero@", "latency=1s@"} {
		if f, err := ParseFault(bad); err == nil {
			t.Errorf("ParseFault(%q) = %+v, want an error", bad, f)
		}
	}
}
