// Package kubeenv connects tests to the real kube-apiserver of the kube test lane.
//
// The API server and etcd are started outside the test binary by hack/kube/start.sh (or
// hack/kube/with-apiserver.sh, which make's kube lane uses), which writes a kubeconfig and
// exports its path as RDS_CSI_KUBECONFIG. Tests call RestConfig or Client; without the variable
// they skip, naming what is missing. Starting the servers once per lane rather than once per
// test binary keeps the lane at one 3-second start-up, and lets tests of a driver process that
// is killed and restarted share one cluster with it.
//
// Every object in that cluster is shared by all the tests of the run, and Nodes, PVs and
// VolumeAttachments are cluster-scoped: tests give their objects names from UniqueName and use
// a driver name of their own (DriverName), so that they never see one another's objects.
package kubeenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// EnvKubeconfig names the variable holding the kubeconfig of the test API server.
const EnvKubeconfig = "RDS_CSI_KUBECONFIG"

// SkipReason is the message of tests skipped for want of an API server.
const SkipReason = "no kube-apiserver: run hack/kube/build.sh and start.sh, or make test-kube " +
	"(" + EnvKubeconfig + " is not set)"

// Available reports whether the kube lane is configured, for benchmarks and TestMain.
func Available() bool { return os.Getenv(EnvKubeconfig) != "" }

// RestConfig returns a client configuration for the test API server, or skips tb when there is
// none. Client-side rate limiting is lifted: tests create thousands of objects, and the default
// 5 requests per second would measure the limiter rather than the API server.
func RestConfig(tb testing.TB) *rest.Config {
	tb.Helper()
	path := os.Getenv(EnvKubeconfig)
	if path == "" {
		testenv.Missing(tb, SkipReason)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		tb.Fatalf("%s=%s: %v", EnvKubeconfig, path, err)
	}
	cfg.QPS = 5000
	cfg.Burst = 10000
	cfg.UserAgent = "rds-csi-test"
	return cfg
}

// Client returns a clientset for the test API server, or skips tb when there is none.
func Client(tb testing.TB) kubernetes.Interface {
	tb.Helper()
	return NewClient(tb, RestConfig(tb))
}

// NewClient makes a clientset from cfg, failing tb on error.
func NewClient(tb testing.TB, cfg *rest.Config) kubernetes.Interface {
	tb.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// WaitReady fails tb unless the API server answers /readyz within timeout.
func WaitReady(tb testing.TB, c kubernetes.Interface, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		err := c.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("kube-apiserver not ready after %s: %v", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var runID = rand.String(5)

var nameCounter atomic.Int64

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// UniqueName returns a DNS-1123 name that no other test of any run against the same API server
// uses: prefix, the test's name and a per-run, per-call suffix.
func UniqueName(tb testing.TB, prefix string) string {
	tb.Helper()
	test := notDNS.ReplaceAllString(strings.ToLower(tb.Name()), "-")
	if len(test) > 30 {
		test = test[:30]
	}
	name := fmt.Sprintf("%s-%s-%s-%d", prefix, strings.Trim(test, "-"), runID, nameCounter.Add(1))
	return strings.Trim(name, "-")
}

// DriverName returns a CSI driver name of the test's own (at most 63 characters, as the API
// requires), so that a manager watching it sees only that test's PVs and VolumeAttachments.
func DriverName(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("t%s%d.test.rds.csi.srvlab.io", runID, nameCounter.Add(1))
}

// RequestCounter counts the HTTP requests a client sends, by kind ("LIST volumeattachments",
// "WATCH persistentvolumes", "GET nodes", "POST events", ...). Wrap a rest.Config with it to
// prove what a component costs the API server.
type RequestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter { return &RequestCounter{counts: map[string]int{}} }

// Wrap installs the counter on cfg (it chains any existing WrapTransport) and returns cfg.
func (c *RequestCounter) Wrap(cfg *rest.Config) *rest.Config {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.add(RequestKind(req))
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

func (c *RequestCounter) add(kind string) {
	c.mu.Lock()
	c.counts[kind]++
	c.mu.Unlock()
}

// Counts returns a copy of the counts so far.
func (c *RequestCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Total is the number of requests so far.
func (c *RequestCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// RequestKind names a Kubernetes API request as "VERB resource": GET on a collection is LIST,
// GET with watch=true is WATCH, and the resource is the plural name (with the subresource after a
// slash, e.g. "PUT volumeattachments/status"). Paths outside /api and /apis are returned as they
// are, e.g. "GET /readyz".
func RequestKind(req *http.Request) string {
	resource, named, ok := resourceOf(req.URL.Path)
	if !ok {
		return req.Method + " " + req.URL.Path
	}
	verb := req.Method
	if verb == http.MethodGet {
		switch {
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "WATCH"
		case !named:
			verb = "LIST"
		}
	}
	return verb + " " + resource
}

// resourceOf parses /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] and the /apis/GROUP/VERSION
// equivalent. A request on the namespaces resource itself is handled by the same rule.
func resourceOf(path string) (resource string, named, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "", false, false
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	switch len(parts) {
	case 1:
		return parts[0], false, true
	case 2:
		return parts[0], true, true
	default:
		return parts[0] + "/" + parts[2], true, true
	}
}
