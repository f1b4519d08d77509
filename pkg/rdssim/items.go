package rdssim

import (
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Items as the console shows them. Field names and order follow the captures
// in docs/routeros-samples.

const timeLayout = "2006-01-02 15:04:05"

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sizeField(key string, n int64) field {
	return field{key: key, value: groupDigits(n), raw: strconv.FormatInt(n, 10)}
}

// poolItem is the pool disk, index 0: a mounted RAID array holding the
// filesystem the file disks live on.
func (s *Simulator) poolItem(st *state, free int64) item {
	p := st.Pool
	use := 0
	if p.Size > 0 {
		use = int(math.Round(float64(p.Size-free) * 100 / float64(p.Size)))
	}
	fields := []field{
		{key: "type", value: "raid"},
		{key: "slot", value: p.Name, quoted: true},
		{key: "slot-default", value: "", quoted: true},
		{key: "parent", value: "", quoted: true},
		{key: "fs-label", value: p.Label, quoted: true},
		{key: "fs-uuid", value: p.UUID, quoted: true},
		{key: "fs", value: p.FS},
		{key: "model", value: "RAID0 striped", quoted: true},
		sizeField("size", p.Size),
		sizeField("free", free),
		{key: "use", value: strconv.Itoa(use) + "%"},
		{key: "mount-point", value: p.Name, quoted: true},
		{key: "mount-filesystem", value: "yes"},
		{key: "mount-read-only", value: "no"},
		{key: "compress", value: "no"},
		{key: "sector-size", value: strconv.Itoa(sectorSize)},
		{key: "raid-type", value: "0"},
		{key: "raid-device-count", value: "1"},
		{key: "raid-max-component-size", value: "none"},
		{key: "raid-chunk-size", value: "256K"},
		{key: "raid-master", value: "none"},
		{key: "state", value: "clean", quoted: true},
		{key: "raid-uuid", value: p.RAIDUUID, quoted: true},
		{key: "nvme-tcp-export", value: "no"},
		{key: "iscsi-export", value: "no"},
		{key: "nfs-sharing", value: "no"},
		{key: "smb-sharing", value: "no"},
		{key: "media-sharing", value: "no"},
		{key: "media-interface", value: "none"},
		{key: "swap", value: "no"},
	}
	return item{index: 0, flags: "BM", fields: fields, name: p.Name, ref: &p,
		hidden: map[string]string{".id": "*0", "disabled": "no", "block-device": "yes", "mounted": "yes",
			"formatting": "no", "raid-member": "no"}}
}

// diskSize is the size of a file disk: its file's, or the last known size if
// the file has gone.
func (s *Simulator) diskSize(d *diskRecord) int64 {
	_, rel, err := s.splitPoolPath(d.FilePath)
	if err == nil {
		if info, err := os.Stat(s.hostPathRel(rel)); err == nil && info.Mode().IsRegular() {
			return info.Size()
		}
	}
	return d.Size
}

func (s *Simulator) diskItem(d *diskRecord) item {
	size := s.diskSize(d)
	p := "/" + d.FilePath
	fields := []field{
		{key: "type", value: "file"},
		{key: "slot", value: d.Slot, quoted: true},
		{key: "slot-default", value: "", quoted: true},
		{key: "parent", value: "", quoted: true},
		{key: "fs", value: "-"},
		{key: "model", value: p, quoted: true},
		sizeField("size", size),
		{key: "mount-filesystem", value: yesNo(d.MountFilesystem)},
		{key: "mount-read-only", value: yesNo(d.MountReadOnly)},
		{key: "compress", value: "no"},
		{key: "sector-size", value: strconv.Itoa(sectorSize)},
		{key: "raid-master", value: "none"},
		{key: "nvme-tcp-export", value: yesNo(d.Export)},
	}
	if d.Export {
		fields = append(fields,
			field{key: "nvme-tcp-server-port", value: strconv.Itoa(d.Port)},
			field{key: "nvme-tcp-server-nqn", value: d.NQN, quoted: true})
		if s.cfg.AllowHostName != AllowHostAbsent {
			fields = append(fields, field{key: allowHostProp, value: d.AllowHost, quoted: true})
		}
	}
	fields = append(fields,
		field{key: "iscsi-export", value: "no"},
		field{key: "nfs-sharing", value: "no"},
		field{key: "smb-sharing", value: "no"},
		field{key: "media-sharing", value: "no"},
		field{key: "media-interface", value: "none"},
		field{key: "swap", value: "no"},
		field{key: "file-path", value: p},
		field{key: "file-size", value: humanSize(size), raw: strconv.FormatInt(size, 10)},
		field{key: "file-offset", value: "0"},
	)
	flags := "B"
	if d.Export {
		flags += "t"
	}
	return item{index: d.Index, flags: flags, fields: fields, name: d.Slot, ref: d,
		hidden: map[string]string{".id": "*" + strconv.FormatInt(int64(d.Index), 16), "disabled": "no",
			"block-device": "yes", "mounted": "no", "formatting": "no", "raid-member": "no"}}
}

// diskItems lists the pool and every file disk, in index order.
func (s *Simulator) diskItems(st *state) []item {
	items := []item{s.poolItem(st, s.freeBytes(st.Pool.Size))}
	for _, d := range st.Disks {
		items = append(items, s.diskItem(d))
	}
	return items
}

// consoleName is how the console names the subvolume at rel (a path below the pool) in print, find
// and where: the leaf or the path, as Config.SubvolumeNames says.
func (s *Simulator) consoleName(rel string) string {
	if rel == "" || s.cfg.SubvolumeNames == NamePath {
		return rel
	}
	return path.Base(rel)
}

func (s *Simulator) subvolumeItem(st *state, sv *subvolumeRecord) item {
	flags := ""
	if sv.Parent != "" {
		flags += "S"
	}
	if sv.ReadOnly {
		flags += "r"
	}
	name := s.consoleName(sv.Name)
	fields := []field{
		{key: "name", value: name, quoted: true},
		{key: "fs", value: st.Pool.Label},
		{key: "parent", value: s.consoleName(sv.Parent), quoted: true},
		{key: "read-only", value: yesNo(sv.ReadOnly)},
		{key: "uuid", value: sv.UUID, quoted: true},
		{key: "creation-time", value: sv.Created.Local().Format(timeLayout)},
	}
	return item{index: sv.Index, flags: flags, fields: fields, name: name, ref: sv,
		hidden: map[string]string{".id": "*" + strconv.FormatInt(int64(sv.Index), 16), "snapshot": yesNo(sv.Parent != "")}}
}

func (s *Simulator) subvolumeItems(st *state) []item {
	var items []item
	if st.Pool.FS != "btrfs" {
		return items
	}
	for _, sv := range st.Subvolumes {
		items = append(items, s.subvolumeItem(st, sv))
	}
	return items
}

// filesystemItems is /disk/btrfs/filesystem: the pool's filesystem when it is btrfs. The manual shows
// the menu (print, set label=, find where present-devs=/devs=/label=) but not its printed fields:
// label, uuid and the devices are the ones its commands name; the rest is UNVERIFIED.
func (s *Simulator) filesystemItems(st *state) []item {
	if st.Pool.FS != "btrfs" {
		return nil
	}
	p := st.Pool
	fields := []field{
		{key: "label", value: p.Label, quoted: true},
		{key: "uuid", value: p.UUID, quoted: true},
		{key: "devs", value: p.Name},
		{key: "present-devs", value: p.Name},
		{key: "data", value: "single:1"},
		{key: "meta", value: "dup:1"},
		{key: "system", value: "dup:1"},
	}
	return []item{{index: 0, fields: fields, name: p.Label, ref: &st.Pool,
		hidden: map[string]string{".id": "*1"}}}
}

// fileEntry is one file or directory on the pool, for /file.
type fileEntry struct {
	name string // "pool/k8s/v/disk.img"
	rel  string // below the pool: "k8s/v/disk.img"
	dir  bool
}

// fileType is what /file prints in type=: "directory", or ".img file" for a
// file with an extension, as RouterOS names unknown file types.
func fileType(name string, dir bool) string {
	if dir {
		return "directory"
	}
	if ext := path.Ext(name); ext != "" && ext != name {
		return ext + " file"
	}
	return "file"
}

// fileItems walks the pool in lexical order. Names are printed bare when
// they hold only safe characters and quoted otherwise.
func (s *Simulator) fileItems(st *state) []item {
	var items []item
	root := s.poolDir()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return nil
		}
		name, rel := poolFileName(st, rel)
		items = append(items, fileItem(name, rel, d.IsDir(), info, len(items)))
		return nil
	})
	return items
}

// poolFileName is what /file calls the entry at rel below the pool's root ("." for the root): the mount
// point itself is listed first, as in the manual's /file print ("0 BtrfsDisk").
func poolFileName(st *state, rel string) (name, entryRel string) {
	if rel == "." {
		return st.Pool.Name, ""
	}
	return st.Pool.Name + "/" + rel, rel
}

// fileItem is one entry of the pool as /file shows it, numbered idx.
func fileItem(name, rel string, dir bool, info fs.FileInfo, idx int) item {
	fields := []field{
		{key: "name", value: name, quoted: !safeBare(name)},
		{key: "type", value: fileType(name, dir)},
	}
	if !dir {
		fields = append(fields, field{key: "size", value: humanSize(info.Size()), raw: strconv.FormatInt(info.Size(), 10)})
	}
	fields = append(fields, field{key: "last-modified", value: info.ModTime().Local().Format(timeLayout)})
	return item{index: idx, fields: fields, name: name,
		ref:    &fileEntry{name: name, rel: rel, dir: dir},
		hidden: map[string]string{".id": idHex(idx)}}
}

func safeBare(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:", c)
		if !ok {
			return false
		}
	}
	return true
}

// trafficSample is what monitor-traffic prints. The simulator has no I/O
// path of its own, so the counters stay at zero; their format is the real one.
func trafficSample() ([]string, []string) {
	keys := []string{"read-ops", "write-ops", "read-bytes", "write-bytes", "read-rate", "write-rate", "in-flight-ops"}
	values := []string{groupDigits(0), groupDigits(0), groupDigits(0), groupDigits(0), humanRate(0), humanRate(0), groupDigits(0)}
	return keys, values
}
