package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestManPage renders `boxagent help --man` with man, as lintian does
// (its warnings are failures), and checks the page against the command
// table: every command, verb and flag is on it and no helper command; every
// BOXAGENT_ variable the package's code reads is in ENVIRONMENT; every
// exit code is in EXIT STATUS.
func TestManPage(t *testing.T) {
	e, out, stderr := testEnv()
	if code := Run(context.Background(), e, []string{"help", "--man"}); code != ExitOK {
		t.Fatalf("help --man: exit %d: %s", code, stderr)
	}
	page := filepath.Join(t.TempDir(), "boxagent.1")
	if err := os.WriteFile(page, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsFunc(out.Bytes(), func(r rune) bool { return r > 0x7e }) {
		t.Error("the page source is not ASCII")
	}

	// What lintian runs (manpage-has-errors-from-man), and groff with every
	// warning on.
	man, groff := needTool(t, "man"), needTool(t, "groff")
	render := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		if err := cmd.Run(); err != nil || se.Len() > 0 {
			t.Fatalf("%s %q: %v\n%s", name, args, err, se.String())
		}
		return so.String()
	}
	render(man, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page)
	render(groff, "-man", "-Tutf8", "-ww", "-z", page)
	text := render(man, "-l", page)

	// The rendered text, without the overstrikes of bold and underline.
	text = regexp.MustCompile(".\b").ReplaceAllString(text, "")
	section := func(name string) string {
		t.Helper()
		_, rest, ok := strings.Cut(text, "\n"+name+"\n")
		if !ok {
			t.Fatalf("no %s section in:\n%s", name, text)
		}
		if i := regexp.MustCompile(`\n[A-Z]`).FindStringIndex(rest); i != nil {
			rest = rest[:i[0]]
		}
		return "\n" + rest
	}
	// has says the words are in text in this order, at the start of a
	// line, whatever the spaces between them (man justifies lines).
	has := func(text string, words ...string) bool {
		for i, w := range words {
			words[i] = regexp.QuoteMeta(w)
		}
		return regexp.MustCompile(`\n\s*` + strings.Join(words, `\s+`)).MatchString(text)
	}
	for _, s := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"} {
		section(s)
	}
	cmds := section("COMMANDS")
	words := map[string]bool{}
	for _, w := range regexp.MustCompile(`[\w-]+`).FindAllString(cmds, -1) {
		words[w] = true
	}
	for _, c := range commands() {
		if c.Helper {
			if words[c.Name] {
				t.Errorf("the page names the helper command %s", c.Name)
			}
			continue
		}
		if !has(cmds, c.Name, "boxagent", c.Name) {
			t.Errorf("no subsection for %s", c.Name)
		}
		for _, v := range c.Verbs {
			if !words[v] {
				t.Errorf("%s: the verb %s is not on the page", c.Name, v)
			}
		}
		for _, f := range helpFlags(t, c.Name) {
			if !words[f] {
				t.Errorf("%s: the flag %s is not on the page", c.Name, f)
			}
		}
	}

	env := section("ENVIRONMENT")
	code, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range code {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range regexp.MustCompile(`"(BOXAGENT_[A-Z_]+)"`).FindAllSubmatch(src, -1) {
			if !has(env, string(v[1])+"\n") {
				t.Errorf("%s reads %s, which ENVIRONMENT does not list", f, v[1])
			}
		}
	}
	for _, p := range []string{"/etc/boxagent/config.toml", "/run/boxagent/api.sock", "/var/lib/boxagent"} {
		if !has(section("FILES"), p+"\n") {
			t.Errorf("FILES does not list %s", p)
		}
	}
	status := section("EXIT STATUS")
	for _, c := range exitCodes {
		if !has(status, append([]string{strconv.Itoa(c.code)}, strings.Fields(c.word+":")...)...) {
			t.Errorf("EXIT STATUS lacks %d %s:\n%s", c.code, c.word, status)
		}
	}
}
