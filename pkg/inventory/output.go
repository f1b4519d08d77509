package inventory

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as a table, one item a line, then its notes and a summary line.
func WriteTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "base paths: %s; the cluster has %d PVs and %d VolumeSnapshotContents of the driver\n",
		strings.Join(rep.BasePaths, ", "), rep.PVs, rep.SnapshotContents)
	if len(rep.Items) == 0 {
		fmt.Fprintln(w, "nothing found on one side only")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SIDE\tKIND\tID\tNAME/PATH\tSIZE\tDELETABLE\tNOTE")
		for _, it := range rep.Items {
			where := it.Path
			if it.Side == OnlyInCluster {
				where = it.Name
			}
			fmt.Fprintf(tw, "%s only\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Side, it.Kind, dash(it.ID), dash(where),
				HumanSize(it.SizeBytes), yesNo(it.Deletable), it.Note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	n := 0
	for _, it := range rep.Items {
		if it.Deletable {
			n++
		}
	}
	_, err := fmt.Fprintf(w, "%d on one side only, %d of them deletable with --delete\n", len(rep.Items), n)
	return err
}

// WriteJSON prints the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	if rep.Items == nil {
		rep.Items = []Item{}
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rep)
}

// HumanSize prints bytes in binary units with up to one decimal ("5 GiB", "1.5 GiB", "512 B"); "-" for 0.
func HumanSize(b int64) string {
	if b == 0 {
		return "-"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f, u := float64(b), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	s := fmt.Sprintf("%.1f", f)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[u]
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
