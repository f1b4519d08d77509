package volume

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// Where snapshots live. Only command forms MikroTik's manual ("Snapshots") shows are used: the container is
// made as a subvolume of its own (`add name=Snapshots fs=…`), and each snapshot directly inside it
// (`add read-only=yes parent=Documents fs=… name=Snapshots/Documents-22012025`), so no add ever depends on
// the RDS making missing parent directories (UNVERIFIED; rdssim SubvolumeAddParents):
//
//	<dir>-snapshots.<h>/<snapshot id>.<source id>.<bytes>.<length of source id>
//
// <dir>-snapshots.<h> is the base path's container, a subvolume beside <dir> (so its parent exists whenever
// <dir> does); <h> is the first 8 hex digits of sha256("<pool>/<dir>"), which makes its leaf differ from every
// other base path's container, on this pool or another, even when their last directories share a name. A
// snapshot's leaf is unique because it starts with the snapshot id, and carries what must be recoverable from
// the RDS alone: the source volume and its exact size at snapshot time. The size is encoded rather than read
// from the snapshot's disk.img because /file print shows sizes rounded ("10.0GiB"). The length of the source
// id makes the leaf decodable although ids may hold '.' themselves. Volume ids of either form are refused
// (ReservedName), so no volume's leaf can equal a container's or a snapshot's.
//
// Snapshots of the first layout, <dir>-snapshots/<source id>/<bytes>/<snapshot id> (made with missing
// parents), stay readable, listable, restorable and deletable; their id is still the snapshot id.

const (
	containerHashLen = 8
	containerMark    = snapshotsSuffix + "."
)

// containerHash is the part of a container's leaf that tells base paths apart.
func containerHash(loc Location) string {
	sum := sha256.Sum256([]byte(loc.String()))
	return hex.EncodeToString(sum[:])[:containerHashLen]
}

// SnapshotsContainer is the subvolume that holds the snapshots of volumes in loc, as a path below the pool's
// root (what `add name=` takes).
func SnapshotsContainer(loc Location) string { return loc.Dir + containerMark + containerHash(loc) }

// containerLeafOK checks the container's leaf is a name the RDS takes.
func containerLeafOK(loc Location) error {
	leaf := SnapshotsContainer(loc)
	if i := strings.LastIndex(leaf, "/"); i >= 0 {
		leaf = leaf[i+1:]
	}
	if err := rds.ValidPath(leaf); err != nil {
		return fmt.Errorf("base path %s: its snapshots' subvolume would be named %q: %w", loc, leaf, err)
	}
	return nil
}

// parseContainer recognises leaf as the container of the base path whose directory is parent/<name> on pool
// (parent "" for a directory at the pool's root): the hash must be that base path's.
func parseContainer(pool, parent, leaf string) (Location, bool) {
	rest, h, ok := cutLast(leaf)
	if !ok || len(h) != containerHashLen {
		return Location{}, false
	}
	last, ok := strings.CutSuffix(rest, snapshotsSuffix)
	if !ok || last == "" {
		return Location{}, false
	}
	dir := last
	if parent != "" {
		dir = parent + "/" + last
	}
	loc, err := ParseLocation(pool + "/" + dir)
	if err != nil || loc.Pool != pool || containerHash(loc) != h {
		return Location{}, false
	}
	return loc, true
}

// snapshotLeaf is the leaf of snapshot id of source at size bytes. Longer than the RDS's names may be is
// ErrInvalid, before anything is changed.
func snapshotLeaf(id, source string, size int64) (string, error) {
	leaf := id + "." + source + "." + strconv.FormatInt(size, 10) + "." + strconv.Itoa(len(source))
	// A path segment, not a name: up to 255 characters (btrfs's limit), so that ids of the 128 characters
	// CSI allows still fit with a source id of up to about 100.
	if err := rds.ValidPath(leaf); err != nil {
		return "", fmt.Errorf("snapshot %q of volume %q: the snapshot's subvolume name %q: %w", id, source, leaf, err)
	}
	return leaf, nil
}

// parseSnapshotLeaf decodes a leaf made by snapshotLeaf: exactly one decoding exists, read from the right
// (the length of the source, the size, then the source by its length, then the id). Anything else, including
// numbers with leading zeros, is not a snapshot's leaf.
func parseSnapshotLeaf(leaf string) (id, source string, size int64, ok bool) {
	rest, lenText, ok := cutLast(leaf)
	if !ok {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(lenText)
	if err != nil || n <= 0 || strconv.Itoa(n) != lenText {
		return "", "", 0, false
	}
	rest, sizeText, ok := cutLast(rest)
	if !ok {
		return "", "", 0, false
	}
	size, err = strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size <= 0 || strconv.FormatInt(size, 10) != sizeText {
		return "", "", 0, false
	}
	if len(rest) < n+2 || rest[len(rest)-n-1] != '.' {
		return "", "", 0, false
	}
	id, source = rest[:len(rest)-n-1], rest[len(rest)-n:]
	if rds.ValidName(id) != nil || rds.ValidName(source) != nil {
		return "", "", 0, false
	}
	return id, source, size, true
}

// cutLast splits s at its last '.'.
func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// ReservedName refuses a volume id that has the form of a snapshot's or a snapshots container's leaf: such a
// volume's subvolume could not be told apart from theirs where the RDS names subvolumes by their leaf. The
// error wraps rds.ErrInvalid.
func ReservedName(id string) error {
	if _, _, _, ok := parseSnapshotLeaf(id); ok {
		return fmt.Errorf("volume name %q has the form of a snapshot's subvolume (<snapshot>.<volume>.<bytes>.<length>), "+
			"which this driver keeps for snapshots: %w", id, rds.ErrInvalid)
	}
	if rest, h, ok := cutLast(id); ok && len(h) == containerHashLen && isLowerHex(h) && strings.HasSuffix(rest, snapshotsSuffix) {
		return fmt.Errorf("volume name %q has the form of a snapshots container (<dir>-snapshots.<8 hex digits>), "+
			"which this driver keeps for snapshots: %w", id, rds.ErrInvalid)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// snapshotAtPath recognises a /file name as the directory of one of this driver's snapshots, in either
// layout, below a pool's mount point. A user's directory that merely contains "-snapshots" is not one.
func snapshotAtPath(name string) (*Snapshot, bool) {
	segs := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if s, ok := snapshotAtContainerPath(segs); ok {
		return s, true
	}
	return legacySnapshotAtPath(segs)
}

// snapshotAtContainerPath: <pool>/<parent…>/<container>/<leaf>.
func snapshotAtContainerPath(segs []string) (*Snapshot, bool) {
	n := len(segs)
	if n < 3 {
		return nil, false
	}
	loc, ok := parseContainer(segs[0], strings.Join(segs[1:n-2], "/"), segs[n-2])
	if !ok {
		return nil, false
	}
	id, source, size, ok := parseSnapshotLeaf(segs[n-1])
	if !ok {
		return nil, false
	}
	return &Snapshot{ID: id, SourceVolumeID: source, SizeBytes: size, ReadyToUse: true, Location: loc}, true
}

// legacySnapshotAtPath: <pool>/<dir>-snapshots/<source>/<bytes>/<id>, the first layout.
func legacySnapshotAtPath(segs []string) (*Snapshot, bool) {
	n := len(segs)
	if n < 5 {
		return nil, false
	}
	base, ok := strings.CutSuffix(segs[n-4], snapshotsSuffix)
	if !ok || base == "" {
		return nil, false
	}
	dir := strings.Join(append(append([]string{}, segs[1:n-4]...), base), "/")
	loc, err := ParseLocation(segs[0] + "/" + dir)
	if err != nil || loc.Pool != segs[0] {
		return nil, false
	}
	source, sizeText, id := segs[n-3], segs[n-2], segs[n-1]
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size <= 0 || strconv.FormatInt(size, 10) != sizeText {
		return nil, false
	}
	if rds.ValidName(source) != nil || rds.ValidName(id) != nil {
		return nil, false
	}
	return &Snapshot{ID: id, SourceVolumeID: source, SizeBytes: size, ReadyToUse: true, Location: loc, legacy: true}, true
}
