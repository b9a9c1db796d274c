package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent), with
// the build events `go test -json` adds since Go 1.24.
type event struct {
	Action      string
	Package     string
	ImportPath  string // build-output, build-fail
	Test        string
	Output      string
	FailedBuild string
}

// result is what one test (or subtest) ended as.
type result struct {
	Package string
	Test    string
	Action  string // pass, fail, skip
	// Message is the test's own output without the framework's "=== RUN"
	// and "--- SKIP" lines: the skip's reason, the failure's message.
	Message string
}

// Name is the package and test as the skip list writes them.
func (r result) Name() string { return r.Package + "." + r.Test }

// pkgRun is one package's outcome in one `go test` run.
type pkgRun struct {
	Package string
	Action  string // pass, fail, skip ("no test files"); "" if it never ended
	Tests   []result
	// Output is the package's own lines (build errors, a panic, "FAIL").
	Output string
}

// counts tells how many tests (subtests included) passed, failed, skipped.
func (p *pkgRun) counts() (passed, failed, skipped int) {
	for _, r := range p.Tests {
		switch r.Action {
		case "pass":
			passed++
		case "fail":
			failed++
		case "skip":
			skipped++
		}
	}
	return
}

// failed reports whether the package failed: a failed test, a failed build,
// or a binary that never reported its end (killed, timed out).
func (p *pkgRun) failed() bool { return p.Action == "fail" || p.Action == "" }

// firstFailure is the deepest failed test first met, with its message: the
// test that says what broke (its parents fail only because it did).
func (p *pkgRun) firstFailure() (result, bool) {
	var best result
	found := false
	for _, r := range p.Tests {
		if r.Action != "fail" {
			continue
		}
		if !found || strings.HasPrefix(r.Test, best.Test+"/") {
			best, found = r, true
		}
	}
	return best, found
}

// collector folds a stream of events into package runs, in the order the
// packages ended.
type collector struct {
	pkgs  map[string]*pkgRun
	order []string
	out   map[string]*strings.Builder // package + "\x00" + test
	// onTestEnd and onPackageEnd, when set, see each result as it comes.
	onTestEnd    func(result, string)
	onPackageEnd func(*pkgRun)
}

func newCollector() *collector {
	return &collector{pkgs: map[string]*pkgRun{}, out: map[string]*strings.Builder{}}
}

func (c *collector) pkg(name string) *pkgRun {
	p, ok := c.pkgs[name]
	if !ok {
		p = &pkgRun{Package: name}
		c.pkgs[name] = p
		c.order = append(c.order, name)
	}
	return p
}

func (c *collector) add(e event) {
	if e.Action == "build-output" || e.Action == "build-fail" {
		p := c.pkg(e.ImportPath)
		p.Output += e.Output
		return
	}
	if e.Package == "" {
		return
	}
	p := c.pkg(e.Package)
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output":
		if e.Test == "" {
			p.Output += e.Output
			return
		}
		b, ok := c.out[key]
		if !ok {
			b = &strings.Builder{}
			c.out[key] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			p.Action = e.Action
			if c.onPackageEnd != nil {
				c.onPackageEnd(p)
			}
			return
		}
		raw := ""
		if b, ok := c.out[key]; ok {
			raw = b.String()
			delete(c.out, key)
		}
		r := result{Package: e.Package, Test: e.Test, Action: e.Action, Message: message(raw)}
		p.Tests = append(p.Tests, r)
		if c.onTestEnd != nil {
			c.onTestEnd(r, raw)
		}
	}
}

// runs returns the packages in the order they were first seen.
func (c *collector) runs() []*pkgRun {
	out := make([]*pkgRun, 0, len(c.order))
	for _, n := range c.order {
		out = append(out, c.pkgs[n])
	}
	return out
}

// message drops the framework's own lines from a test's output and trims
// the indentation Go puts before t.Log and t.Skip text.
func message(raw string) string {
	var lines []string
	for _, l := range strings.Split(raw, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- PASS") ||
			strings.HasPrefix(t, "--- FAIL") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		lines = append(lines, t)
	}
	return strings.Join(lines, "\n")
}

// readEvents folds a `go test -json` stream; lines that are not JSON (a
// panic before test2json, a tool's own words) go to the package-less log.
func readEvents(r io.Reader, c *collector, other func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			if other != nil {
				other(string(line))
			}
			continue
		}
		c.add(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read the test events: %w", err)
	}
	return nil
}

// firstLine is the first non-empty line of s, cut to n runes.
func firstLine(s string, n int) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if r := []rune(l); len(r) > n {
				return string(r[:n-1]) + "…"
			}
			return l
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
