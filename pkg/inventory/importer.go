package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Disks is what import needs of the RDS: one read of disks (*rds.Client has it).
type Disks interface {
	Disks(ctx context.Context, where ...rds.Filter) ([]rds.Disk, error)
}

// ImportRequest names a disk to import and how its PersistentVolume should look.
type ImportRequest struct {
	// Box is the RDS box the disk is on ("" for the default box): the PV's volumeHandle is "<box>/<slot>".
	Box      string
	Slot     string // the disk's slot, or
	FilePath string // its backing file, as /file print names it
	Driver   string
	// NVMeAddress is the data-plane address the node connects to (the controller's --nvme-address).
	NVMeAddress   string
	PVName        string // default: the slot
	FSType        string // "" (the node's default, ext4), ext4 or xfs; Filesystem mode only
	VolumeMode    corev1.PersistentVolumeMode
	AccessMode    corev1.PersistentVolumeAccessMode
	ReclaimPolicy corev1.PersistentVolumeReclaimPolicy
	StorageClass  string
	PVCNamespace  string // with PVCName: the PV is reserved for that claim, and a PVC is printed too
	PVCName       string
}

// CheckStatus is the outcome of one import check.
type CheckStatus string

const (
	CheckOK      CheckStatus = "ok"
	CheckFail    CheckStatus = "FAIL"
	CheckUnknown CheckStatus = "unknown"
)

// Check is one thing import verified about the disk before writing a manifest.
type Check struct {
	Name   string
	Status CheckStatus
	Detail string
}

// Imported is import's answer: the checks, and the manifest when none failed.
type Imported struct {
	Checks   []Check
	Volume   *volume.Volume
	Manifest []byte
}

// ErrCheckFailed is returned when a check failed: the disk cannot be imported as it is.
var ErrCheckFailed = errors.New("the disk cannot be imported as it is")

// Import reads the disk, checks that the driver can serve it as it is (a file disk exported with the NQN the
// driver derives from its slot, in the driver's layout, not mounted by the RDS itself, named by no PV of the
// cluster) and returns a static PV manifest for it. It changes nothing on the RDS or in the cluster; what to
// change by hand is in the failed check's detail. cluster may be None: that check is then unknown.
func Import(ctx context.Context, d Disks, c Cluster, req ImportRequest) (*Imported, error) {
	if err := req.valid(); err != nil {
		return nil, err
	}
	disk, err := findDisk(ctx, d, req)
	if err != nil {
		return nil, err
	}
	res := &Imported{}
	add := func(name string, st CheckStatus, detail string) {
		res.Checks = append(res.Checks, Check{name, st, detail})
	}
	slot := disk.Slot
	set := fmt.Sprintf(`/disk set [find slot="%s"]`, slot)
	add("disk", CheckOK, fmt.Sprintf("slot %s, file %s, %s", slot, strings.TrimPrefix(disk.FilePath, "/"), HumanSize(disk.SizeBytes)))
	if disk.Type != "" && disk.Type != "file" {
		add("file-disk", CheckFail, fmt.Sprintf("the disk is of type %q: only file disks are volumes of this driver", disk.Type))
	}
	want := nvme.VolumeNQN(slot)
	if !disk.Exported {
		add("exported", CheckFail, fmt.Sprintf(`nvme-tcp-export is not yes; on the RDS run: %s nvme-tcp-export=yes nvme-tcp-server-nqn="%s"`, set, want))
	} else {
		add("exported", CheckOK, "nvme-tcp-export=yes on port "+strconv.Itoa(portOf(disk)))
	}
	switch {
	case disk.NQN == "" && !disk.Exported:
		add("nqn", CheckUnknown, "the RDS prints no NQN for a disk that is not exported; export it with the NQN above")
	case disk.NQN != want:
		add("nqn", CheckFail, fmt.Sprintf("exported as %q, but the node connects to %q (the driver derives the NQN from the "+
			"slot, and unstage disconnects by it). First disconnect every host using the old NQN, then on the RDS run: %s "+
			`nvme-tcp-server-nqn="%s"`, disk.NQN, want, set, want))
	default:
		add("nqn", CheckOK, want)
	}
	if disk.MountFilesystem || disk.MountPoint != "" {
		add("not-mounted-on-rds", CheckFail, "the RDS mounts the disk's filesystem itself (mount-filesystem=yes): it is in use "+
			"there; stop what uses it, then on the RDS run: "+set+" mount-filesystem=no")
	} else {
		add("not-mounted-on-rds", CheckOK, "mount-filesystem=no")
	}
	if err := rds.ValidName(slot); err != nil {
		add("name", CheckFail, fmt.Sprintf("the slot is not a volume id the driver accepts (%v): the driver cannot serve "+
			"this disk under it; copy its data into a new volume of the driver", err))
	} else if err := volume.ReservedName(slot); err != nil {
		add("name", CheckFail, err.Error())
	}
	v, err := volume.Recognise(disk)
	switch {
	case err == nil:
		res.Volume = v
		add("layout", CheckOK, fmt.Sprintf("%s layout in base path %s", v.Layout, v.Location))
	case disk.NQN == want:
		add("layout", CheckFail, fmt.Sprintf("%v; the driver finds a volume's file at <pool>/<dir>/%s.img (flat, as the older "+
			"driver made them) or <pool>/<dir>/%s/disk.img, and reads it again on every operation (publish, expand, delete)", err, slot, slot))
	}
	if c == nil {
		add("no-pv", CheckUnknown, "no cluster given: make sure no PersistentVolume has volumeHandle "+slot)
	} else if pv, err := PVHolding(ctx, c, slot); err != nil {
		return nil, err
	} else if pv != "" {
		add("no-pv", CheckFail, fmt.Sprintf("PersistentVolume %s already has volumeHandle %s: it is imported already", pv, slot))
	} else {
		add("no-pv", CheckOK, "no PersistentVolume of "+req.Driver+" has volumeHandle "+slot)
	}
	add("no-host-connected", CheckUnknown, "RouterOS shows no list of the NVMe/TCP hosts connected to a disk (none is "+
		"documented): make sure no machine has "+want+" connected (`nvme list-subsys` on each node)")
	for _, ch := range res.Checks {
		if ch.Status == CheckFail {
			return res, fmt.Errorf("disk %s: check %s failed: %w", slot, ch.Name, ErrCheckFailed)
		}
	}
	res.Manifest, err = manifest(req, v)
	return res, err
}

func (r *ImportRequest) valid() error {
	if (r.Slot == "") == (r.FilePath == "") {
		return fmt.Errorf("name the disk by --disk SLOT or by --file PATH (one of them): %w", rds.ErrInvalid)
	}
	if r.Slot != "" {
		if err := rds.ValidName(r.Slot); err != nil {
			return err
		}
	} else if err := rds.ValidPath(strings.TrimPrefix(r.FilePath, "/")); err != nil {
		return err
	}
	if r.NVMeAddress == "" {
		return fmt.Errorf("no NVMe/TCP address for the node: give --nvme-address: %w", rds.ErrInvalid)
	}
	if r.PVName != "" {
		if errs := validation.IsDNS1123Subdomain(r.PVName); len(errs) > 0 {
			return fmt.Errorf("PV name %q: %s: %w", r.PVName, strings.Join(errs, "; "), rds.ErrInvalid)
		}
	}
	switch r.VolumeMode {
	case corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeBlock:
	default:
		return fmt.Errorf("volume mode %q: use Filesystem or Block: %w", r.VolumeMode, rds.ErrInvalid)
	}
	switch r.FSType {
	case "", "ext4", "xfs":
	default:
		return fmt.Errorf("fs type %q: use ext4 or xfs: %w", r.FSType, rds.ErrInvalid)
	}
	if r.FSType != "" && r.VolumeMode == corev1.PersistentVolumeBlock {
		return fmt.Errorf("a Block volume has no filesystem: drop --fs-type: %w", rds.ErrInvalid)
	}
	switch r.AccessMode {
	case corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadOnlyMany:
	case corev1.ReadWriteMany:
		if r.VolumeMode != corev1.PersistentVolumeBlock {
			return fmt.Errorf("ReadWriteMany is for Block volumes only (live migration), never a filesystem: %w", rds.ErrInvalid)
		}
	default:
		return fmt.Errorf("access mode %q: use ReadWriteOnce, ReadWriteOncePod, ReadOnlyMany or (Block) ReadWriteMany: %w", r.AccessMode, rds.ErrInvalid)
	}
	switch r.ReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain, corev1.PersistentVolumeReclaimDelete:
	default:
		return fmt.Errorf("reclaim policy %q: use Retain or Delete: %w", r.ReclaimPolicy, rds.ErrInvalid)
	}
	if (r.PVCName == "") != (r.PVCNamespace == "") {
		return fmt.Errorf("give both --pvc-namespace and --pvc-name, or neither: %w", rds.ErrInvalid)
	}
	return nil
}

// findDisk reads the disk by slot, or by file path (the listing is filtered by regex, then exactly here).
func findDisk(ctx context.Context, d Disks, req ImportRequest) (*rds.Disk, error) {
	if req.Slot != "" {
		disks, err := d.Disks(ctx, rds.Eq("slot", req.Slot))
		if err != nil {
			return nil, err
		}
		if len(disks) == 0 {
			return nil, fmt.Errorf("no disk with slot %q on the RDS: %w", req.Slot, volume.ErrNotFound)
		}
		return &disks[0], nil
	}
	p := strings.TrimPrefix(req.FilePath, "/")
	disks, err := d.Disks(ctx, rds.Match("file-path", "^/*"+strings.ReplaceAll(p, ".", `\.`)))
	if err != nil {
		return nil, err
	}
	var found []*rds.Disk
	for i := range disks {
		if strings.TrimPrefix(disks[i].FilePath, "/") == p {
			found = append(found, &disks[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no disk uses the file %s: add one first (README, \"Import an existing disk\"): %w", p, volume.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d disks use the file %s: %w", len(found), p, rds.ErrInvalid)
}

func portOf(d *rds.Disk) int {
	if d.Port == 0 {
		return rds.DefaultPort
	}
	return d.Port
}

// manifest writes the static PV (and, with a claim, its PVC) as YAML documents.
func manifest(req ImportRequest, v *volume.Volume) ([]byte, error) {
	name := req.PVName
	if name == "" {
		name = v.ID
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return nil, fmt.Errorf("the slot %q is not a valid PV name (%s): give --pv-name: %w", name, strings.Join(errs, "; "), rds.ErrInvalid)
		}
	}
	size := *resource.NewQuantity(v.SizeBytes, resource.BinarySI)
	port := v.Port
	if port == 0 {
		port = rds.DefaultPort
	}
	mode := req.VolumeMode
	pv := &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": req.Driver}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{req.AccessMode},
			PersistentVolumeReclaimPolicy: req.ReclaimPolicy,
			StorageClassName:              req.StorageClass,
			VolumeMode:                    &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: req.Driver, VolumeHandle: driver.JoinID(req.Box, v.ID), FSType: req.FSType,
				VolumeAttributes: map[string]string{
					nvme.VolumeContextAddress: req.NVMeAddress,
					nvme.VolumeContextPort:    strconv.Itoa(port),
					nvme.VolumeContextNQN:     v.NQN,
					"basePath":                v.Location.String(),
				},
			}},
		},
	}
	docs := []runtime.Object{pv}
	if req.PVCName != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: req.PVCNamespace, Name: req.PVCName}
		sc := req.StorageClass
		docs = append(docs, &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Namespace: req.PVCNamespace, Name: req.PVCName},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{req.AccessMode}, StorageClassName: &sc, VolumeMode: &mode,
				VolumeName: name, Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		})
	}
	var out []byte
	for i, o := range docs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		delete(u, "status")
		if md, ok := u["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		b, err := yaml.Marshal(u)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
