package attachment

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// EventSink receives the manager's events: attach conflicts, migrations starting, ending and
// outlasting their window. warning selects a Warning event rather than a Normal one.
type EventSink interface {
	Event(volumeID, reason, message string, warning bool)
}

// LogEventSink writes events to klog only; the default without Kubernetes.
type LogEventSink struct{}

// Event logs the event.
func (LogEventSink) Event(volumeID, reason, message string, warning bool) {
	if warning {
		klog.InfoS("Warning event", "volumeID", volumeID, "reason", reason, "message", message)
		return
	}
	klog.V(2).InfoS("Event", "volumeID", volumeID, "reason", reason, "message", message)
}

// ClaimLookup finds the objects an event about a volume belongs on. *Manager implements it from
// its PV cache, so events cost no API call beyond the event itself.
type ClaimLookup interface {
	ClaimFor(volumeID string) (claim *corev1.ObjectReference, pvName string, ok bool)
}

// RecorderEventSink records events on the PersistentVolumeClaim bound to the volume (found from
// the PV's claimRef), where users look; on the PV when it has no claim; in the log only when the
// volume has no known PV. Events are logged too.
type RecorderEventSink struct {
	Recorder record.EventRecorder
	Claims   ClaimLookup
}

// Event records the event.
func (s *RecorderEventSink) Event(volumeID, reason, message string, warning bool) {
	LogEventSink{}.Event(volumeID, reason, message, warning)
	eventType := corev1.EventTypeNormal
	if warning {
		eventType = corev1.EventTypeWarning
	}
	claim, pvName, ok := s.Claims.ClaimFor(volumeID)
	switch {
	case !ok:
		klog.V(2).InfoS("No PersistentVolume known for the event's volume; logged only", "volumeID", volumeID, "reason", reason)
	case claim != nil:
		s.Recorder.Event(claim, eventType, reason, message)
	default:
		s.Recorder.Event(&corev1.ObjectReference{Kind: "PersistentVolume", APIVersion: "v1", Name: pvName},
			eventType, reason, message)
	}
}

// NewEventRecorder starts an event broadcaster that writes to the API server through client and
// returns a recorder whose events name component as their source, and a function that flushes and
// stops the broadcaster. Create one per process and share the recorder: each broadcaster holds a
// goroutine and its own rate limits.
func NewEventRecorder(client kubernetes.Interface, component string) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartStructuredLogging(4)
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}), b.Shutdown
}
