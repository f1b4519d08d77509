package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// apiProxy stands between one driver process and the test API server, counting the process's requests
// by kind (kubeenv.RequestKind). The process cannot be instrumented from inside, and the API server's own
// metrics do not tell one client from another, so this is how a test sees what the real binary costs
// the API server. The process talks plain HTTP to the proxy; the proxy forwards with the test's admin
// credentials. Watches stream through unbuffered.
type apiProxy struct {
	counter    *kubeenv.RequestCounter
	kubeconfig string
}

func newAPIProxy(tb testing.TB) *apiProxy {
	tb.Helper()
	counter := kubeenv.NewRequestCounter()
	cfg := counter.Wrap(kubeenv.RestConfig(tb))
	target, err := url.Parse(cfg.Host)
	if err != nil {
		tb.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the process went away (killed) in the middle of a watch
			}
			tb.Logf("API proxy: %s %s: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	})
	tb.Cleanup(func() {
		// Open watches of a killed process end with its connections; a live one's are cut here.
		srv.CloseClientConnections()
		srv.Close()
	})
	kubeconfig := filepath.Join(tb.TempDir(), "kubeconfig")
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: proxy, cluster: {server: %q}}]
users: [{name: none, user: {}}]
contexts: [{name: proxy, context: {cluster: proxy, user: none}}]
current-context: proxy
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return &apiProxy{counter: counter, kubeconfig: kubeconfig}
}
