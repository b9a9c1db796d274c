package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// runOpts is one stage of `make test`: a `go test` command line whose
// events are kept in Dir for the summary.
type runOpts struct {
	Dir   string
	Stage string
	// Retry runs the packages that failed once more, on their own; both
	// tries are kept and the summary lists the retry.
	Retry bool
	// Command is `go test` and its flags; Packages go after them.
	Command  []string
	Packages []string
	Out      io.Writer
}

// attemptFile is where a stage's try keeps its raw events.
func attemptFile(dir, stage string, try int) string {
	if try == 1 {
		return filepath.Join(dir, stage+".jsonl")
	}
	return filepath.Join(dir, fmt.Sprintf("%s.try%d.jsonl", stage, try))
}

// runStage runs the stage and, with Retry, its failed packages once more.
// It returns an error when a package failed on its last try.
func runStage(ctx context.Context, o runOpts) error {
	if len(o.Command) < 2 || filepath.Base(o.Command[0]) != "go" || o.Command[1] != "test" {
		return fmt.Errorf("cannot run %q: the command must be go test", strings.Join(o.Command, " "))
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	runs, err := runOnce(ctx, o, o.Packages, 1)
	if err != nil {
		return err
	}
	failed := failedPackages(runs)
	if len(failed) == 0 {
		return nil
	}
	if !o.Retry {
		return fmt.Errorf("%s: %d package(s) failed: %s", o.Stage, len(failed), strings.Join(failed, " "))
	}
	fmt.Fprintf(o.Out, "testreport: %s: %s FAILED; running once more to tell a flake from a failure (the first failure stays in the summary)\n",
		o.Stage, strings.Join(failed, " "))
	runs, err = runOnce(ctx, o, failed, 2)
	if err != nil {
		return err
	}
	if still := failedPackages(runs); len(still) > 0 {
		return fmt.Errorf("%s: failed twice: %s", o.Stage, strings.Join(still, " "))
	}
	return nil
}

// runOnce runs go test -json over pkgs, keeps the events and prints what a
// plain `go test` would: a failed test's output and each package's line.
func runOnce(ctx context.Context, o runOpts, pkgs []string, try int) ([]*pkgRun, error) {
	args := append([]string{"test", "-json"}, o.Command[2:]...)
	args = append(args, pkgs...)
	fmt.Fprintf(o.Out, "%s %s\n", o.Command[0], strings.Join(args, " "))

	f, err := os.Create(attemptFile(o.Dir, o.Stage, try))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, o.Command[0], args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start go test: %w", err)
	}
	c := newCollector()
	c.onTestEnd = func(r result, raw string) {
		if r.Action == "fail" {
			fmt.Fprint(o.Out, raw)
		}
	}
	c.onPackageEnd = func(p *pkgRun) {
		for _, l := range strings.Split(strings.TrimRight(p.Output, "\n"), "\n") {
			if l != "PASS" && l != "" {
				fmt.Fprintln(o.Out, l)
			}
		}
	}
	w := bufio.NewWriter(f)
	rerr := readEvents(io.TeeReader(stdout, w), c, func(line string) { fmt.Fprintln(o.Out, line) })
	werr := cmd.Wait()
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	var exit *exec.ExitError
	if werr != nil && !errors.As(werr, &exit) {
		return nil, fmt.Errorf("go test: %w", werr)
	}
	runs := c.runs()
	if werr != nil && len(failedPackages(runs)) == 0 {
		// go test failed before any package reported (a bad flag, a
		// module error): there is nothing to retry.
		return nil, fmt.Errorf("%s: go test failed without a test result: %w", o.Stage, werr)
	}
	return runs, nil
}

func failedPackages(runs []*pkgRun) []string {
	var failed []string
	for _, p := range runs {
		if p.failed() {
			failed = append(failed, p.Package)
		}
	}
	return failed
}
