// Command registrar stands in for node-driver-registrar, which the Go module proxy does not serve here
// (403), so the kube lane cannot build it. It takes the upstream sidecar's flags that the chart passes
// (--csi-address, --kubelet-registration-path, --http-endpoint, --v) and does what upstream does: it asks
// the driver for its name over CSI (GetPluginInfo), serves kubelet's plugin-registration API on
// <registration-dir>/<driver>-reg.sock, and answers /healthz with 200 only once kubelet has reported the
// registration as accepted. It is a test tool: it never runs in a real cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reg "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registration struct {
	reg.UnimplementedRegistrationServer
	name, endpoint string
	accepted       atomic.Bool
}

func (r *registration) GetInfo(context.Context, *reg.InfoRequest) (*reg.PluginInfo, error) {
	log.Printf("kubelet asked for the plugin info: %s at %s", r.name, r.endpoint)
	return &reg.PluginInfo{Type: reg.CSIPlugin, Name: r.name, Endpoint: r.endpoint, SupportedVersions: []string{"1.0.0"}}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, st *reg.RegistrationStatus) (*reg.RegistrationStatusResponse, error) {
	log.Printf("kubelet registration status: registered=%v error=%q", st.PluginRegistered, st.Error)
	r.accepted.Store(st.PluginRegistered)
	if !st.PluginRegistered {
		// Upstream exits so that the pod restarts and registers again; so does this stand-in.
		log.Fatalf("kubelet refused the registration: %s", st.Error)
	}
	return &reg.RegistrationStatusResponse{}, nil
}

// driverName asks the driver for its name, retrying while its socket is not up yet.
func driverName(ctx context.Context, addr string) (string, error) {
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := csi.NewIdentityClient(conn).GetPluginInfo(cctx, &csi.GetPluginInfoRequest{})
		cancel()
		if err == nil {
			return info.GetName(), nil
		}
		log.Printf("GetPluginInfo on %s: %v (retrying)", addr, err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func main() {
	csiAddress := flag.String("csi-address", "/csi/csi.sock", "the driver's CSI socket as this process sees it")
	kubeletPath := flag.String("kubelet-registration-path", "", "the driver's CSI socket as kubelet sees it (required)")
	httpEndpoint := flag.String("http-endpoint", "", "serve /healthz here, e.g. :9817 (empty: off)")
	regDir := flag.String("registration-dir", "/registration", "kubelet's plugins_registry directory as this process sees it")
	flag.Int("v", 0, "log verbosity (accepted for node-driver-registrar compatibility)")
	flag.Parse()
	if *kubeletPath == "" {
		log.Fatal("--kubelet-registration-path is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	name, err := driverName(ctx, *csiAddress)
	if err != nil {
		log.Fatalf("driver name: %v", err)
	}
	r := &registration{name: name, endpoint: *kubeletPath}
	if *httpEndpoint != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !r.accepted.Load() {
				http.Error(w, "kubelet has not accepted the registration", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		srv := &http.Server{Addr: *httpEndpoint, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatalf("--http-endpoint: %v", err)
			}
		}()
	}
	sock := filepath.Join(*regDir, name+"-reg.sock")
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	reg.RegisterRegistrationServer(g, r)
	go func() { <-ctx.Done(); g.Stop() }()
	log.Printf("serving kubelet's registration API on %s for %s", sock, name)
	if err := g.Serve(l); err != nil {
		log.Print(err)
	}
	os.Remove(sock)
}
