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
	bash := needTool(t, "bash")
	script := writeCompletion(t, "bash", "boxagent.bash")
	// complete is what bash offers for the command line words, the last
	// being the word under the cursor.
	checkCompletion(t, func(words ...string) []string {
		t.Helper()
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c",
			`source "$1" || exit; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _boxagent; printf '%s\n' "${COMPREPLY[@]}"`,
			"bash", script)
		cmd.Args = append(cmd.Args, words...)
		return shellWords(t, cmd, words)
	})
	for _, c := range commands() {
		for _, v := range c.Verbs {
			if c.Helper {
				continue
			}
			// The command knows the verb: whatever else it says (a missing
			// argument, no daemon), it is not "unknown verb".
			ve, _, stderr := testEnv()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			args := []string{c.Name, v}
			if slices.Contains(helpFlags(t, c.Name), "--socket") {
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

// TestCompletionZsh installs `boxagent completion zsh` as _boxagent in a
// folder of $fpath, as the .deb does, and presses Tab in a real
// interactive zsh (on a pseudo terminal, testdata/zsh-complete.zsh) with
// compinit: it must offer what bash offers.
func TestCompletionZsh(t *testing.T) {
	zsh := needTool(t, "zsh")
	script := writeCompletion(t, "zsh", "_boxagent")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	dump := filepath.Join(t.TempDir(), "zcompdump")
	checkCompletion(t, func(words ...string) []string {
		t.Helper()
		cmd := exec.Command(zsh, "-f", "testdata/zsh-complete.zsh", filepath.Dir(script), dump, strings.Join(words, " "))
		return shellWords(t, cmd, words)
	})
}

// TestCompletionFish sources `boxagent completion fish` into a real fish
// and asks it to complete (complete -C): it must offer what bash offers.
func TestCompletionFish(t *testing.T) {
	fish := needTool(t, "fish")
	script := writeCompletion(t, "fish", "boxagent.fish")
	checkCompletion(t, func(words ...string) []string {
		t.Helper()
		cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; or exit 1; complete -C"$argv[2]"`,
			script, strings.Join(words, " "))
		return shellWords(t, cmd, words)
	})
}

// checkCompletion asks complete for the commands, and for each command
// its flags (after the command and after an argument) and its verbs; each
// must be exactly the command table's. Helper commands are not offered.
func checkCompletion(t *testing.T, complete func(words ...string) []string) {
	t.Helper()
	same := func(what string, got, want []string) {
		t.Helper()
		if want = set(want); !slices.Equal(got, want) {
			t.Errorf("%s: completion offers %q, want %q", what, got, want)
		}
	}
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
		if len(c.Verbs) > 0 {
			same(c.Name+" verbs", complete("boxagent", c.Name, ""), c.Verbs)
		}
	}
}

// needTool is the path of a program the tests run (a shell, man); CI installs
// them all (deploy/test-packages), so there a missing one fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: %v", name, err)
		}
		t.Skipf("%s is not installed (%v); make deps installs it", name, err)
	}
	return path
}

// writeCompletion writes `boxagent completion SHELL` to a file named name
// in a folder of its own, and checks it names no helper command.
func writeCompletion(t *testing.T, shell, name string) string {
	t.Helper()
	e, out, stderr := testEnv()
	if code := Run(context.Background(), e, []string{"completion", shell}); code != ExitOK {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
	}
	for _, c := range commands() {
		if c.Helper && strings.Contains(out.String(), c.Name) {
			t.Errorf("completion %s names the helper command %s", shell, c.Name)
		}
	}
	script := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}

// shellWords runs a shell's completion and returns the candidates it
// printed (the first field of each line: fish adds a description).
func shellWords(t *testing.T, cmd *exec.Cmd, words []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("complete %q: %v\n%s", words, err, got)
	}
	var out []string
	for _, l := range strings.Split(string(got), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return set(out)
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
