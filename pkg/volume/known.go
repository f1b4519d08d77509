package volume

import (
	"context"
	"errors"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// A delete used to read the volume first (its disk, to learn the file's real path, since volumes of the
// older public driver are flat files; its subvolume, to learn how the RDS names it), then remove it: two
// round trips. The Manager remembers both for the volumes it created or read, and a delete of such a
// volume runs the removal and its read-back alone. What is remembered only ever narrows the removal: the
// disk goes only if its NQN and file path are still the remembered ones, the subvolume only by its uuid,
// and the read-back decides. When it shows that the RDS has something else (the disk is still there, a
// step failed), the RDS's answer wins: the delete reads the volume and runs the two-exec path.

type knownVolume struct {
	filePath string
	loc      Location
	layout   Layout
	svUUID   string // the subvolume's uuid as the RDS listed it; "" if not listed
	size     int64  // the disk's size as last read back (a snapshot's guard checks it: snapshot_fast.go)
}

// remember records where volume v lives; svUUID is kept from an earlier listing when not given.
func (m *Manager) remember(v *Volume, svUUID string) {
	if svUUID == "" {
		if k, ok := m.known.Load(v.ID); ok && k.(knownVolume).filePath == v.FilePath {
			svUUID = k.(knownVolume).svUUID
		}
	}
	m.known.Store(v.ID, knownVolume{filePath: v.FilePath, loc: v.Location, layout: v.Layout, svUUID: svUUID, size: v.SizeBytes})
}

// resized keeps a remembered volume's size as its expand read it back.
func (m *Manager) resized(v *Volume) {
	if kv, ok := m.known.Load(v.ID); ok {
		if k := kv.(knownVolume); k.filePath == v.FilePath {
			k.size = v.SizeBytes
			m.known.Store(v.ID, k)
		}
	}
}

// createThenRead runs a create's steps and reads back the disk and, for the subvolume layout, the
// subvolume (its uuid, for a later delete), in one exec.
func (m *Manager) createThenRead(ctx context.Context, id string, pi poolInfo, layout Layout, steps []rds.Cmd) (*Volume, error) {
	readDisk, err := rds.PrintDisks(rds.Eq("slot", id))
	if err != nil {
		return nil, err
	}
	reads := []rds.Cmd{readDisk}
	if layout == LayoutSubvolume {
		readSV, err := listSubvolumes(id)
		if err != nil {
			return nil, err
		}
		reads = append(reads, readSV)
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	if err != nil {
		return nil, err
	}
	v, err := oneVolume(out[0], id)
	if err != nil {
		return nil, err
	}
	if layout == LayoutSubvolume {
		m.rememberListed(v, pi, out[1])
	} else {
		m.remember(v, "")
	}
	return v, nil
}

// rememberListed remembers v with its subvolume's uuid picked out of a listing. An ambiguous listing is no
// error here: nothing is remembered, and the delete reads the volume first.
func (m *Manager) rememberListed(v *Volume, pi poolInfo, listing []routeros.Item) {
	if v.Layout != LayoutSubvolume {
		m.remember(v, "")
		return
	}
	if sv, err := subvolumeIn(listing, v.Location.Pool, pi, v.SubvolumeName()); err == nil && sv != nil {
		m.remember(v, sv.UUID)
	}
}

// deleteKnown removes a remembered volume in one exec. done is false when nothing is remembered for id,
// or when the RDS's answer shows that the remembered volume is not what the RDS has: the caller then reads
// the volume and removes it as it is.
func (m *Manager) deleteKnown(ctx context.Context, id string) (done bool, err error) {
	kv, ok := m.known.Load(id)
	if !ok {
		return false, nil
	}
	k := kv.(knownVolume)
	if k.layout == LayoutSubvolume && k.svUUID == "" {
		return false, nil
	}
	steps, reads, err := knownRemoval(id, k)
	if err != nil {
		return true, err
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	switch {
	case errors.Is(err, rds.ErrUnavailable):
		return true, err // the outcome is unknown; the retry starts over
	case err != nil:
		klog.V(2).InfoS("removal of a remembered volume failed; reading it", "volumeID", id, "err", err)
		m.known.Delete(id)
		return false, nil
	}
	last := len(out) - 1
	if checkControl(out[last], k.loc.String()) != nil {
		m.known.Delete(id)
		return false, nil
	}
	for _, items := range out[:last] {
		if len(items) > 0 {
			// The disk is not the remembered one, or something stayed: read the RDS and go by its answer.
			klog.V(2).InfoS("a remembered volume is not what the RDS has; reading it", "volumeID", id)
			m.known.Delete(id)
			return false, nil
		}
	}
	m.known.Delete(id)
	klog.V(2).InfoS("deleted volume", "volumeID", id, "layout", k.layout, "file", k.filePath, "remembered", true)
	return true, nil
}

// knownRemoval is removal's script for a remembered volume: the disk guarded by its NQN and file path,
// the file, the subvolume by uuid and its directory; then the reads that must come back empty and the
// control read that must not.
func knownRemoval(id string, k knownVolume) (steps, reads []rds.Cmd, err error) {
	add := func(list *[]rds.Cmd, c rds.Cmd, e error) {
		if e != nil && err == nil {
			err = e
		}
		*list = append(*list, c)
	}
	c, e := rds.RemoveDiskIf(id, NQN(id), "^/*"+regexQuote(k.filePath))
	add(&steps, c, e)
	c, e = rds.PrintDisks(rds.Eq("slot", id))
	add(&reads, c, e)
	c, e = rds.RemoveFile(k.filePath)
	add(&steps, c, e)
	c, e = rds.PrintFiles(rds.Eq("name", k.filePath))
	add(&reads, c, e)
	if k.layout == LayoutSubvolume {
		c, e := rds.RemoveSubvolumeByUUID(k.svUUID)
		add(&steps, c, e)
		dir := subvolumeDir(k.loc.Pool, k.loc.SubvolumeName(id))
		c, e = rds.RemoveFile(dir)
		add(&steps, c, e)
		c, e = rds.PrintFiles(rds.Eq("name", dir))
		add(&reads, c, e)
	}
	c, e = controlRead(k.loc)
	add(&reads, c, e)
	return steps, reads, err
}
