package driver

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// sentinelCodes is the code every sentinel error of the packages the handlers call must get, by its
// name in the source. It restates errorCodes on purpose: a change of either shows up here.
var sentinelCodes = map[string]struct {
	err  error
	code codes.Code
}{
	"rds.ErrNotFound":                 {rds.ErrNotFound, codes.NotFound},
	"rds.ErrAlreadyExists":            {rds.ErrAlreadyExists, codes.AlreadyExists},
	"rds.ErrNoSpace":                  {rds.ErrNoSpace, codes.ResourceExhausted},
	"rds.ErrInvalid":                  {rds.ErrInvalid, codes.InvalidArgument},
	"rds.ErrPermission":               {rds.ErrPermission, codes.PermissionDenied},
	"rds.ErrUnavailable":              {rds.ErrUnavailable, codes.Unavailable},
	"rds.ErrProtocol":                 {rds.ErrProtocol, codes.Internal},
	"rds.ErrHostKeyMismatch":          {rds.ErrHostKeyMismatch, codes.FailedPrecondition},
	"volume.ErrNoPool":                {volume.ErrNoPool, codes.InvalidArgument},
	"volume.ErrBadToken":              {volume.ErrBadToken, codes.Aborted},
	"mount.ErrStagedElsewhere":        {mount.ErrStagedElsewhere, codes.FailedPrecondition},
	"mount.ErrBadPath":                {mount.ErrBadPath, codes.InvalidArgument},
	"volume.ErrNotFound":              {volume.ErrNotFound, codes.NotFound},
	"volume.ErrAlreadyExists":         {volume.ErrAlreadyExists, codes.AlreadyExists},
	"volume.ErrOutOfRange":            {volume.ErrOutOfRange, codes.OutOfRange},
	"volume.ErrNotOwned":              {volume.ErrNotOwned, codes.FailedPrecondition},
	"volume.ErrHostAccessUnsupported": {volume.ErrHostAccessUnsupported, codes.FailedPrecondition},
	"volume.ErrUnsupported":           {volume.ErrUnsupported, codes.FailedPrecondition},
	"volume.ErrIncomplete":            {volume.ErrIncomplete, codes.Unavailable},
	"attachment.ErrAttachedElsewhere": {attachment.ErrAttachedElsewhere, codes.FailedPrecondition},
	"node.ErrNotStaged":               {node.ErrNotStaged, codes.FailedPrecondition},
	"node.ErrInUse":                   {node.ErrInUse, codes.FailedPrecondition},
	"node.ErrNotOnNode":               {node.ErrNotOnNode, codes.NotFound},
	"nvme.ErrInvalidParams":           {nvme.ErrInvalidParams, codes.InvalidArgument},
	"nvme.ErrForeignNQN":              {nvme.ErrForeignNQN, codes.InvalidArgument},
	"nvme.ErrNoDevice":                {nvme.ErrNoDevice, codes.Unavailable},
	"nvme.ErrNotLive":                 {nvme.ErrNotLive, codes.Unavailable},
	"nvme.ErrNotConnected":            {nvme.ErrNotConnected, codes.FailedPrecondition},
	"mount.ErrNotBlank":               {mount.ErrNotBlank, codes.FailedPrecondition},
	"mount.ErrUncertain":              {mount.ErrUncertain, codes.Internal},
	"mount.ErrTargetBusy":             {mount.ErrTargetBusy, codes.AlreadyExists},
	"mount.ErrNotMounted":             {mount.ErrNotMounted, codes.Internal},
	"mount.ErrDeviceGone":             {mount.ErrDeviceGone, codes.Unavailable},
	"mount.ErrUnsupported":            {mount.ErrUnsupported, codes.InvalidArgument},
}

// TestEverySentinelErrorHasADeliberateCode: each exported Err* variable of the packages the handlers call
// is in sentinelCodes (a new one cannot fall through to Internal unnoticed), and maps to its code, also
// when wrapped.
func TestEverySentinelErrorHasADeliberateCode(t *testing.T) {
	for _, pkg := range []string{"rds", "volume", "attachment", "node", "nvme", "mount"} {
		for _, name := range sentinelNames(t, filepath.Join("..", pkg)) {
			if _, ok := sentinelCodes[pkg+"."+name]; !ok {
				t.Errorf("%s.%s has no code in sentinelCodes (and so no deliberate line in errorCodes)", pkg, name)
			}
		}
	}
	for name, want := range sentinelCodes {
		if got := codeOf(fmt.Errorf("volume pvc-a: %w", want.err)); got != want.code {
			t.Errorf("%s maps to %s, want %s", name, got, want.code)
		}
		listed := false
		for _, ec := range errorCodes {
			listed = listed || ec.err == want.err
		}
		if !listed && name != "nvme.ErrForeignNQN" { // it wraps nvme.ErrInvalidParams
			t.Errorf("%s has no line of its own in errorCodes", name)
		}
	}
}

// sentinelNames lists the exported package-level variables named Err* of the non-test files in dir.
func sentinelNames(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no Err* variables found in %s", dir)
	}
	return names
}

// TestToStatus: a status keeps its code, a domain error gets its own text, context errors their codes.
func TestToStatus(t *testing.T) {
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) is not nil")
	}
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{invalid("bad"), codes.InvalidArgument},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("%q: %w", "pvc-a", errBusy), codes.Aborted},
		{errorOf(errStaleToken, "token %q", "x"), codes.Aborted},
		{errorOf(errUnknownNode, "node %q", "n"), codes.NotFound},
		{errorOf(errNodeCheck, "node %q", "n"), codes.Unavailable},
		{fmt.Errorf("something else"), codes.Internal},
	} {
		st := status.Convert(toStatus(tc.err))
		if st.Code() != tc.code || st.Message() != status.Convert(tc.err).Message() {
			t.Errorf("toStatus(%v) = %v, want %s with the same text", tc.err, st, tc.code)
		}
	}
}
