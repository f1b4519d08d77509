package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// A paged listing (ListVolumes, ControllerListVolumeHealth) is a walk: its first page reads every disk once,
// and the later pages are cut from that one read. Reading all disks for every page made a walk over 2,000
// volumes in pages of 100 cost 21 full listings (11-16 s). The RouterOS CLI has no way to read only a part
// of a listing in order, so one read per walk is the least a walk can cost.
//
// A page token is "<walk>/<first volume id of the page>". The walk is the listing as it was when the walk
// began: volumes created after it are not in it, volumes deleted since still are; every volume that exists
// throughout the walk appears exactly once, in id order. When the walk is no longer remembered (the
// controller restarted, another replica answers, or it sat idle past walkIdle), the page is cut from a
// fresh read at the same id, which keeps the same promise.

const (
	// maxWalks bounds the walks remembered at once; the least recently used is forgotten first.
	maxWalks = 16
	// walkIdle is how long a walk is remembered after its last page.
	walkIdle = 2 * time.Minute
)

// ErrBadToken is returned for a page token this driver did not give out. The CSI spec wants Aborted for it (list again).
var ErrBadToken = errors.New("page token not given out by this driver")

type walk struct {
	vols []Volume
	used time.Time
}

type walks struct {
	mu  sync.Mutex
	now func() time.Time
	all map[string]*walk
}

func (w *walks) get(id string) []Volume {
	w.mu.Lock()
	defer w.mu.Unlock()
	wk := w.all[id]
	if wk == nil || w.now().Sub(wk.used) > walkIdle {
		delete(w.all, id)
		return nil
	}
	wk.used = w.now()
	return wk.vols
}

func (w *walks) put(vols []Volume) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.all == nil {
		w.all = map[string]*walk{}
	}
	if w.now == nil {
		w.now = time.Now
	}
	for len(w.all) >= maxWalks {
		oldest := ""
		for k, wk := range w.all {
			if oldest == "" || wk.used.Before(w.all[oldest].used) {
				oldest = k
			}
		}
		delete(w.all, oldest)
	}
	w.all[id] = &walk{vols: vols, used: w.now()}
	return id
}

func (w *walks) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.all, id)
}

// Page returns up to maxEntries volumes (0: all the rest) in id order, starting where token says ("": at the
// beginning), and the token of the next page ("" after the last). A token this driver never gave out is
// ErrBadToken.
func (m *Manager) Page(ctx context.Context, token string, maxEntries int) ([]Volume, string, error) {
	if maxEntries < 0 {
		return nil, "", fmt.Errorf("max entries %d must not be negative: %w", maxEntries, rds.ErrInvalid)
	}
	walkID, start, err := parseToken(token)
	if err != nil {
		return nil, "", err
	}
	var vols []Volume
	if walkID != "" {
		vols = m.walks.get(walkID)
	}
	if vols == nil {
		if vols, err = m.List(ctx); err != nil {
			return nil, "", err
		}
		// A new walk, or a fresh read for a forgotten one: its next pages come from this read.
		walkID = m.walks.put(vols)
	}
	rest := vols[sort.Search(len(vols), func(i int) bool { return vols[i].ID >= start }):]
	if maxEntries == 0 || maxEntries >= len(rest) {
		m.walks.forget(walkID)
		return rest, "", nil
	}
	return rest[:maxEntries], walkID + "/" + rest[maxEntries].ID, nil
}

func parseToken(token string) (walkID, start string, err error) {
	if token == "" {
		return "", "", nil
	}
	walkID, start, ok := strings.Cut(token, "/")
	if !ok || len(walkID) != 16 || strings.Trim(walkID, "0123456789abcdef") != "" || rds.ValidName(start) != nil {
		return "", "", fmt.Errorf("page token %q: %w", token, ErrBadToken)
	}
	return walkID, start, nil
}
