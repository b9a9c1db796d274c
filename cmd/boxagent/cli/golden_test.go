package cli_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// normalize replaces what changes from run to run: the temp root, ports,
// times, durations and hashes.
func normalize(s, root string) string {
	s = strings.ReplaceAll(s, root, "ROOT")
	for _, r := range []struct{ re, with string }{
		{`127\.0\.0\.1:\d+`, "127.0.0.1:PORT"},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`, "TIME"},
		{`\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`, "TIME"},
		{`sha256:[0-9a-f]{12,64}`, "sha256:HASH"},
		{`"uptime_seconds": [0-9.e-]+`, `"uptime_seconds": UPTIME`},
		{`uptime:( +)\d+s`, "uptime:${1}UPTIME"},
		{`\(\d+(\.\d+)?(ms|µs|s)\)`, "(DURATION)"},
		{`\(go[0-9.]+ `, "(GOVERSION "},
		{`"go": "go[0-9.]+"`, `"go": "GOVERSION"`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

func TestCLIGolden(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "board = \"generic-x86_64\"\n[journal]\nkeep = 100\n")
	p := startAgent(t, root)
	if _, _, code := p.run("config", "reload"); code != 0 {
		t.Fatalf("config reload: exit %d", code)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"status.txt", []string{"status"}},
		{"status.json", []string{"status", "--json"}},
		{"history.txt", []string{"history"}},
		{"history-1.txt", []string{"history", "1"}},
		{"board-show.txt", []string{"board", "show", "generic-arm64"}},
		{"board-show-huawei.txt", []string{"board", "show", "huawei-ec6108v9c"}},
		{"board-detect.json", []string{"board", "detect", "--json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := p.run(c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden(t, c.name, normalize(out, root))
		})
	}
}

func TestExitCodes(t *testing.T) {
	requireProcesses(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[journal]\nkeep = 5\nbogus = true\n"), 0o600)
	for _, c := range []struct {
		name       string
		args       []string
		code       int
		stderr     string
		stdoutFile string
	}{
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{"unknown flag", []string{"status", "--frob"}, 2, "unknown flag: --frob", ""},
		{"extra argument", []string{"status", "now", "--socket", missing}, 2, `unexpected argument "now"`, ""},
		{"history id not a number", []string{"history", "abc", "--socket", missing}, 2, "not a number", ""},
		{"daemon unreachable", []string{"status", "--socket", missing}, 3, "hint: systemctl status boxagent", ""},
		{"config check invalid", []string{"config", "check", bad}, 1, "", "config-check-invalid.txt"},
		{"help", []string{"help"}, 0, "", "help.txt"},
		{"no arguments", nil, 2, "usage: boxagent [--socket PATH] [--json] <command>", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.stderr)
			}
			if c.stdoutFile != "" {
				golden(t, c.stdoutFile, strings.ReplaceAll(out, filepath.Dir(bad), "DIR"))
			}
		})
	}
}
