package kube

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metric names the tests read; the README's table documents them.
const (
	connectionsActive    = "rds_csi_nvme_connections_active"
	nodeAttachments      = "rds_csi_attachments"
	migrationsInProgress = "rds_csi_migrations_in_progress"
	migrationsOverWindow = "rds_csi_migrations_over_window"
	controllerLeader     = "rds_csi_controller_leader"
)

var (
	fsRWO   = capability(false, csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	blockMN = capability(true, csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
)

func capability(block bool, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}}
	}
	return c
}

// scrape fetches /metrics over HTTP, as Prometheus does, and parses the exposition.
func (p *controllerProcess) scrape() map[string]*dto.MetricFamily {
	p.tb.Helper()
	families, err := scrapeURL("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		p.tb.Fatalf("scraping %s: %v", p.name, err)
	}
	return families
}

func scrapeURL(url string) (map[string]*dto.MetricFamily, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

func gaugeIn(families map[string]*dto.MetricFamily, name string) (float64, error) {
	mf, ok := families[name]
	if !ok || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
		return 0, fmt.Errorf("no single gauge %s in the scrape", name)
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), nil
}

// gauges reads several gauges from one scrape, so that they describe the same instant.
func (p *controllerProcess) gauges(names ...string) map[string]float64 {
	p.tb.Helper()
	families := p.scrape()
	out := map[string]float64{}
	for _, n := range names {
		v, err := gaugeIn(families, n)
		if err != nil {
			p.tb.Fatalf("%s: %v", p.name, err)
		}
		out[n] = v
	}
	return out
}

// waitGauges polls /metrics until every named gauge has its wanted value.
func (p *controllerProcess) waitGauges(want map[string]float64) {
	p.tb.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	var last map[string]float64
	p.eventually(fmt.Sprintf("gauges of %s to be %v", p.name, want), func() bool {
		last = p.gauges(names...)
		for n, v := range want {
			if last[n] != v {
				return false
			}
		}
		return true
	})
}

// createVolume creates a 1 GiB volume on the RDS through the process's CSI socket.
func (p *controllerProcess) createVolume(name string, c *csi.VolumeCapability) *csi.Volume {
	p.tb.Helper()
	resp, err := p.controller.CreateVolume(rpc(p.tb), &csi.CreateVolumeRequest{Name: name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}, VolumeCapabilities: []*csi.VolumeCapability{c}})
	if err != nil {
		p.tb.Fatalf("CreateVolume %s on %s: %v", name, p.name, err)
	}
	return resp.GetVolume()
}

// publish is the external-attacher's ControllerPublishVolume.
func (p *controllerProcess) publish(v *csi.Volume, node string, c *csi.VolumeCapability) (*csi.ControllerPublishVolumeResponse, error) {
	return p.controller.ControllerPublishVolume(rpc(p.tb), &csi.ControllerPublishVolumeRequest{
		VolumeId: v.GetVolumeId(), NodeId: node, VolumeCapability: c, VolumeContext: v.GetVolumeContext()})
}

func (p *controllerProcess) mustPublish(v *csi.Volume, node string, c *csi.VolumeCapability) {
	p.tb.Helper()
	resp, err := p.publish(v, node, c)
	if err != nil {
		p.tb.Fatalf("publishing %s to %s through %s: %v", v.GetVolumeId(), node, p.name, err)
	}
	if resp.GetPublishContext()["nqn"] == "" {
		p.tb.Errorf("publish context of %s has no NQN: %v", v.GetVolumeId(), resp.GetPublishContext())
	}
}

func (p *controllerProcess) mustUnpublish(v *csi.Volume, node string) {
	p.tb.Helper()
	_, err := p.controller.ControllerUnpublishVolume(rpc(p.tb), &csi.ControllerUnpublishVolumeRequest{
		VolumeId: v.GetVolumeId(), NodeId: node})
	if err != nil {
		p.tb.Fatalf("unpublishing %s from %s through %s: %v", v.GetVolumeId(), node, p.name, err)
	}
}

// wantRefused publishes and expects the error code, with every one of mentions in the message.
func (p *controllerProcess) wantRefused(v *csi.Volume, node string, c *csi.VolumeCapability, code codes.Code, mentions ...string) {
	p.tb.Helper()
	_, err := p.publish(v, node, c)
	if status.Code(err) != code {
		p.tb.Fatalf("publishing %s to %s through %s: %v, want %s", v.GetVolumeId(), node, p.name, err, code)
	}
	msg := status.Convert(err).Message()
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			p.tb.Errorf("publishing %s to %s: message %q does not name %s", v.GetVolumeId(), node, msg, m)
		}
	}
}
