package doctor

import (
	"context"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// checkGuard asks whether the RDS runs the `:if` guard a create is sent in (pkg/volume create_guard.go): one
// condition that holds (nothing is called the probe's name) and one that does not (the pool disk exists).
// It changes nothing. Where guards do not run, a create reads the name first: two execs instead of one.
func (r *runner) checkGuard(ctx context.Context) Check {
	c := Check{Name: "guard"}
	ad := &r.report.Adaptation
	missing := r.id + "-missing"
	free := []rds.Absence{rds.NoDisk(rds.Eq("slot", missing)), rds.NoFile(rds.Eq("name", r.opts.Location.Pool+"/"+missing))}
	if ad.PoolFS == "btrfs" {
		free = append(free, rds.NoSubvolume(rds.Match("name", missing)))
	}
	a, b, cc, d := r.id+"-free", r.id+"-held", r.id+"-pool-free", r.id+"-pool-held"
	probe1, err1 := rds.GuardProbe(free, a, b)
	probe2, err2 := rds.GuardProbe([]rds.Absence{rds.NoDisk(rds.Eq("mount-point", r.opts.Location.Pool))}, cc, d)
	if err1 != nil || err2 != nil {
		c.Status, c.Summary = Warn, "the guard probe could not be built for this base path"
		return c
	}
	x := r.exec(ctx, &c, "if", probe1+"\n"+probe2+"\n")
	out := ""
	if x.Err == nil {
		out = x.Out.Stdout + x.Out.Stderr
	}
	switch {
	case x.Err != nil:
		c.Status, c.Summary = Warn, "the guard probe could not be run: "+x.Err.Error()
	case hasLine(out, a) && hasLine(out, d) && !hasLine(out, b) && !hasLine(out, cc):
		ad.Guards = true
		c.Status, c.Summary = Pass, "`:if ([:len [find ...]] = 0) do={...} else={...}` decides as documented: a create costs one exec"
		return c
	default:
		c.Status, c.Summary = Warn, "`:if` guards do not run as documented ("+firstLine(strings.TrimSpace(out))+"); a create reads the name first (two execs)"
	}
	c.Hint = "nothing to do: the driver adapts; please report this output to the project"
	return c
}
