package attachment

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestStartKubernetesFailsWhenTheAPIServerIsUnreachable: a controller pointed at a dead address
// must fail its start-up with a message that says what to check, not hang.
func TestStartKubernetesFailsWhenTheAPIServerIsUnreachable(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{KubeSyncTimeout: 500 * time.Millisecond})
	start := time.Now()
	err = m.StartKubernetes(context.Background(), client, "rds.csi.srvlab.io")
	if err == nil || !strings.Contains(err.Error(), "list and watch") {
		t.Fatalf("StartKubernetes against %s = %v, want a time-out error naming list and watch", addr, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s, want about the 500ms sync timeout", d)
	}
	if err := m.StartKubernetes(context.Background(), client, "rds.csi.srvlab.io"); err == nil {
		t.Fatal("a second StartKubernetes succeeded")
	}
}
