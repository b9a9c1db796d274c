package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunStageRetriesAFlake runs the real go test over a module whose test
// fails on its first run only: the stage passes, both tries are kept and
// the summary names the retry and the first failure.
func TestRunStageRetriesAFlake(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not in PATH: %v", err)
	}
	mod := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran-once")
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module flaky\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "flaky_test.go"), []byte(`package flaky

import (
	"os"
	"testing"
)

func TestFlaky(t *testing.T) {
	if _, err := os.Stat(`+"`"+marker+"`"+`); err != nil {
		os.WriteFile(`+"`"+marker+"`"+`, nil, 0o644)
		t.Fatal("first run fails")
	}
}

func TestSkipped(t *testing.T) { t.Skip("nothing to see") }
`), 0o644)
	dir := t.TempDir()
	t.Chdir(mod)
	var out strings.Builder
	o := runOpts{Dir: dir, Stage: "lab", Retry: true, Command: []string{goBin, "test", "-count=1"}, Packages: []string{"./..."}, Out: &out}
	if err := runStage(context.Background(), o); err != nil {
		t.Fatalf("the retry passed, the stage must too: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "first run fails") || !strings.Contains(out.String(), "running once more") {
		t.Errorf("the first failure and the retry must be shown:\n%s", out.String())
	}
	stages, err := loadStages(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sum strings.Builder
	tot := summarize(&sum, stages, nil)
	if tot.Retried != 1 || tot.FailedPkgs != 0 || tot.Unexpected != 1 {
		t.Errorf("totals %+v\n%s", tot, sum.String())
	}
	if !strings.Contains(sum.String(), "first try failed in TestFlaky: flaky_test.go:") {
		t.Errorf("the summary must name the first failure:\n%s", sum.String())
	}

	// Without -retry the same failure fails the stage.
	os.Remove(marker)
	o.Retry, o.Out = false, io.Discard
	if err := runStage(context.Background(), o); err == nil {
		t.Error("a failed package without retry must fail the stage")
	}
}
