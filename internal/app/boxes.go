package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/rds-csi/rds-csi/pkg/doctor"
	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/observability"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdsflag"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// BoxesFile is the --rds-boxes-config file (YAML or JSON): more RDS boxes besides the default one, which the
// --rds-* flags define (docs/architecture.md §8). A StorageClass picks a box with rdsBox=<name>.
type BoxesFile struct {
	// DefaultBox names the box of the --rds-* flags (driver.DefaultBoxName when empty); its volumes' ids carry
	// no prefix, so the volumes made before there were boxes keep their ids.
	DefaultBox string      `json:"defaultBox,omitempty"`
	Boxes      []BoxConfig `json:"boxes"`
}

// BoxConfig is one box: the settings the --rds-* flags give the default box. The SSH session settings
// (--rds-command-timeout, --rds-max-sessions, --rds-one-command-per-exec) apply to every box.
type BoxConfig struct {
	Name        string `json:"name"`                  // [a-z0-9-], at most 32: the prefix of its volumes' ids
	Address     string `json:"address"`               // HOST[:PORT] of its SSH management
	User        string `json:"user,omitempty"`        // RouterOS user; default --rds-user
	KeyFile     string `json:"keyFile"`               // that user's SSH private key
	HostKeyFile string `json:"hostKeyFile"`           // the box's SSH host key: a known_hosts line or a public key
	BasePath    string `json:"basePath,omitempty"`    // <pool>/<directory> when a StorageClass names none; default pool/k8s
	NVMeAddress string `json:"nvmeAddress,omitempty"` // data-plane address; default the host of address
}

// LoadBoxes reads and checks a boxes file; every error names the file, the box and the field.
func LoadBoxes(path string) (*BoxesFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--rds-boxes-config: %w", err)
	}
	var f BoxesFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("--rds-boxes-config %s: %w", path, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("--rds-boxes-config %s: %w", path, err)
	}
	return &f, nil
}

func (f *BoxesFile) check() error {
	if f.DefaultBox == "" {
		f.DefaultBox = driver.DefaultBoxName
	}
	if err := driver.ValidBoxName(f.DefaultBox); err != nil {
		return fmt.Errorf("defaultBox: %w", err)
	}
	seen := map[string]bool{f.DefaultBox: true}
	for i := range f.Boxes {
		b := &f.Boxes[i]
		at := fmt.Sprintf("boxes[%d]", i)
		if b.Name != "" {
			at = fmt.Sprintf("boxes[%d] (%s)", i, b.Name)
		}
		if err := driver.ValidBoxName(b.Name); err != nil {
			return fmt.Errorf("%s: name: %w", at, err)
		}
		if seen[b.Name] {
			return fmt.Errorf("%s: the name %q is taken (by another box or the default box %q)", at, b.Name, f.DefaultBox)
		}
		seen[b.Name] = true
		for _, req := range []struct{ field, value string }{{"address", b.Address}, {"keyFile", b.KeyFile}, {"hostKeyFile", b.HostKeyFile}} {
			if req.value == "" {
				return fmt.Errorf("%s: %s is required", at, req.field)
			}
		}
		if b.BasePath == "" {
			b.BasePath = rdsflag.DefaultBasePath
		}
		if _, err := volume.ParseLocation(b.BasePath); err != nil {
			return fmt.Errorf("%s: basePath: %w", at, err)
		}
	}
	return nil
}

// openBoxes connects to every box of the file, runs its start-up checks (a missing capability stops the
// driver naming the box; a box that does not answer is served anyway, its calls Unavailable until it does)
// and returns the driver's boxes and a function that closes their clients.
func openBoxes(ctx context.Context, cfg Config, f *BoxesFile, metrics *observability.Metrics) ([]driver.Box, func(), error) {
	var clients []*rds.Client
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	var out []driver.Box
	for _, b := range f.Boxes {
		loc, _ := volume.ParseLocation(b.BasePath) // checked by LoadBoxes
		bc := cfg
		bc.RDSAddress, bc.RDSKeyFile, bc.RDSHostKeyFile, bc.RDSInsecureHostKey = b.Address, b.KeyFile, b.HostKeyFile, false
		if b.User != "" {
			bc.RDSUser = b.User
		}
		client, err := newRDSClient(bc, metrics)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("box %s: %w", b.Name, boxFlagError(err))
		}
		clients = append(clients, client)
		adapt, err := doctor.StartupCheck(ctx, client, loc)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("box %s: %w", b.Name, err)
		}
		volumes := adaptedManager(client, adapt)
		addr := b.NVMeAddress
		if addr == "" {
			addr = hostOf(b.Address)
		}
		klog.InfoS("RDS box configured", "box", b.Name, "address", b.Address, "basePath", b.BasePath, "nvmeAddress", addr)
		out = append(out, driver.Box{Name: b.Name, Volumes: volumes, Prober: client,
			DefaultLocation: loc, NVMeAddress: addr})
	}
	return out, closeAll, nil
}

// boxFlagError says which field of the boxes file an error of newRDSClient, which names flags, is about.
func boxFlagError(err error) error {
	return errors.New(strings.NewReplacer("--rds-key-file", "keyFile", "--rds-host-key", "hostKeyFile",
		"--rds-address", "address").Replace(err.Error()))
}
