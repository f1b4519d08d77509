package rdssim

// Dialect is one combination of the simulator's switches for RouterOS behaviours that are still
// UNVERIFIED. A driver must work under each of Dialects.
type Dialect struct {
	Name            string
	SubvolumeNames  NameForm
	SubvolumeParent NameForm
	OnError         OnError
	// ExitZero makes failing execs exit with status 0 (the exit-zero fault).
	ExitZero bool
	// LabelIsMountPoint labels the pool's filesystem with the pool's name, as the manual does "for
	// simplicity" (and as the simulator did before it followed the manual).
	LabelIsMountPoint bool
}

// Dialects are the combinations that matter: the documented one (the zero Dialect), names and parent= by
// path in each combination, scripts that go on after an error with failing execs exiting 0, failing execs
// exiting 0 alone, and the simulator's former dialect (label = mount point, everything by path).
var Dialects = []Dialect{
	{Name: "documented"},
	{Name: "path-names", SubvolumeNames: NamePath, SubvolumeParent: NamePath},
	{Name: "leaf-names-path-parent", SubvolumeParent: NamePath},
	{Name: "path-names-leaf-parent", SubvolumeNames: NamePath},
	{Name: "scripts-go-on-exit-zero", OnError: OnErrorContinue, ExitZero: true},
	{Name: "exit-zero", ExitZero: true},
	{Name: "label-is-mount-point", LabelIsMountPoint: true, SubvolumeNames: NamePath, SubvolumeParent: NamePath},
}

// Apply returns cfg with the dialect's switches set (its faults added to cfg's).
func (d Dialect) Apply(cfg Config) Config {
	cfg.SubvolumeNames, cfg.SubvolumeParent, cfg.OnError = d.SubvolumeNames, d.SubvolumeParent, d.OnError
	if d.ExitZero {
		cfg.Faults = append(append([]Fault{}, cfg.Faults...), Fault{Kind: FaultExitZero})
	}
	if d.LabelIsMountPoint {
		cfg.PoolLabel = orDefault(cfg.PoolName, defaultPoolName)
	}
	return cfg
}
