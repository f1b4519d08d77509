package driver

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/observability"
)

// TestNewAttachmentsWiresTheGauges: the attachment manager NewAttachments returns is what
// rds_csi_nvme_connections_active and rds_csi_attachments count at scrape time.
func TestNewAttachmentsWiresTheGauges(t *testing.T) {
	metrics := observability.NewMetrics()
	m := NewAttachments(attachment.Options{}, metrics)
	for _, a := range []struct{ vol, node string }{{"pvc-a", "node-a"}, {"pvc-b", "node-a"}} {
		if err := m.Attach(a.vol, a.node, attachment.SingleNode); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP rds_csi_nvme_connections_active ` + observability.NVMeConnectionsActiveHelp + `
# TYPE rds_csi_nvme_connections_active gauge
rds_csi_nvme_connections_active 2
`
	if err := testutil.GatherAndCompare(metrics.Registry(), strings.NewReader(want), observability.NVMeConnectionsActiveName); err != nil {
		t.Fatal(err)
	}
	m.Detach("pvc-a", "node-a")
	if n, err := testutil.GatherAndCount(metrics.Registry(), "rds_csi_attachments"); err != nil || n != 1 {
		t.Fatalf("rds_csi_attachments: %d series, %v", n, err)
	}
	if err := testutil.GatherAndCompare(metrics.Registry(), strings.NewReader(strings.Replace(want, " 2\n", " 1\n", 1)),
		observability.NVMeConnectionsActiveName); err != nil {
		t.Fatal(err)
	}
}
