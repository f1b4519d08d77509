package rdssim

import (
	"regexp"
	"strings"
	"testing"
)

func TestSystemResourcePrint(t *testing.T) {
	for _, tc := range []struct {
		name, version string
	}{{"default", DefaultRouterOSVersion}, {"old", "6.49.17"}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.name != "default" {
				cfg.System.Version = tc.version
			}
			c := dial(t, startSim(t, cfg))
			for _, cmd := range []string{"/system resource print", "/system/resource/print"} {
				out := mustRun(t, c, cmd)
				if !strings.Contains(out, "                  version: "+tc.version+" (stable)\r\n") {
					t.Errorf("%s: no right-aligned version line for %s:\n%s", cmd, tc.version, out)
				}
				if !regexp.MustCompile(`(?m)^ +uptime: (\d+[wdhms])+\r$`).MatchString(out) {
					t.Errorf("%s: no uptime line:\n%s", cmd, out)
				}
				if !strings.Contains(out, "board-name: RDS2216\r\n") {
					t.Errorf("%s: no board-name:\n%s", cmd, out)
				}
			}
		})
	}
}

func TestSystemPackagePrint(t *testing.T) {
	v := DefaultRouterOSVersion
	for _, tc := range []struct {
		state PackageState
		want  string
	}{
		{PackageInstalled, "Columns: NAME, VERSION, BUILD-TIME, SIZE\r\n" +
			"# NAME          VERSION  BUILD-TIME           SIZE\r\n" +
			"0 routeros      " + v + "   2025-12-04 12:00:39  12.6MiB\r\n" +
			"1 container     " + v + "   2025-12-04 12:00:39  208.1KiB\r\n" +
			"2 rose-storage  " + v + "   2025-12-04 12:00:39  3140.1KiB\r\n"},
		{PackageMissing, "Columns: NAME, VERSION, BUILD-TIME, SIZE\r\n" +
			"# NAME       VERSION  BUILD-TIME           SIZE\r\n" +
			"0 routeros   " + v + "   2025-12-04 12:00:39  12.6MiB\r\n" +
			"1 container  " + v + "   2025-12-04 12:00:39  208.1KiB\r\n"},
		{PackageDisabled, "Flags: X - DISABLED\r\nColumns: NAME, VERSION, BUILD-TIME, SIZE\r\n" +
			"#   NAME          VERSION  BUILD-TIME           SIZE\r\n" +
			"0   routeros      " + v + "   2025-12-04 12:00:39  12.6MiB\r\n" +
			"1   container     " + v + "   2025-12-04 12:00:39  208.1KiB\r\n" +
			"2 X rose-storage  " + v + "   2025-12-04 12:00:39  3140.1KiB\r\n"},
		{PackageAvailable, "Flags: X - DISABLED; A - AVAILABLE\r\nColumns: NAME, VERSION, BUILD-TIME, SIZE\r\n" +
			"#    NAME          VERSION  BUILD-TIME           SIZE\r\n" +
			"0    routeros      " + v + "   2025-12-04 12:00:39  12.6MiB\r\n" +
			"1    container     " + v + "   2025-12-04 12:00:39  208.1KiB\r\n" +
			"2 XA rose-storage                                3140.1KiB\r\n"},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			c := dial(t, startSim(t, Config{System: System{RoseStorage: tc.state}}))
			if got := mustRun(t, c, "/system package print"); got != tc.want {
				t.Errorf("got:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
	c := dial(t, startSim(t, Config{}))
	got := mustRun(t, c, `/system/package/print where name="rose-storage"`)
	if !strings.Contains(got, "0 rose-storage") && !strings.Contains(got, "2 rose-storage") {
		t.Errorf("where name=rose-storage: %q", got)
	}
	if strings.Contains(got, "routeros ") {
		t.Errorf("where name=rose-storage listed routeros: %q", got)
	}
	if out, status := run(t, c, "/system package print bogus"); status == 0 {
		t.Errorf("a bad argument was accepted: %q", out)
	}
}

func TestSystemBadPackageState(t *testing.T) {
	c := dial(t, startSim(t, Config{System: System{RoseStorage: "maybe"}}))
	if out, status := run(t, c, "/system package print"); status == 0 || !strings.Contains(out, "failure:") {
		t.Errorf("a bad simulator setting answered %d %q", status, out)
	}
}

func TestInventory(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs="pool-fs" name="k8s/v1"`)
	mustRun(t, c, `/disk add type=file file-path=pool/k8s/v1/disk.img file-size=1M slot=v1 mount-filesystem=no`)
	inv, err := s.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(inv.Disks, ",") != "v1" || strings.Join(inv.Subvolumes, ",") != "k8s/v1" ||
		strings.Join(inv.Files, ",") != "pool/k8s,pool/k8s/v1,pool/k8s/v1/disk.img" {
		t.Errorf("inventory %+v", inv)
	}
}
