package volume

import "testing"

// TestOurNQNsIsThePrefixAnchored: List asks RouterOS for the disks whose NQN starts with the prefix, with
// its dots escaped (a dot would match any character and list another tool's disks).
func TestOurNQNsIsThePrefixAnchored(t *testing.T) {
	if want := `^nqn\.2000-02\.com\.mikrotik:`; ourNQNs != want {
		t.Fatalf("ourNQNs = %q, want %q", ourNQNs, want)
	}
	if got := NQN("pvc-a"); got != "nqn.2000-02.com.mikrotik:pvc-a" {
		t.Fatalf("NQN(pvc-a) = %q", got)
	}
}
