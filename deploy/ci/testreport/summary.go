package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
)

const module = "github.com/boxagent/boxagent/"

// short is a package's path inside the module, as the skip list writes it.
func short(pkg string) string {
	if s := strings.TrimPrefix(pkg, module); s != pkg {
		return s
	}
	if pkg == strings.TrimSuffix(module, "/") {
		return "."
	}
	return pkg
}

// stageResult is one stage's packages, their last try, and their first
// failure when they needed a retry.
type stageResult struct {
	Name    string
	Last    map[string]*pkgRun
	Retried map[string]*pkgRun // the failed first try of a retried package
}

// loadStages reads every stage's tries in dir, in the order they ran.
func loadStages(dir string) ([]*stageResult, error) {
	first, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	type st struct {
		name string
		mod  int64
	}
	var order []st
	for _, f := range first {
		base := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		if strings.Contains(base, ".try") {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		order = append(order, st{base, fi.ModTime().UnixNano()})
	}
	sort.Slice(order, func(i, j int) bool { return order[i].mod < order[j].mod })
	var stages []*stageResult
	for _, s := range order {
		r := &stageResult{Name: s.name, Last: map[string]*pkgRun{}, Retried: map[string]*pkgRun{}}
		tries, err := readTry(attemptFile(dir, s.name, 1))
		if err != nil {
			return nil, err
		}
		for _, p := range tries {
			r.Last[p.Package] = p
		}
		again, err := readTry(attemptFile(dir, s.name, 2))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, p := range again {
			if prev, ok := r.Last[p.Package]; ok && prev.failed() {
				r.Retried[p.Package] = prev
			}
			r.Last[p.Package] = p
		}
		stages = append(stages, r)
	}
	return stages, nil
}

func readTry(path string) ([]*pkgRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := newCollector()
	if err := readEvents(f, c, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c.runs(), nil
}

// totals is what the summary's last line says.
type totals struct {
	Passed, Failed, Skipped, Unexpected, Retried, FailedPkgs int
}

// summarize prints the per-package table, every skip with its reason (and
// whether the skip list lets it stay), every retry with its first failure,
// and the plain line "N passed, N failed, N skipped".
func summarize(w io.Writer, stages []*stageResult, list []*allowedSkip) totals {
	var t totals
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tpackage\tpassed\tfailed\tskipped\tretried\t")
	var skips, unexpected, retries, failures []string
	for _, s := range stages {
		for _, name := range sortedKeys(s.Last) {
			p := s.Last[name]
			pass, fail, skip := p.counts()
			if p.Action == "skip" && len(p.Tests) == 0 {
				continue // no test files
			}
			t.Passed += pass
			t.Failed += fail
			t.Skipped += skip
			retried := "-"
			if first, ok := s.Retried[name]; ok {
				t.Retried++
				retried = "1"
				r, _ := first.firstFailure()
				retries = append(retries, fmt.Sprintf("  %s %s: first try failed in %s: %s", s.Name, short(name),
					orElse(r.Test, "(no test: the binary failed)"), orElse(firstLine(r.Message, 160), firstLine(first.Output, 160))))
			}
			if p.failed() {
				t.FailedPkgs++
				r, ok := p.firstFailure()
				what := firstLine(p.Output, 160)
				if ok {
					what = r.Test + ": " + firstLine(r.Message, 160)
				}
				failures = append(failures, fmt.Sprintf("  %s %s: %s", s.Name, short(name), what))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t\n", s.Name, short(name), pass, fail, skip, retried)
			for _, r := range p.Tests {
				if r.Action != "skip" {
					continue
				}
				full := short(r.Package) + "." + r.Test
				reason := firstSkipReason(r.Message)
				if a := allowed(list, s.Name, full, r.Message); a != nil {
					skips = append(skips, fmt.Sprintf("  %s %s: %s", s.Name, full, reason))
				} else {
					t.Unexpected++
					unexpected = append(unexpected, fmt.Sprintf("  %s %s: %s", s.Name, full, reason))
				}
			}
		}
	}
	tw.Flush()
	section(w, "skipped, and listed in docs/SKIPS.md with the reason it stays", skips)
	section(w, "skipped, NOT in docs/SKIPS.md (a failure when CI=true)", unexpected)
	section(w, "retried (a flake: the first failure; list it in docs/FLAKES.md once investigated)", retries)
	section(w, "failed", failures)
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", t.Passed, t.Failed, t.Skipped)
	fmt.Fprintf(w, "%d unexpected skips, %d packages retried, %d packages failed\n", t.Unexpected, t.Retried, t.FailedPkgs)
	return t
}

// firstSkipReason is the skip's own words: a replayed guest skip
// ("guest: skipped:" and the guest's output) gives the guest's last line.
func firstSkipReason(msg string) string {
	lines := strings.Split(msg, "\n")
	if len(lines) > 1 && strings.Contains(lines[0], "guest: skipped") {
		return "guest: " + firstLine(lines[len(lines)-1], 200)
	}
	return firstLine(msg, 200)
}

func section(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s (%d):\n%s\n", title, len(lines), strings.Join(lines, "\n"))
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
