package rds

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		text  string
		kind  error
		known bool
	}{
		{"failure: not enough space", ErrNoSpace, true},
		{"failure: already have such entry", ErrAlreadyExists, true},
		{"no such item", ErrNotFound, true},
		{"no such item (4)", ErrNotFound, true},
		{"bad command name addd (line 1 column 7)", ErrProtocol, true},
		{"syntax error (line 1 column 12)", ErrProtocol, true},
		{"expected end of command (line 1 column 40)", ErrProtocol, true},
		{"input does not match any value of type", ErrInvalid, true},
		{"invalid value for argument file-size", ErrInvalid, true},
		{"not enough permissions (9)", ErrPermission, true},
		{"failure: device is busy", ErrProtocol, true},
		{"something RouterOS never said", ErrProtocol, false},
		{"", ErrProtocol, false},
	}
	for _, tc := range tests {
		kind, known := classify(tc.text)
		if !errors.Is(kind, tc.kind) || known != tc.known {
			t.Errorf("classify(%q) = %v, %v; want %v, %v", tc.text, kind, known, tc.kind, tc.known)
		}
	}
}

func TestCommandError(t *testing.T) {
	err := fmt.Errorf("creating volume: %w", &CommandError{Kind: ErrNoSpace, Script: "/disk add x\n:put \"m\"\n",
		Step: "/disk add x", Output: "failure: not enough space\r\n", ExitStatus: -1})
	if !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrNotFound) {
		t.Errorf("errors.Is does not follow the kind: %v", err)
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Output != "failure: not enough space\r\n" {
		t.Fatalf("errors.As lost the RouterOS text: %#v", ce)
	}
	for _, want := range []string{"not enough space on the RDS", "/disk add x", "RouterOS said: failure: not enough space"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	empty := &CommandError{Kind: ErrProtocol, Script: "/x\n:put \"m\"", ExitStatus: 3}
	if msg := empty.Error(); !strings.Contains(msg, "/x") || !strings.Contains(msg, "exit status 3") {
		t.Errorf("message without output: %q", msg)
	}
}
