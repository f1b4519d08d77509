package kubeenv

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestRequestKind(t *testing.T) {
	tests := []struct {
		method, url, want string
	}{
		{"GET", "/api/v1/persistentvolumes?limit=500&resourceVersion=0", "LIST persistentvolumes"},
		{"GET", "/api/v1/persistentvolumes?watch=true&resourceVersion=12", "WATCH persistentvolumes"},
		{"GET", "/api/v1/persistentvolumes/pv-1", "GET persistentvolumes"},
		{"GET", "/apis/storage.k8s.io/v1/volumeattachments?allowWatchBookmarks=true&watch=1", "WATCH volumeattachments"},
		{"PUT", "/apis/storage.k8s.io/v1/volumeattachments/va-1/status", "PUT volumeattachments/status"},
		{"POST", "/api/v1/namespaces/default/events", "POST events"},
		{"PATCH", "/api/v1/namespaces/ns1/events/ev-1", "PATCH events"},
		{"GET", "/api/v1/namespaces", "LIST namespaces"},
		{"GET", "/api/v1/namespaces/kube-system", "GET namespaces"},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/rds-csi", "GET leases"},
		{"GET", "/readyz", "GET /readyz"},
		{"GET", "/apis", "GET /apis"},
		{"GET", "/api", "GET /api"},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, tc.url, nil)
		if got := RequestKind(req); got != tc.want {
			t.Errorf("RequestKind(%s %s) = %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestRequestCounterCountsThroughARealTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := NewRequestCounter()
	client, err := rest.HTTPClientFor(c.Wrap(&rest.Config{Host: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/v1/nodes", "/api/v1/nodes", "/api/v1/nodes/n1"} {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	got := c.Counts()
	if got["LIST nodes"] != 2 || got["GET nodes"] != 1 || c.Total() != 3 {
		t.Fatalf("counts %v, want 2 LIST nodes and 1 GET nodes", got)
	}
}

func TestUniqueNameIsDNSAndUnique(t *testing.T) {
	a, b := UniqueName(t, "pv"), UniqueName(t, "pv")
	if a == b {
		t.Fatalf("two calls gave %q", a)
	}
	for _, n := range []string{a, b, DriverName(t)} {
		if len(n) > 253 || strings.Trim(n, "-.") != n || notDNS.MatchString(strings.ReplaceAll(n, ".", "")) {
			t.Errorf("%q is not a DNS-1123 name", n)
		}
	}
}

// FuzzRequestKind: any path and query name a request without panicking, with the request's
// method (or LIST/WATCH for a GET) first.
func FuzzRequestKind(f *testing.F) {
	for _, seed := range []string{
		"/api/v1/persistentvolumes?watch=true",
		"/apis/storage.k8s.io/v1/volumeattachments/va/status",
		"/api/v1/namespaces/ns/events",
		"/apis//",
		"/api",
	} {
		f.Add("GET", seed)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.Parse(target)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		got := RequestKind(&http.Request{Method: method, URL: u})
		verb, _, ok := strings.Cut(got, " ")
		if !ok {
			t.Fatalf("RequestKind(%s %q) = %q: no verb", method, target, got)
		}
		if verb != method && !(method == http.MethodGet && (verb == "LIST" || verb == "WATCH")) {
			t.Fatalf("RequestKind(%s %q) = %q: verb %q", method, target, got, verb)
		}
	})
}
