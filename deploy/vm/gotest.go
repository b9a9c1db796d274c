package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RunGoTests runs the lab-tagged tests of package pkg (an import path or
// ./relative to the repo root) inside one boot of the virtual board and
// reports each guest test as a subtest of t: failed with the guest output
// when it failed, skipped with its reason when it skipped. testArgs go to
// the test binary (e.g. "-test.run=TestVLAN").
//
// opts describes the boot (Sticks, Env, Timeout...); its Command and
// WorkDir are set here. It skips t when the host cannot boot the board.
// The results folder is t's temporary folder, removed after the test,
// unless LAB_KEEP is set in the environment.
func RunGoTests(t *testing.T, pkg string, opts Options, testArgs ...string) *Result {
	t.Helper()
	if opts.Cache == nil {
		opts.Cache = RequireLab(t)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Dir == "" {
		opts.Dir = NewResultsDir(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	goBin := goTool()
	pkgDir, err := output(root, goBin, "list", "-tags", "lab", "-f", "{{.Dir}}", pkg)
	if err != nil {
		t.Fatalf("cannot find package %s: %v", pkg, err)
	}
	bin := filepath.Join(opts.Dir, filepath.Base(pkgDir)+".test")
	start := time.Now()
	// For the board's architecture: GOARCH=arm GOARM=7 on armhf.
	if _, err := outputEnv(root, opts.Cache.archOrDefault().GoEnv(), goBin, "test", "-c", "-tags", "lab", "-o", bin, pkg); err != nil {
		t.Fatalf("cannot build the tests of %s: %v", pkg, err)
	}
	t.Logf("built %s in %s", filepath.Base(bin), time.Since(start).Round(10*time.Millisecond))
	// The guest binary stops itself before QEMU is killed, so a hung test
	// still reports which test hung.
	guestTimeout := opts.Timeout - 20*time.Second
	if guestTimeout < opts.Timeout/2 {
		guestTimeout = opts.Timeout / 2
	}
	if run := guestRunPattern(t.Name(), testArgs); run != "" {
		testArgs = append(testArgs, "-test.run="+run)
	}
	opts.Command = append([]string{bin, "-test.v=test2json", "-test.count=1", "-test.timeout=" + guestTimeout.String()}, testArgs...)
	opts.WorkDir = pkgDir

	res, runErr := Run(context.Background(), opts)
	if res == nil {
		t.Fatal(runErr)
	}
	t.Logf("virtual board: boot to init %s, wall %s, exit %d, results in %s",
		res.Boot.Round(10*time.Millisecond), res.Wall.Round(10*time.Millisecond), res.ExitCode, res.Dir)
	if runErr != nil || res.ExitCode < 0 {
		t.Logf("console:\n%s", res.ConsoleTail(40))
	}
	events, err := test2json(root, goBin, pkg, res.Output)
	if err != nil {
		t.Fatalf("cannot read the guest's test output: %v (run error: %v)", err, runErr)
	}
	tests := buildTree(events)
	failed := false
	for _, n := range tests.children {
		if !t.Run(n.name, n.report) {
			failed = true
		}
	}
	if runErr != nil {
		t.Errorf("%v\nlast output:\n%s", runErr, res.OutputTail(30))
	} else if res.ExitCode != 0 && !failed {
		t.Errorf("guest test binary exited %d with no failed test; output:\n%s\nconsole:\n%s",
			res.ExitCode, res.OutputTail(40), res.ConsoleTail(20))
	}
	if len(tests.children) == 0 && res.ExitCode == 0 {
		t.Logf("package %s has no lab tests", pkg)
	}
	return res
}

// NewResultsDir is a new results folder for a run: the test's temporary
// folder, or with LAB_KEEP set one that outlives the test (its path is in
// the test's log).
func NewResultsDir(t testing.TB) string {
	t.Helper()
	if os.Getenv("LAB_KEEP") == "" {
		return t.TempDir()
	}
	d, err := os.MkdirTemp("", "lab-results-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("results kept in %s (LAB_KEEP)", d)
	return d
}

// BuildBoxagent builds ./cmd/boxagent for the board c boots (GOARCH=arm
// GOARM=7 on armhf) into out, as make cross does.
func BuildBoxagent(c *Cache, out string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if _, err := outputEnv(root, c.archOrDefault().GoEnv(), goTool(), "build", "-trimpath", "-o", out, "./cmd/boxagent"); err != nil {
		return fmt.Errorf("cannot build boxagent for %s: %w", c.archOrDefault(), err)
	}
	return nil
}

// guestRunPattern passes the host's -run on to the guest: with
// -run 'TestLab/TestStick$' on the host, the guest runs -test.run=TestStick$.
// testArgs with their own -test.run win.
func guestRunPattern(hostTest string, testArgs []string) string {
	for _, a := range testArgs {
		if strings.HasPrefix(a, "-test.run") {
			return ""
		}
	}
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return ""
	}
	parts := strings.Split(f.Value.String(), "/")
	depth := len(strings.Split(hostTest, "/"))
	if len(parts) <= depth {
		return ""
	}
	return strings.Join(parts[depth:], "/")
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// make and CI put it here (.ci/run); a test binary's PATH may not.
	return "/usr/local/go/bin/go"
}

func output(dir, name string, args ...string) (string, error) {
	return outputEnv(dir, nil, name, args...)
}

// outputEnv runs name with env appended to this process's environment.
func outputEnv(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

// testEvent is one line of go tool test2json's output.
type testEvent struct {
	Action string
	Test   string
	Output string
}

func test2json(dir, goBin, pkg, outputFile string) ([]testEvent, error) {
	in, err := os.Open(outputFile)
	if err != nil {
		return nil, fmt.Errorf("cannot open the guest output: %w", err)
	}
	defer in.Close()
	cmd := exec.Command(goBin, "tool", "test2json", "-p", pkg)
	cmd.Dir = dir
	cmd.Stdin = in
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cannot run go tool test2json: %w", err)
	}
	var evs []testEvent
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(make([]byte, 1<<20), 1<<24)
	for s.Scan() {
		var e testEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("cannot decode test2json output %q: %w", s.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs, s.Err()
}

// testNode is a guest test with its subtests.
type testNode struct {
	name     string
	action   string // pass, fail, skip; "" if it never finished
	output   strings.Builder
	children []*testNode
	byName   map[string]*testNode
}

func buildTree(evs []testEvent) *testNode {
	root := &testNode{byName: map[string]*testNode{}}
	find := func(full string) *testNode {
		n := root
		for _, part := range strings.Split(full, "/") {
			c, ok := n.byName[part]
			if !ok {
				c = &testNode{name: part, byName: map[string]*testNode{}}
				n.byName[part] = c
				n.children = append(n.children, c)
			}
			n = c
		}
		return n
	}
	for _, e := range evs {
		if e.Test == "" {
			continue
		}
		n := find(e.Test)
		switch e.Action {
		case "output":
			n.output.WriteString(e.Output)
		case "pass", "fail", "skip":
			n.action = e.Action
		}
	}
	return root
}

// report replays a guest test's outcome on the host.
func (n *testNode) report(t *testing.T) {
	childFailed := false
	for _, c := range n.children {
		if !t.Run(c.name, c.report) {
			childFailed = true
		}
	}
	out := strings.TrimRight(n.output.String(), "\n")
	switch n.action {
	case "pass":
		t.Logf("guest: pass\n%s", out)
	case "skip":
		t.Skipf("guest: skipped:\n%s", out)
	case "fail":
		if childFailed {
			t.Logf("guest: fail\n%s", out)
		} else {
			t.Errorf("guest: fail\n%s", out)
		}
	default:
		t.Errorf("guest: the test never finished (binary crashed or timed out)\n%s", out)
	}
}
