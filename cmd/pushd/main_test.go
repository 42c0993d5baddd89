package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"serve", "--help"}, {"migrate", "--help"}, {"send", "--help"}, {"version"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || out == "" || errOut != "" {
			t.Errorf("pushd %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, out, _ := runCLI(t, "serve", "--help"); !strings.Contains(out, "-config") {
		t.Errorf("serve --help does not list --config:\n%s", out)
	}
}

// Bad input gets one line naming what is wrong, exit 2 for usage and 1 for
// what is found while running.
func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: nowhere\nworker: {concurency: 3}\napi_tokens: [short]\n"), 0o600)
	missingKey := filepath.Join(dir, "missing-key.yaml")
	os.WriteFile(missingKey, []byte(`api_tokens: ["0123456789abcdef0123"]
apps:
  - id: default
    apns: {key_file: nowhere/AuthKey_ABCDEFGHIJ.p8, key_id: ABCDEFGHIJ, team_id: ABCDEFGHIJ, topic: com.example.chat}
`), 0o600)
	// A database path under a regular file cannot be made.
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, nil, 0o600)
	badDB := filepath.Join(dir, "bad-db.yaml")
	os.WriteFile(badDB, []byte(`api_tokens: ["0123456789abcdef0123"]
database: {path: `+filepath.Join(blocker, "pushd.db")+`}
apps:
  - id: default
    fcm: {credentials_file: sa.json}
`), 0o600)
	tests := []struct {
		args  []string
		code  int
		names []string
	}{
		{[]string{"migrate", "--config", badDB}, 1, []string{"database.path", "blocker"}},
		{[]string{"bogus"}, 2, []string{`unknown command "bogus"`}},
		{[]string{}, 2, nil},
		{[]string{"serve", "--nope"}, 2, []string{"-nope"}},
		{[]string{"serve", "extra"}, 2, []string{`"extra"`}},
		{[]string{"serve", "--config", filepath.Join(dir, "absent.yaml")}, 1, []string{"absent.yaml", "--config FILE", "pushd.example.yaml"}},
		{[]string{"serve", "--config", bad}, 1, []string{"listen", "concurency", "api_tokens"}},
		{[]string{"serve", "--config", missingKey}, 1, []string{"key_file", "AuthKey_ABCDEFGHIJ.p8"}},
		{[]string{"send", "--config", bad}, 2, []string{"--to"}},
		{[]string{"migrate", "--config", bad}, 1, []string{"concurency"}},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, tt.args...)
		if code != tt.code {
			t.Errorf("pushd %v: exit %d, want %d (stderr %q)", tt.args, code, tt.code, errOut)
		}
		if len(tt.args) == 0 {
			continue // usage goes to stdout
		}
		if out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("pushd %v: want one line on stderr and nothing on stdout, got stdout %q stderr %q", tt.args, out, errOut)
		}
		for _, n := range tt.names {
			if !strings.Contains(errOut, n) {
				t.Errorf("pushd %v: error %q does not name %q", tt.args, errOut, n)
			}
		}
	}
}
