package attachment

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/klog/v2"
)

// Migration is a volume held by two nodes at once: the source (older attach) and the target of
// a live migration.
type Migration struct {
	VolumeID string
	Source   NodeAttachment
	Target   NodeAttachment
	// Duration is how long both have held the volume, from the target's attach.
	Duration time.Duration
	// OverWindow is true once Duration exceeds the manager's migration window.
	OverWindow bool
}

// migrationKey identifies one migration, so that a new migration of the same volume (another
// target, or the same target attached again) is reported afresh.
type migrationKey struct {
	volumeID, target string
	since            time.Time
}

// Migrations returns the migrations in progress, sorted by volume id. A volume that Kubernetes
// reports on more than two nodes appears with its oldest holder as source and newest as target.
func (m *Manager) Migrations() []Migration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.migrationsLocked()
}

func (m *Manager) migrationsLocked() []Migration {
	now := m.clock.Now()
	var out []Migration
	m.forEachVolumeLocked(func(volumeID string) {
		holders := m.holdersLocked(volumeID)
		if len(holders) < 2 {
			return
		}
		target := holders[len(holders)-1]
		d := now.Sub(target.AttachedAt)
		out = append(out, Migration{VolumeID: volumeID, Source: holders[0], Target: target,
			Duration: d, OverWindow: d > m.window})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].VolumeID < out[j].VolumeID })
	return out
}

// CheckMigrations warns once (an event on the volume's claim, and the over-window count in
// Stats) for each migration that has outlasted the window, and returns those newly reported.
// It never detaches anything: only the workload knows whether the migration is stuck. Run it on
// the leader only (RunMigrationWatcher under LeaderElection.Run), so that two replicas do not
// both warn.
func (m *Manager) CheckMigrations() []Migration {
	var newlyOver []Migration
	var evs []event
	func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		current := map[migrationKey]struct{}{}
		for _, mig := range m.migrationsLocked() {
			if !mig.OverWindow {
				continue
			}
			key := migrationKey{mig.VolumeID, mig.Target.Node, mig.Target.AttachedAt}
			current[key] = struct{}{}
			if _, done := m.warned[key]; done {
				continue
			}
			m.warned[key] = struct{}{}
			newlyOver = append(newlyOver, mig)
			evs = append(evs, event{mig.VolumeID, ReasonMigrationWindowExceeded, fmt.Sprintf(
				"volume %s has been attached to both node %s and node %s for %s, longer than the "+
					"migration window of %s; the driver does not detach either, check the migration",
				mig.VolumeID, mig.Source.Node, mig.Target.Node, mig.Duration.Round(time.Second), m.window), true})
		}
		// Forget migrations that ended, so the map does not grow.
		for key := range m.warned {
			if _, ok := current[key]; !ok {
				delete(m.warned, key)
			}
		}
	}()
	m.emit(evs)
	return newlyOver
}

// RunMigrationWatcher calls CheckMigrations every interval until ctx ends. It blocks.
func (m *Manager) RunMigrationWatcher(ctx context.Context, interval time.Duration) {
	klog.InfoS("Watching live migrations", "window", m.window, "interval", interval)
	t := m.clock.NewTicker(interval)
	defer t.Stop()
	for {
		m.CheckMigrations()
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if ctx.Err() != nil {
				return
			}
		}
	}
}
