// Command testreport is how `make test` runs and reports its Go tests: each
// stage's `go test -json` events are kept, a stage may retry its failed
// packages once (recorded, never silent), and the summary lists every
// package's passed/failed/skipped/retried, every skip with its reason, and
// fails the run on a skip docs/SKIPS.md does not let stay when CI=true. Its
// tools check finds every program the code looks up or runs and fails when
// one is not installed by a package of deploy/test-packages.
//
//	testreport run -dir D -stage unit [-retry] [-pkgs "./a ./b"] -- go test FLAGS
//	testreport summary -dir D -skips docs/SKIPS.md
//	testreport tools -root . -packages deploy/test-packages
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(ctx, os.Args[2:])
	case "summary":
		err = cmdSummary(os.Args[2:])
	case "tools":
		err = cmdTools(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: testreport run -dir DIR -stage NAME [-retry] [-pkgs PKGS] -- go test FLAGS
       testreport summary -dir DIR -skips docs/SKIPS.md
       testreport tools -root DIR -packages deploy/test-packages`)
	os.Exit(2)
}

func cmdRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	o := runOpts{Out: os.Stdout}
	fs.StringVar(&o.Dir, "dir", ".cache/test-report", "where the stages' events are kept")
	fs.StringVar(&o.Stage, "stage", "", "the stage's name in the summary (unit, cross-arm, lab …)")
	fs.BoolVar(&o.Retry, "retry", false, "run failed packages once more (the retry is in the summary)")
	pkgs := fs.String("pkgs", "./...", "the packages, space-separated")
	fs.Parse(args)
	if o.Stage == "" || fs.NArg() == 0 {
		usage()
	}
	o.Command = fs.Args()
	o.Packages = strings.Fields(*pkgs)
	return runStage(ctx, o)
}

func cmdSummary(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ExitOnError)
	dir := fs.String("dir", ".cache/test-report", "where the stages' events are kept")
	skipsPath := fs.String("skips", "docs/SKIPS.md", "the skips that stay, with their reasons")
	fs.Parse(args)
	list, err := parseFile(*skipsPath, readSkipList)
	if err != nil {
		return err
	}
	stages, err := loadStages(*dir)
	if err != nil {
		return err
	}
	if len(stages) == 0 {
		return fmt.Errorf("no test results in %s", *dir)
	}
	fmt.Printf("\n== make test: summary (events in %s)\n", *dir)
	t := summarize(os.Stdout, stages, list)
	ci := os.Getenv("CI") == "true"
	switch {
	case t.FailedPkgs > 0:
		return fmt.Errorf("%d packages failed", t.FailedPkgs)
	case t.Unexpected > 0 && ci:
		return fmt.Errorf("CI=true: %d skips are not in %s: install what they need, or list them there with the reason", t.Unexpected, *skipsPath)
	case t.Unexpected > 0:
		fmt.Printf("(%d skips not in %s: with CI=true they fail the run)\n", t.Unexpected, *skipsPath)
	}
	return nil
}

func cmdTools(args []string) error {
	fs := flag.NewFlagSet("tools", flag.ExitOnError)
	root := fs.String("root", ".", "the source tree")
	pkgsPath := fs.String("packages", "deploy/test-packages", "the Debian packages make test installs")
	fs.Parse(args)
	list, err := parseFile(*pkgsPath, readPackageList)
	if err != nil {
		return err
	}
	uses, err := findTools(*root)
	if err != nil {
		return err
	}
	problems := checkTools(hostSystem, uses, list)
	for _, p := range problems {
		fmt.Println("  " + p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d of the %d programs the code runs are not installed by make test", len(problems), len(uses))
	}
	fmt.Printf("tools: the %d programs the code runs come from %s (or are Essential)\n", len(uses), *pkgsPath)
	return nil
}

// parseFile reads the file at path with parse; errors name the file.
func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
