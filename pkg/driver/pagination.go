package driver

import (
	"sort"
)

// The one pagination rule of ListVolumes, ControllerListVolumeHealth and ListSnapshots: entries in id
// order, and the token is the id to start from, so a page stays correct when entries come and go between
// calls. A token that is not an id this driver gives out, or that names no entry any more, is Aborted
// (list again from the start).

// checkPageRequest checks max_entries and the token before anything is read.
func checkPageRequest(maxEntries int32, start string) error {
	if maxEntries < 0 {
		return invalid("max_entries must not be negative")
	}
	if start != "" && !validID(start) {
		return toStatus(errorOf(errStaleToken, "starting token %q is not one this driver gave out", start))
	}
	return nil
}

// onePage returns the page of items (sorted by id) that starts at start, with at most maxEntries entries
// (0: all), and the token of the next page ("" on the last). what names the items in the error.
func onePage[T any](items []T, id func(*T) string, maxEntries int32, start, what string) ([]T, string, error) {
	first := sort.Search(len(items), func(i int) bool { return id(&items[i]) >= start })
	if start != "" && (first == len(items) || id(&items[first]) != start) {
		return nil, "", toStatus(errorOf(errStaleToken, "starting token %q no longer names a %s; list again from the start", start, what))
	}
	items = items[first:]
	next := ""
	if n := int(maxEntries); n > 0 && n < len(items) {
		next = id(&items[n])
		items = items[:n]
	}
	return items, next, nil
}

func validID(id string) bool {
	_, _, err := ParseID(id)
	return err == nil
}
