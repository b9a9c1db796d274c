package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCompletionCoversEveryCommand loads `boxagent completion bash` into
// a real bash and asks it to complete, as a Tab press does. The commands
// and each command's verbs must be exactly those of the command table,
// each verb one its command accepts, and each command's flags exactly
// those its --help lists: a command, verb or flag missing, extra or
// misspelt in the script fails.
func TestCompletionCoversEveryCommand(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	e, out, _ := testEnv()
	if code := Run(context.Background(), e, []string{"completion", "bash"}); code != ExitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	script := filepath.Join(t.TempDir(), "boxagent.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// complete is what bash offers for the command line words, the last
	// being the word under the cursor.
	complete := func(words ...string) []string {
		t.Helper()
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c",
			`source "$1" || exit; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _boxagent; printf '%s\n' "${COMPREPLY[@]}"`,
			"bash", script)
		cmd.Args = append(cmd.Args, words...)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v\n%s", words, err, got)
		}
		return set(strings.Fields(string(got)))
	}
	same := func(what string, got, want []string) {
		t.Helper()
		if want = set(want); !slices.Equal(got, want) {
			t.Errorf("%s: completion offers %q, want %q", what, got, want)
		}
	}

	// Helper commands (run by the package's units) are not offered.
	var names []string
	for _, c := range commands() {
		if !c.Helper {
			names = append(names, c.Name)
		}
	}
	same("commands", complete("boxagent", ""), names)
	for _, c := range commands() {
		if c.Helper {
			continue
		}
		flags := helpFlags(t, c.Name)
		same(c.Name+" flags", complete("boxagent", c.Name, "-"), flags)
		same(c.Name+" flags after an argument", complete("boxagent", c.Name, "x", "--"), flags)
		if len(c.Verbs) == 0 {
			continue
		}
		same(c.Name+" verbs", complete("boxagent", c.Name, ""), c.Verbs)
		for _, v := range c.Verbs {
			// The command knows the verb: whatever else it says (a missing
			// argument, no daemon), it is not "unknown verb".
			ve, _, stderr := testEnv()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			args := []string{c.Name, v}
			if slices.Contains(flags, "--socket") {
				args = append(args, "--socket", filepath.Join(t.TempDir(), "none.sock"))
			}
			Run(ctx, ve, args)
			cancel()
			if strings.Contains(stderr.String(), "unknown") {
				t.Errorf("%s %s: the table's verb is refused: %s", c.Name, v, stderr)
			}
		}
	}
}

// helpFlags are the long flags `boxagent <name> --help` lists.
func helpFlags(t *testing.T, name string) []string {
	t.Helper()
	e, out, _ := testEnv()
	if code := Run(context.Background(), e, []string{name, "--help"}); code != ExitOK {
		t.Fatalf("%s --help: exit %d", name, code)
	}
	_, list, ok := strings.Cut(out.String(), "\nflags:\n")
	if !ok {
		t.Fatalf("%s --help lists no flags:\n%s", name, out)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[\w-]+)`).FindAllStringSubmatch(list, -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// testEnv runs a command line with empty stdin, its output kept.
func testEnv() (e *Env, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(string) string { return "" }}, stdout, stderr
}

// set is the sorted words without repeats.
func set(words []string) []string {
	s := slices.Clone(words)
	slices.Sort(s)
	return slices.Compact(s)
}
