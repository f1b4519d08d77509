package routeros

import (
	"os"
	"strings"
	"testing"
)

// The parse benchmarks at growing sizes show whether ParseDetail stays linear: ns/op should grow ten-fold
// from one size to the next, not a hundred-fold.

func benchmarkDetail(b *testing.B, out string) {
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDetail(out); err != nil {
			b.Fatal(err)
		}
	}
}

func narrowListing(b *testing.B, items int) string {
	raw, err := os.ReadFile("testdata/narrow-80col-path-wrap.txt")
	if err != nil {
		b.Fatal(err)
	}
	_, item, _ := strings.Cut(string(raw), "\n") // drop the legend
	return "Flags: B - BLOCK-DEVICE\n" + strings.Repeat(item, items)
}

func BenchmarkParseDetail_Items10(b *testing.B)    { benchmarkDetail(b, narrowListing(b, 10)) }
func BenchmarkParseDetail_Items100(b *testing.B)   { benchmarkDetail(b, narrowListing(b, 100)) }
func BenchmarkParseDetail_Items1000(b *testing.B)  { benchmarkDetail(b, narrowListing(b, 1000)) }
func BenchmarkParseDetail_Items10000(b *testing.B) { benchmarkDetail(b, narrowListing(b, 10000)) }

// One item wrapped over many lines, every line starting a value continuation: the worst case for the
// joining of lines.
func BenchmarkParseDetail_LongWrappedValue100k(b *testing.B) {
	benchmarkDetail(b, " 0   a=x"+strings.Repeat("\n     1 234", 100000)+"\n")
}

// Long runs of spaces between short words: the worst case for finding where a bare value ends.
func BenchmarkParseDetail_SpaceRuns100k(b *testing.B) {
	benchmarkDetail(b, " 0   a="+strings.Repeat("1"+strings.Repeat(" ", 50)+"bbbbbbbbbb", 2000)+"\n")
}

func BenchmarkParseBytes(b *testing.B) {
	for b.Loop() {
		if _, err := ParseBytes("1 099 511 627 776"); err != nil {
			b.Fatal(err)
		}
	}
}
