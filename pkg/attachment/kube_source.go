package attachment

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/nodeid"
)

// kubeIndex is the driver's slice of the cluster as the informers last reported it. It is kept
// apart from the local grants so that restarting or failing over loses nothing: everything here
// is rebuilt from two LIST+WATCH pairs.
type kubeIndex struct {
	driver string
	// pvs are the driver's PersistentVolumes by name.
	pvs map[string]pvRecord
	// vas are the driver's VolumeAttachments (of PVs) by name.
	vas         map[string]vaRecord
	vasByPV     map[string]map[string]struct{}
	pvsByVolume map[string]map[string]struct{}
	// holders is derived from the above for every volume with an attached VolumeAttachment:
	// volume id → node → attach time.
	holders map[string]map[string]time.Time
}

type pvRecord struct {
	volumeID string
	mode     Mode
	claim    *corev1.ObjectReference
	// deleted PVs are kept while a VolumeAttachment still points at them, since the volume is
	// still attached.
	deleted bool
}

type vaRecord struct {
	pv, node string
	attached bool
	since    time.Time
}

func newKubeIndex(driver string) *kubeIndex {
	return &kubeIndex{
		driver:      driver,
		pvs:         map[string]pvRecord{},
		vas:         map[string]vaRecord{},
		vasByPV:     map[string]map[string]struct{}{},
		pvsByVolume: map[string]map[string]struct{}{},
		holders:     map[string]map[string]time.Time{},
	}
}

// StartKubernetes makes the manager follow the VolumeAttachments whose attacher is driverName and
// the PersistentVolumes of that driver, through informers (one LIST and one WATCH each, however
// many volumes there are). It returns once both caches are synced and the state reflects them.
// The informers run until ctx ends. When the caches do not sync within Options.KubeSyncTimeout
// (API server unreachable, or RBAC not granting list and watch on both resources) or ctx ends
// first, it stops the informers and returns an error; the manager must then not be used with
// Kubernetes, since its state would be incomplete. Call it at most once.
func (m *Manager) StartKubernetes(ctx context.Context, client kubernetes.Interface, driverName string) error {
	if driverName == "" {
		return fmt.Errorf("StartKubernetes needs the driver name")
	}
	m.mu.Lock()
	if m.kube != nil {
		m.mu.Unlock()
		return fmt.Errorf("StartKubernetes called twice")
	}
	m.kube = newKubeIndex(driverName)
	m.mu.Unlock()

	start := time.Now()
	// Managed fields and annotations are the bulk of these objects and are never read: dropping
	// them keeps the caches small at thousands of volumes.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripUnread))
	vaInformer := factory.Storage().V1().VolumeAttachments().Informer()
	pvInformer := factory.Core().V1().PersistentVolumes().Informer()
	vaReg, err := vaInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { m.onVolumeAttachment(obj) },
		UpdateFunc: func(_, obj interface{}) { m.onVolumeAttachment(obj) },
		DeleteFunc: func(obj interface{}) { m.onVolumeAttachmentDeleted(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching VolumeAttachments: %w", err)
	}
	pvReg, err := pvInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { m.onPersistentVolume(obj) },
		UpdateFunc: func(_, obj interface{}) { m.onPersistentVolume(obj) },
		DeleteFunc: func(obj interface{}) { m.onPersistentVolumeDeleted(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching PersistentVolumes: %w", err)
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopInformers := func() { stopOnce.Do(func() { close(stop) }) }
	factory.Start(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		stopInformers()
		factory.Shutdown()
	}()
	waitCtx, cancel := context.WithTimeout(ctx, m.syncTimeout)
	defer cancel()
	// The registrations' HasSynced, unlike the informers', also waits until our handlers have
	// processed every initially listed object.
	if !cache.WaitForCacheSync(waitCtx.Done(), vaReg.HasSynced, pvReg.HasSynced) {
		stopInformers()
		return fmt.Errorf("VolumeAttachments and PersistentVolumes not listed within %s (is the API server "+
			"reachable, and may this service account list and watch both?): %w", m.syncTimeout, context.Cause(waitCtx))
	}
	s := m.Stats()
	m.mu.Lock()
	vas, pvs := len(m.kube.vas), len(m.kube.pvs)
	m.mu.Unlock()
	klog.InfoS("Attachment state rebuilt from Kubernetes", "driver", driverName, "volumeAttachments", vas,
		"persistentVolumes", pvs, "attachedVolumes", s.Volumes, "duration", time.Since(start))
	return nil
}

// vaNodeIDAnnotation is where the external-attacher records the CSI node id it attached a
// VolumeAttachment with (csi.alpha.kubernetes.io/node-id).
const vaNodeIDAnnotation = "csi.alpha.kubernetes.io/node-id"

// stripUnread drops the parts of listed objects that the manager never reads: all annotations but the
// node id the external-attacher recorded.
func stripUnread(obj interface{}) (interface{}, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
		var keep map[string]string
		if id, ok := a.GetAnnotations()[vaNodeIDAnnotation]; ok {
			keep = map[string]string{vaNodeIDAnnotation: id}
		}
		a.SetAnnotations(keep)
	}
	return obj, nil
}

// onVolumeAttachment indexes an added or updated VolumeAttachment.
func (m *Manager) onVolumeAttachment(obj interface{}) {
	va, ok := obj.(*storagev1.VolumeAttachment)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.kube
	pv := va.Spec.Source.PersistentVolumeName
	if va.Spec.Attacher != k.driver || pv == nil || *pv == "" {
		// Not ours, or an inline volume (CSI migration of an in-tree plugin: not used with
		// this driver).
		return
	}
	if id := va.Annotations[vaNodeIDAnnotation]; id != "" && nodeid.Name(id) == va.Spec.NodeName {
		m.noteNodeIDLocked(id)
	}
	rec := vaRecord{pv: *pv, node: va.Spec.NodeName, attached: va.Status.Attached}
	prev, had := k.vas[va.Name]
	switch {
	case !rec.attached:
	case had && prev.attached:
		rec.since = prev.since
	case had:
		// Seen turning attached while we watch: now is the attach time.
		rec.since = m.clock.Now()
	default:
		// Found attached at start-up (or created attached): the creation time is the
		// closest record of the attach that survives restarts.
		rec.since = va.CreationTimestamp.Time
	}
	if had {
		m.unindexVALocked(va.Name, prev)
	}
	k.vas[va.Name] = rec
	addToSet(k.vasByPV, rec.pv, va.Name)
	m.refreshPVLocked(rec.pv)
	if had && prev.pv != rec.pv {
		m.refreshPVLocked(prev.pv)
	}
	if volumeID, ok := k.volumeOfPV(rec.pv); ok {
		if st := m.vols[volumeID]; st != nil {
			if !rec.attached {
				// Kubernetes agrees the node let go: nothing left to mask.
				delete(st.released, rec.node)
			} else if _, granted := st.local[rec.node]; granted {
				// Confirmed: Kubernetes now carries this attach; keep the earlier time.
				if t := st.local[rec.node]; t.Before(rec.since) {
					rec.since = t
					k.vas[va.Name] = rec
					m.refreshPVLocked(rec.pv)
				}
				delete(st.local, rec.node)
			}
			m.gcLocked(volumeID)
		}
	}
}

// onVolumeAttachmentDeleted forgets a VolumeAttachment. The external-attacher deletes one only
// after ControllerUnpublish succeeded, so a local grant for the same node that is older than the
// deletion is stale too (it survives only if a finalizer was removed by hand).
func (m *Manager) onVolumeAttachmentDeleted(obj interface{}) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	va, ok := obj.(*storagev1.VolumeAttachment)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.kube
	prev, had := k.vas[va.Name]
	if !had {
		return
	}
	m.unindexVALocked(va.Name, prev)
	m.refreshPVLocked(prev.pv)
	deletedAt := m.clock.Now()
	if va.DeletionTimestamp != nil {
		// Whole seconds: round up so that a grant in the same second still counts as older.
		deletedAt = va.DeletionTimestamp.Add(time.Second)
	}
	if volumeID, ok := k.volumeOfPV(prev.pv); ok {
		if st := m.vols[volumeID]; st != nil {
			delete(st.released, prev.node)
			if t, granted := st.local[prev.node]; granted && !t.After(deletedAt) {
				delete(st.local, prev.node)
			}
			m.gcLocked(volumeID)
		}
	}
	m.dropDeletedPVLocked(prev.pv)
}

func (m *Manager) unindexVALocked(name string, rec vaRecord) {
	k := m.kube
	delete(k.vas, name)
	removeFromSet(k.vasByPV, rec.pv, name)
}

// onPersistentVolume indexes an added or updated PV of the driver; a PV that is (no longer) ours
// is forgotten.
func (m *Manager) onPersistentVolume(obj interface{}) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.kube
	prev, had := k.pvs[pv.Name]
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != k.driver || pv.Spec.CSI.VolumeHandle == "" {
		if had {
			m.forgetPVLocked(pv.Name, prev)
		}
		return
	}
	rec := pvRecord{volumeID: pv.Spec.CSI.VolumeHandle, mode: modeOfPV(pv)}
	if c := pv.Spec.ClaimRef; c != nil && c.Name != "" {
		rec.claim = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: c.Namespace, Name: c.Name, UID: c.UID}
	}
	if had && prev.volumeID != rec.volumeID {
		m.forgetPVLocked(pv.Name, prev)
	}
	k.pvs[pv.Name] = rec
	addToSet(k.pvsByVolume, rec.volumeID, pv.Name)
	m.refreshPVLocked(pv.Name)
}

func (m *Manager) onPersistentVolumeDeleted(obj interface{}) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, had := m.kube.pvs[pv.Name]
	if !had {
		return
	}
	rec.deleted = true
	m.kube.pvs[pv.Name] = rec
	m.dropDeletedPVLocked(pv.Name)
}

// dropDeletedPVLocked forgets a deleted PV once no VolumeAttachment refers to it.
func (m *Manager) dropDeletedPVLocked(pvName string) {
	if rec, ok := m.kube.pvs[pvName]; ok && rec.deleted && len(m.kube.vasByPV[pvName]) == 0 {
		m.forgetPVLocked(pvName, rec)
	}
}

func (m *Manager) forgetPVLocked(pvName string, rec pvRecord) {
	k := m.kube
	delete(k.pvs, pvName)
	removeFromSet(k.pvsByVolume, rec.volumeID, pvName)
	m.refreshVolumeLocked(rec.volumeID)
}

// refreshPVLocked recomputes the holders of the volume behind a PV, if the PV is known.
func (m *Manager) refreshPVLocked(pvName string) {
	if volumeID, ok := m.kube.volumeOfPV(pvName); ok {
		m.refreshVolumeLocked(volumeID)
	}
}

// refreshVolumeLocked recomputes one volume's holders from the attached VolumeAttachments of
// its PVs (normally one PV; two PVs with the same handle both count).
func (m *Manager) refreshVolumeLocked(volumeID string) {
	k := m.kube
	var holders map[string]time.Time
	for pvName := range k.pvsByVolume[volumeID] {
		for vaName := range k.vasByPV[pvName] {
			va := k.vas[vaName]
			if !va.attached {
				continue
			}
			if holders == nil {
				holders = map[string]time.Time{}
			}
			if t, ok := holders[va.node]; !ok || va.since.Before(t) {
				holders[va.node] = va.since
			}
		}
	}
	if holders == nil {
		delete(k.holders, volumeID)
		return
	}
	k.holders[volumeID] = holders
	if mode := k.modeOf(volumeID); len(holders) > mode.maxHolders() {
		// Kubernetes is the truth even when it breaks the rules (another controller, or a
		// VolumeAttachment edited by hand): report it, never hide it.
		klog.InfoS("Volume held by more nodes than its mode allows", "volumeID", volumeID,
			"mode", mode, "nodes", len(holders))
	}
}

func (k *kubeIndex) volumeOfPV(pvName string) (string, bool) {
	rec, ok := k.pvs[pvName]
	return rec.volumeID, ok
}

// modeOf is the strictest mode of the volume's PVs; 0 when none is known.
func (k *kubeIndex) modeOf(volumeID string) Mode {
	var mode Mode
	for pvName := range k.pvsByVolume[volumeID] {
		mode = stricter(mode, k.pvs[pvName].mode)
	}
	return mode
}

func (m *Manager) kubeHoldersLocked(volumeID string) map[string]time.Time {
	if m.kube == nil {
		return nil
	}
	return m.kube.holders[volumeID]
}

func (m *Manager) kubeModeLocked(volumeID string) Mode {
	if m.kube == nil {
		return 0
	}
	return m.kube.modeOf(volumeID)
}

func (m *Manager) kubeVolumeCountLocked() int {
	if m.kube == nil {
		return 0
	}
	return len(m.kube.holders)
}

// ClaimFor returns the PersistentVolumeClaim bound to the volume's PV, for events, and the PV's
// name; ok is false when the manager knows no PV for the volume.
func (m *Manager) ClaimFor(volumeID string) (claim *corev1.ObjectReference, pvName string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kube == nil {
		return nil, "", false
	}
	for name := range m.kube.pvsByVolume[volumeID] {
		rec := m.kube.pvs[name]
		if rec.claim != nil {
			c := *rec.claim
			return &c, name, true
		}
		pvName = name
	}
	return nil, pvName, pvName != ""
}

// modeOfPV: a raw block PV with ReadWriteMany is the live-migration case; everything else the
// driver accepts is single-node.
func modeOfPV(pv *corev1.PersistentVolume) Mode {
	if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeBlock {
		return SingleNode
	}
	for _, am := range pv.Spec.AccessModes {
		if am == corev1.ReadWriteMany {
			return MultiNodeBlock
		}
	}
	return SingleNode
}

func addToSet(sets map[string]map[string]struct{}, key, member string) {
	s := sets[key]
	if s == nil {
		s = map[string]struct{}{}
		sets[key] = s
	}
	s[member] = struct{}{}
}

func removeFromSet(sets map[string]map[string]struct{}, key, member string) {
	if s := sets[key]; s != nil {
		delete(s, member)
		if len(s) == 0 {
			delete(sets, key)
		}
	}
}
