// Package attachment knows which nodes hold which volume and enforces the attach rules of the
// driver: a single-node volume on one node at a time, a block MULTI_NODE_MULTI_WRITER volume on at
// most two (the source and target of a KubeVirt live migration).
//
// The state has two sources, merged per volume:
//
//   - Kubernetes (when StartKubernetes was called): every VolumeAttachment whose spec.attacher is
//     the driver and whose status.attached is true holds its PV's volume on its node. A
//     VolumeAttachment that is not attached yet, which is the case of the very one the
//     external-attacher is publishing, holds nothing, so a publish never conflicts with its own
//     VolumeAttachment. One that is being deleted but still says attached still holds: the
//     detach has not happened yet. The PVs of the driver give the volume id (volumeHandle) and
//     the mode. Because this is read from informers, a restarted controller or a standby that
//     becomes leader has the truth without writing anything of its own.
//   - This process: an Attach that succeeded is a local grant until the VolumeAttachment says
//     attached (the external-attacher writes that only after ControllerPublish returned), so a
//     second publish arriving in between sees it. A Detach removes the grant and masks the node's
//     still-attached VolumeAttachment until Kubernetes reports it detached or deleted.
//
// Without Kubernetes the local grants are the whole state (tests, demo).
package attachment

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/rds-csi/rds-csi/pkg/nodeid"
)

// DefaultMigrationWindow is how long two nodes may hold a volume before the manager warns.
const DefaultMigrationWindow = 5 * time.Minute

// Mode is how many nodes may hold a volume at once.
type Mode int

const (
	// SingleNode covers every single-node CSI access mode, filesystem or block.
	SingleNode Mode = iota + 1
	// MultiNodeBlock is a raw block volume with MULTI_NODE_MULTI_WRITER: two nodes may hold it
	// during a live migration.
	MultiNodeBlock
)

func (m Mode) String() string {
	switch m {
	case SingleNode:
		return "single-node"
	case MultiNodeBlock:
		return "multi-node-block"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// maxHolders is the number of nodes that may hold a volume in this mode.
func (m Mode) maxHolders() int {
	if m == MultiNodeBlock {
		return 2
	}
	return 1
}

// stricter returns the mode that allows fewer holders; an unknown (zero) mode loses to any other.
func stricter(a, b Mode) Mode {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case a.maxHolders() <= b.maxHolders():
		return a
	}
	return b
}

// NodeAttachment is one node holding a volume.
type NodeAttachment struct {
	Node string
	// AttachedAt is when this process granted the attach, when it saw the VolumeAttachment
	// become attached, or, for attachments found at start-up, the VolumeAttachment's creation
	// time (the closest persistent record of the attach Kubernetes keeps).
	AttachedAt time.Time
}

// Attachment is a volume and the nodes holding it.
type Attachment struct {
	VolumeID string
	Mode     Mode
	// Nodes is sorted by AttachedAt, oldest first (then by name).
	Nodes []NodeAttachment
}

// NodeNames returns the names of the holding nodes, oldest attach first.
func (a Attachment) NodeNames() []string {
	names := make([]string, len(a.Nodes))
	for i, n := range a.Nodes {
		names[i] = n.Node
	}
	return names
}

// ErrAttachedElsewhere is matched (errors.Is) by every ConflictError.
var ErrAttachedElsewhere = errors.New("volume is attached to another node")

// ConflictError is returned by Attach when the volume is held by as many other nodes as its mode
// allows. The driver maps it to FailedPrecondition.
type ConflictError struct {
	VolumeID string
	// Node is the node that asked.
	Node string
	// Holders are the nodes holding the volume, oldest attach first.
	Holders []string
	Mode    Mode
}

func (e *ConflictError) Error() string {
	if len(e.Holders) >= 2 {
		return fmt.Sprintf("volume %s is attached to nodes %s (a live migration in progress); "+
			"it cannot also be attached to node %s until one of them detaches",
			e.VolumeID, strings.Join(e.Holders, " and "), e.Node)
	}
	return fmt.Sprintf("volume %s is attached to node %s and its access mode (%s) allows one node at a time; "+
		"it can be attached to node %s only after it is detached from %s",
		e.VolumeID, strings.Join(e.Holders, ", "), e.Mode, e.Node, strings.Join(e.Holders, ", "))
}

// Is makes errors.Is(err, ErrAttachedElsewhere) true for a ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrAttachedElsewhere }

// Options configure a Manager. The zero value is usable.
type Options struct {
	// MigrationWindow is how long two nodes may hold a volume before CheckMigrations warns;
	// DefaultMigrationWindow when zero.
	MigrationWindow time.Duration
	// Clock gives the time of attaches and drives RunMigrationWatcher; the real clock when nil.
	Clock clock.WithTicker
	// Events receives attach conflicts and migration events; klog only when nil.
	Events EventSink
	// KubeSyncTimeout bounds how long StartKubernetes waits for its first lists;
	// DefaultKubeSyncTimeout when zero.
	KubeSyncTimeout time.Duration
}

// DefaultKubeSyncTimeout is long enough for a large cluster's first lists on a busy API server.
const DefaultKubeSyncTimeout = 2 * time.Minute

// Manager tracks attachments. All methods are safe for concurrent use.
type Manager struct {
	clock       clock.WithTicker
	window      time.Duration
	syncTimeout time.Duration

	mu     sync.Mutex
	events EventSink
	vols   map[string]*volumeState
	// kube is nil until StartKubernetes.
	kube *kubeIndex
	// warned holds the migrations already reported as over the window, so each is reported once.
	warned map[migrationKey]struct{}
	// nodeIDs are the CSI node ids of the nodes, by node name, when they differ from the name (the node
	// plugin reports "<name>,<host NQN>", pkg/nodeid): from Attach, Detach and the VolumeAttachments'
	// node-id annotation. PublishedNodeIDs answers with them.
	nodeIDs map[string]string
}

// volumeState is what this process knows of one volume beyond Kubernetes.
type volumeState struct {
	// mode is the strictest mode any local grant asked for.
	mode Mode
	// local are attaches granted by this process and not yet confirmed by an attached
	// VolumeAttachment.
	local map[string]time.Time
	// released are nodes detached by this process whose VolumeAttachment still says attached.
	released map[string]struct{}
}

// NewManager returns a manager with an empty in-memory state.
func NewManager(opts Options) *Manager {
	m := &Manager{
		clock:  opts.Clock,
		window: opts.MigrationWindow,
		events: opts.Events,
		vols:   map[string]*volumeState{},
		warned: map[migrationKey]struct{}{},
	}
	if m.clock == nil {
		m.clock = clock.RealClock{}
	}
	if m.window <= 0 {
		m.window = DefaultMigrationWindow
	}
	m.syncTimeout = opts.KubeSyncTimeout
	if m.syncTimeout <= 0 {
		m.syncTimeout = DefaultKubeSyncTimeout
	}
	if m.events == nil {
		m.events = LogEventSink{}
	}
	return m
}

// SetEventSink replaces the event sink, for a sink that needs the manager itself (the
// RecorderEventSink looks claims up through it).
func (m *Manager) SetEventSink(s EventSink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == nil {
		s = LogEventSink{}
	}
	m.events = s
}

// MigrationWindow returns the configured window.
func (m *Manager) MigrationWindow() time.Duration { return m.window }

// event is an event collected under the lock and sent after it is released, so that a sink may
// call back into the manager.
type event struct {
	volumeID, reason, message string
	warning                   bool
}

func (m *Manager) emit(evs []event) {
	m.mu.Lock()
	sink := m.events
	m.mu.Unlock()
	for _, e := range evs {
		sink.Event(e.volumeID, e.reason, e.message, e.warning)
	}
}

// Event reasons, stable for users who filter events.
const (
	ReasonAttachConflict          = "AttachConflict"
	ReasonMigrationStarted        = "MigrationStarted"
	ReasonMigrationEnded          = "MigrationEnded"
	ReasonMigrationWindowExceeded = "MigrationWindowExceeded"
)

// Attach records that node holds volumeID in the given mode, or returns a *ConflictError when
// the volume's mode allows no more holders. Attaching a node that already holds the volume
// succeeds without change. When the volume's PV is known its mode counts too: the stricter of
// the PV's mode and the requested one decides. node may be a CSI node id in either form of
// pkg/nodeid ("name" or "name,<host NQN>"): both are the node called name, as in
// VolumeAttachment.spec.nodeName.
func (m *Manager) Attach(volumeID, node string, mode Mode) error {
	m.noteNodeID(node)
	node = nodeid.Name(node)
	if volumeID == "" || node == "" {
		return fmt.Errorf("attach needs a volume id and a node, got volume %q node %q", volumeID, node)
	}
	if mode != SingleNode && mode != MultiNodeBlock {
		return fmt.Errorf("attach of volume %s: unknown mode %v", volumeID, mode)
	}
	var evs []event
	err := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		holders := m.holdersLocked(volumeID)
		for _, h := range holders {
			if h.Node == node {
				return nil
			}
		}
		var localMode Mode
		if st := m.vols[volumeID]; st != nil {
			localMode = st.mode
		}
		effective := stricter(stricter(mode, localMode), m.kubeModeLocked(volumeID))
		if len(holders) >= effective.maxHolders() {
			cerr := &ConflictError{VolumeID: volumeID, Node: node, Holders: nodeNames(holders), Mode: effective}
			evs = append(evs, event{volumeID, ReasonAttachConflict, cerr.Error(), true})
			return cerr
		}
		st := m.state(volumeID)
		now := m.clock.Now()
		delete(st.released, node)
		st.local[node] = now
		st.mode = stricter(st.mode, mode)
		klog.InfoS("Volume attached", "volumeID", volumeID, "node", node, "mode", effective, "holders", len(holders)+1)
		if len(holders) == 1 {
			evs = append(evs, event{volumeID, ReasonMigrationStarted, fmt.Sprintf(
				"volume %s is attached to node %s (migration source) and now also to node %s (target); "+
					"one of them should detach within %s", volumeID, holders[0].Node, node, m.window), false})
		}
		return nil
	}()
	m.emit(evs)
	return err
}

// Detach records that node (a node id in either form, as for Attach) no longer holds volumeID.
// Unknown volumes and nodes are fine
// (ControllerUnpublish is idempotent).
func (m *Manager) Detach(volumeID, node string) {
	m.noteNodeID(node)
	node = nodeid.Name(node)
	var evs []event
	func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.vols[volumeID] == nil && m.kubeHoldersLocked(volumeID) == nil {
			return
		}
		before := m.holdersLocked(volumeID)
		st := m.state(volumeID)
		delete(st.local, node)
		if _, ok := m.kubeHoldersLocked(volumeID)[node]; ok {
			st.released[node] = struct{}{}
		}
		after := m.holdersLocked(volumeID)
		if len(after) < len(before) {
			klog.InfoS("Volume detached", "volumeID", volumeID, "node", node, "holders", len(after))
		}
		if len(before) == 2 && len(after) == 1 {
			evs = append(evs, event{volumeID, ReasonMigrationEnded, fmt.Sprintf(
				"volume %s was detached from node %s and is now attached only to node %s",
				volumeID, node, after[0].Node), false})
		}
		m.gcLocked(volumeID)
	}()
	m.emit(evs)
}

// Holders returns the nodes holding volumeID, oldest attach first; nil when none.
func (m *Manager) Holders(volumeID string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return nodeNames(m.holdersLocked(volumeID))
}

// PublishedNodeIDs returns the CSI node ids of the nodes holding volumeID, oldest attach first: what
// ListVolumes and ControllerGetVolume report as published_node_ids, which the external-attacher compares
// with the node id in CSINode. A node whose id this process has not seen is reported by its name.
func (m *Manager) PublishedNodeIDs(volumeID string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := nodeNames(m.holdersLocked(volumeID))
	for i, name := range ids {
		if id, ok := m.nodeIDs[name]; ok {
			ids[i] = id
		}
	}
	return ids
}

// noteNodeID remembers the node id of a node whose id is not its bare name.
func (m *Manager) noteNodeID(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noteNodeIDLocked(id)
}

func (m *Manager) noteNodeIDLocked(id string) {
	name := nodeid.Name(id)
	if name == "" {
		return
	}
	if m.nodeIDs == nil {
		m.nodeIDs = map[string]string{}
	}
	if id == name {
		delete(m.nodeIDs, name) // the node reports its bare name (again)
		return
	}
	m.nodeIDs[name] = id
}

// ListAttachments returns a copy of the current state: every volume held by at least one node.
func (m *Manager) ListAttachments() map[string]Attachment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Attachment, len(m.vols)+m.kubeVolumeCountLocked())
	m.forEachVolumeLocked(func(volumeID string) {
		if holders := m.holdersLocked(volumeID); len(holders) > 0 {
			out[volumeID] = Attachment{VolumeID: volumeID, Mode: m.modeLocked(volumeID), Nodes: holders}
		}
	})
	return out
}

// Stats are counts derived from the current state, for metrics.
type Stats struct {
	// Volumes held by at least one node.
	Volumes int
	// NodeAttachments counts (volume, node) pairs.
	NodeAttachments int
	// Migrations counts volumes held by two or more nodes.
	Migrations int
	// MigrationsOverWindow counts migrations older than the migration window.
	MigrationsOverWindow int
}

// Stats computes the counts without copying the state; it is called on every metrics scrape.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	now := m.clock.Now()
	m.forEachVolumeLocked(func(volumeID string) {
		n, newest := m.holderCountLocked(volumeID)
		if n == 0 {
			return
		}
		s.Volumes++
		s.NodeAttachments += n
		if n >= 2 {
			s.Migrations++
			if now.Sub(newest) > m.window {
				s.MigrationsOverWindow++
			}
		}
	})
	return s
}

// holderCountLocked counts the holders and finds the newest attach time, without allocating.
func (m *Manager) holderCountLocked(volumeID string) (n int, newest time.Time) {
	m.forEachHolderLocked(volumeID, func(_ string, since time.Time) {
		n++
		if since.After(newest) {
			newest = since
		}
	})
	return n, newest
}

// forEachHolderLocked is the holder-merge rule, written once: a volume is held by the nodes whose
// VolumeAttachment says attached, minus the nodes this process released since, plus the nodes this
// process granted that Kubernetes does not confirm yet, each since its earliest known attach. fn sees
// every holder once, in no particular order.
func (m *Manager) forEachHolderLocked(volumeID string, fn func(node string, since time.Time)) {
	st := m.vols[volumeID]
	kube := m.kubeHoldersLocked(volumeID)
	for node, t := range kube {
		if st != nil {
			if _, released := st.released[node]; released {
				continue
			}
			if local, ok := st.local[node]; ok && local.Before(t) {
				t = local
			}
		}
		fn(node, t)
	}
	if st == nil {
		return
	}
	for node, t := range st.local {
		if _, confirmed := kube[node]; confirmed {
			if _, released := st.released[node]; !released {
				continue // seen above, with the earlier of the two times
			}
		}
		fn(node, t)
	}
}

// state returns the volume's local state, creating it.
func (m *Manager) state(volumeID string) *volumeState {
	st := m.vols[volumeID]
	if st == nil {
		st = &volumeState{local: map[string]time.Time{}, released: map[string]struct{}{}}
		m.vols[volumeID] = st
	}
	return st
}

// gcLocked drops a volume's local state once it says nothing.
func (m *Manager) gcLocked(volumeID string) {
	if st := m.vols[volumeID]; st != nil && len(st.local) == 0 && len(st.released) == 0 {
		delete(m.vols, volumeID)
	}
}

// holdersLocked lists the holders (forEachHolderLocked), oldest attach first.
func (m *Manager) holdersLocked(volumeID string) []NodeAttachment {
	most := len(m.kubeHoldersLocked(volumeID))
	if st := m.vols[volumeID]; st != nil {
		most += len(st.local)
	}
	if most == 0 {
		return nil
	}
	out := make([]NodeAttachment, 0, most)
	m.forEachHolderLocked(volumeID, func(node string, since time.Time) {
		out = append(out, NodeAttachment{Node: node, AttachedAt: since})
	})
	if len(out) == 0 {
		return nil
	}
	sortHolders(out)
	return out
}

// sortHolders sorts holders oldest first (then by name).
func sortHolders(out []NodeAttachment) {
	if len(out) > 1 {
		sort.Slice(out, func(i, j int) bool {
			if !out[i].AttachedAt.Equal(out[j].AttachedAt) {
				return out[i].AttachedAt.Before(out[j].AttachedAt)
			}
			return out[i].Node < out[j].Node
		})
	}
}

// modeLocked is the volume's mode: the stricter of its PV's and the local grants'.
func (m *Manager) modeLocked(volumeID string) Mode {
	var local Mode
	if st := m.vols[volumeID]; st != nil {
		local = st.mode
	}
	if mode := stricter(local, m.kubeModeLocked(volumeID)); mode != 0 {
		return mode
	}
	return SingleNode
}

// forEachVolumeLocked calls f once for every volume with local state or Kubernetes holders.
func (m *Manager) forEachVolumeLocked(f func(volumeID string)) {
	for volumeID := range m.vols {
		f(volumeID)
	}
	if m.kube != nil {
		for volumeID := range m.kube.holders {
			if _, visited := m.vols[volumeID]; !visited {
				f(volumeID)
			}
		}
	}
}

func nodeNames(holders []NodeAttachment) []string {
	if len(holders) == 0 {
		return nil
	}
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = h.Node
	}
	return names
}
