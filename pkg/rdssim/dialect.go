package rdssim

// Dialect is one combination of the simulator's switches for RouterOS behaviours that are still
// UNVERIFIED. A driver must work under each of Dialects.
type Dialect struct {
	Name            string
	SubvolumeNames  NameForm
	SubvolumeParent NameForm
	OnError         OnError
	// Parents is whether subvolume add makes missing parent directories.
	Parents Parents
	// ExitZero makes failing execs exit with status 0 (the exit-zero fault).
	ExitZero bool
	// LabelIsMountPoint labels the pool's filesystem with the pool's name, as the manual does "for
	// simplicity" (and as the simulator did before it followed the manual).
	LabelIsMountPoint bool
	// ScriptIf "no": the console has no :if, so a create reads the name first (pkg/volume).
	ScriptIf ScriptIf
}

// Dialects are the combinations that matter: the documented one (the zero Dialect), names and parent= by
// path in each combination, scripts that go on after an error with failing execs exiting 0, failing execs
// exiting 0 alone, a console without :if, subvolume add refusing to make missing parent directories (with names by leaf and by
// path: the base path must then exist before the driver starts, as README says to make it), and the simulator's former dialect (label = mount point, everything by path).
var Dialects = []Dialect{
	{Name: "documented"},
	{Name: "path-names", SubvolumeNames: NamePath, SubvolumeParent: NamePath},
	{Name: "leaf-names-path-parent", SubvolumeParent: NamePath},
	{Name: "path-names-leaf-parent", SubvolumeNames: NamePath},
	{Name: "scripts-go-on-exit-zero", OnError: OnErrorContinue, ExitZero: true},
	{Name: "exit-zero", ExitZero: true},
	{Name: "no-missing-parents", Parents: ParentsRefuse},
	{Name: "path-names-no-missing-parents", SubvolumeNames: NamePath, SubvolumeParent: NamePath, Parents: ParentsRefuse},
	{Name: "label-is-mount-point", LabelIsMountPoint: true, SubvolumeNames: NamePath, SubvolumeParent: NamePath},
	{Name: "no-script-if", ScriptIf: ScriptIfNo},
}

// Apply returns cfg with the dialect's switches set (its faults added to cfg's).
func (d Dialect) Apply(cfg Config) Config {
	cfg.SubvolumeNames, cfg.SubvolumeParent, cfg.OnError = d.SubvolumeNames, d.SubvolumeParent, d.OnError
	cfg.SubvolumeAddParents = d.Parents
	cfg.ScriptIf = d.ScriptIf
	if d.ExitZero {
		cfg.Faults = append(append([]Fault{}, cfg.Faults...), Fault{Kind: FaultExitZero})
	}
	if d.LabelIsMountPoint {
		cfg.PoolLabel = orDefault(cfg.PoolName, defaultPoolName)
	}
	return cfg
}
