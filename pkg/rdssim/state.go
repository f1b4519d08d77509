package rdssim

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const stateFile = "state.json"

// diskRecord is a file-backed disk. Its size lives in the file itself; Size
// is kept as well so that a disk whose file was removed still prints.
type diskRecord struct {
	Index           int    `json:"index"`
	Slot            string `json:"slot"`
	FilePath        string `json:"filePath"` // "pool/k8s/v/disk.img": pool-relative, no leading slash
	Size            int64  `json:"size"`
	MountFilesystem bool   `json:"mountFilesystem"`
	MountReadOnly   bool   `json:"mountReadOnly"`
	Export          bool   `json:"export"`
	Port            int    `json:"port"`
	NQN             string `json:"nqn"`
	AllowHost       string `json:"allowHost"`
}

type subvolumeRecord struct {
	Index      int       `json:"index"`
	ID         int       `json:"id"`
	Name       string    `json:"name"` // relative to the pool, e.g. "k8s/pvc-1"
	FS         string    `json:"fs"`
	Parent     string    `json:"parent"` // source subvolume of a snapshot
	ParentUUID string    `json:"parentUUID"`
	ReadOnly   bool      `json:"readOnly"`
	UUID       string    `json:"uuid"`
	Created    time.Time `json:"created"`
}

type poolRecord struct {
	Name     string `json:"name"`
	Label    string `json:"label,omitempty"` // the filesystem's label; empty in state written before labels
	FS       string `json:"fs"`
	Size     int64  `json:"size"`
	UUID     string `json:"uuid"`
	RAIDUUID string `json:"raidUUID"`
}

// state is everything the simulated box remembers across restarts. The
// files themselves live under DataDir/fs/<pool>.
type state struct {
	Version         int                `json:"version"`
	Pool            poolRecord         `json:"pool"`
	NextDiskIndex   int                `json:"nextDiskIndex"`
	NextSubvolIndex int                `json:"nextSubvolumeIndex"`
	NextSubvolID    int                `json:"nextSubvolumeID"`
	Disks           []*diskRecord      `json:"disks"`
	Subvolumes      []*subvolumeRecord `json:"subvolumes"`
}

func (st *state) clone() *state {
	c := *st
	c.Disks = make([]*diskRecord, len(st.Disks))
	for i, d := range st.Disks {
		dc := *d
		c.Disks[i] = &dc
	}
	c.Subvolumes = make([]*subvolumeRecord, len(st.Subvolumes))
	for i, s := range st.Subvolumes {
		sc := *s
		c.Subvolumes[i] = &sc
	}
	return &c
}

func (st *state) diskBySlot(slot string) *diskRecord {
	for _, d := range st.Disks {
		if d.Slot == slot {
			return d
		}
	}
	return nil
}

func (st *state) subvolume(name string) *subvolumeRecord {
	for _, s := range st.Subvolumes {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// readOnlyAt returns the read-only subvolume that contains the pool-relative
// path rel (or is rel itself), if any.
func (st *state) readOnlyAt(rel string) *subvolumeRecord {
	for _, s := range st.Subvolumes {
		if s.ReadOnly && within(rel, s.Name) {
			return s
		}
	}
	return nil
}

// within reports whether rel is dir or lies below it.
func within(rel, dir string) bool {
	return rel == dir || (len(rel) > len(dir) && rel[len(dir)] == '/' && rel[:len(dir)] == dir)
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newRAIDUUID has the shape of the md array ids RouterOS prints
// (eadca0af-ecff031c-239758ad-951a47de).
func newRAIDUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return fmt.Sprintf("%x-%x-%x-%x", b[0:4], b[4:8], b[8:12], b[12:16])
}

// loadState reads DataDir/state.json, or makes a fresh state for a new data
// directory. The pool's name and filesystem are fixed at creation: the files
// on disk are laid out for them.
func loadState(dir string, cfg Config) (*state, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		name := orDefault(cfg.PoolName, defaultPoolName)
		return &state{
			Version: 1,
			Pool: poolRecord{Name: name, Label: orDefault(cfg.PoolLabel, defaultLabel(name)), FS: orDefault(cfg.PoolFS, "btrfs"),
				Size: orDefaultSize(cfg.PoolSize), UUID: newUUID(), RAIDUUID: newRAIDUUID()},
			NextDiskIndex: 1, NextSubvolIndex: 0, NextSubvolID: 256,
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read simulator state: %w", err)
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("%s has version %d; this simulator reads version 1", filepath.Join(dir, stateFile), st.Version)
	}
	if cfg.PoolName != "" && cfg.PoolName != st.Pool.Name {
		return nil, fmt.Errorf("data directory %s holds pool %q, not %q: use another --data-dir or the same pool name", dir, st.Pool.Name, cfg.PoolName)
	}
	if cfg.PoolFS != "" && cfg.PoolFS != st.Pool.FS {
		return nil, fmt.Errorf("data directory %s holds a %s pool, not %s: use another --data-dir or the same pool filesystem", dir, st.Pool.FS, cfg.PoolFS)
	}
	if st.Pool.Label == "" {
		st.Pool.Label = orDefault(cfg.PoolLabel, defaultLabel(st.Pool.Name))
	}
	if cfg.PoolLabel != "" && cfg.PoolLabel != st.Pool.Label {
		return nil, fmt.Errorf("data directory %s holds a pool labelled %q, not %q: use another --data-dir or the same pool label", dir, st.Pool.Label, cfg.PoolLabel)
	}
	if cfg.PoolSize > 0 {
		st.Pool.Size = cfg.PoolSize
	}
	if st.Pool.Size <= 0 {
		st.Pool.Size = defaultPoolSize
	}
	return &st, nil
}

// defaultLabel is the label RouterOS gives a disk's filesystem when it formats it: "<disk>-fs" (MikroTik
// manual, "Btrfs": "by default it is automatically labelled <disk-name-1>-fs after the format").
func defaultLabel(disk string) string { return disk + "-fs" }

// save writes the state atomically: a temporary file of a fixed name (persist holds saveMu, so there is one
// writer), then a rename, so that a simulator killed mid-write leaves the old state or the new one, never a
// torn file. There is no fsync: a killed process loses nothing the kernel already has, and only a crash of
// the whole machine could, which a simulated box need not survive. Two fsyncs per exec were half of a
// create's time in the simulator (issue 11: "a simulator that is never the bottleneck").
func (st *state) save(dir string) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
