package driver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Several RDS boxes in one cluster (docs/architecture.md §8). Each box has its own RouterOS connection and
// volume manager; a StorageClass picks one with the rdsBox parameter, and every later call finds it from the
// volume or snapshot id alone (boxid.go), so the controller keeps no state about where a volume lives.

// DefaultBoxName is the default box's name when the configuration names none.
const DefaultBoxName = "default"

// paramBox is the StorageClass parameter that picks the box a volume is created on.
const paramBox = "rdsBox"

// Box is one more RDS the controller manages volumes on, besides the default one of Deps.Volumes.
type Box struct {
	Name            string // ValidBoxName; the prefix of its volumes' and snapshots' ids
	Volumes         Volumes
	Prober          Prober
	DefaultLocation volume.Location // base path when a StorageClass names none
	NVMeAddress     string          // data-plane address put into volume contexts
}

// box is a Box with the prefix its ids carry: "" for the default box.
type box struct {
	Box
	prefix string
}

func (b *box) id(name string) string { return JoinID(b.prefix, name) }

// boxes finds a box by name or from an id.
type boxes struct {
	def    *box
	byName map[string]*box
	order  []*box // the default box first, then the others by name: the order of ListVolumes
}

func newBoxes(def Box, more []Box) (*boxes, error) {
	if def.Name == "" {
		def.Name = DefaultBoxName
	}
	if err := ValidBoxName(def.Name); err != nil {
		return nil, fmt.Errorf("the default box: %w", err)
	}
	bs := &boxes{def: &box{Box: def}, byName: map[string]*box{}}
	bs.byName[def.Name] = bs.def
	sort.Slice(more, func(i, j int) bool { return more[i].Name < more[j].Name })
	bs.order = []*box{bs.def}
	for _, b := range more {
		if err := ValidBoxName(b.Name); err != nil {
			return nil, err
		}
		if bs.byName[b.Name] != nil {
			return nil, fmt.Errorf("box %q is named twice (the default box is %q)", b.Name, def.Name)
		}
		if b.Volumes == nil {
			return nil, fmt.Errorf("box %q has no connection to its RDS", b.Name)
		}
		nb := &box{Box: b, prefix: b.Name}
		bs.byName[b.Name] = nb
		bs.order = append(bs.order, nb)
	}
	return bs, nil
}

func (bs *boxes) names() string {
	var n []string
	for _, b := range bs.order {
		n = append(n, b.Name)
	}
	return strings.Join(n, ", ")
}

// byParam is the box a StorageClass's rdsBox names ("": the default box); an unknown one is InvalidArgument.
func (bs *boxes) byParam(name string) (*box, error) {
	if name == "" {
		return bs.def, nil
	}
	if b := bs.byName[name]; b != nil {
		return b, nil
	}
	return nil, invalid("StorageClass parameter %s: box %q is not in the driver's configuration (boxes: %s)", paramBox, name, bs.names())
}

// resolve is the box and the name on it of a volume or snapshot id (what names it in messages). An id this
// driver could not have given out is InvalidArgument; one of a box the configuration no longer names is
// FailedPrecondition: nothing can be said about it until the box is configured again.
func (d *Driver) resolve(id, what string) (*box, string, error) {
	if id == "" {
		return nil, "", invalid("%s id is missing", what)
	}
	prefix, name, err := ParseID(id)
	if err != nil {
		return nil, "", invalid("%s id %q is not a valid id (<name> or <box>/<name>): %v", what, id, err)
	}
	if d.boxes == nil {
		return nil, "", invalid("%s id %q: this process manages no RDS", what, id)
	}
	if prefix == "" {
		return d.boxes.def, name, nil
	}
	if prefix == d.boxes.def.Name {
		return nil, "", invalid("%s id %q names the default box %q, whose ids carry no box prefix (use %q)", what, id, prefix, name)
	}
	b := d.boxes.byName[prefix]
	if b == nil {
		return nil, "", toStatus(errorOf(errUnknownBox, "%s id %q is on box %q, which is not in the driver's configuration (boxes: %s)",
			what, id, prefix, d.boxes.names()))
	}
	return b, name, nil
}

// probe pings every box at once. ok while at least one answers, so the boxes that answer keep serving when
// another is down (that one's calls fail with Unavailable); err names every box that did not answer.
func (bs *boxes) probe(ctx context.Context) (ok bool, err error) {
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	probed := 0
	for _, b := range bs.order {
		if b.Prober == nil {
			continue
		}
		probed++
		wg.Add(1)
		go func(b *box) {
			defer wg.Done()
			if err := b.Prober.Ping(ctx); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Errorf("box %s: %w", b.Name, err))
				mu.Unlock()
			}
		}(b)
	}
	wg.Wait()
	return probed == 0 || len(failed) < probed, errors.Join(failed...)
}
