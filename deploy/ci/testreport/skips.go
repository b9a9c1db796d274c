package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// allowedSkip is one row of docs/SKIPS.md: a skip that stays, and why.
type allowedSkip struct {
	Stage  string // glob: unit, cross-arm, lab, cross-*, *
	Test   string // glob over "package.Test/subtest", package relative to the module
	Says   string // a substring of the skip's message; "" for any
	Why    string
	Line   int
	stage  *regexp.Regexp
	test   *regexp.Regexp
	Useful bool // it matched a skip in this run
}

// glob turns a pattern where * matches any run of characters (slashes too:
// test names have them) into an anchored regexp.
func glob(p string) (*regexp.Regexp, error) {
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return regexp.Compile("^" + strings.Join(parts, ".*") + "$")
}

// readSkipList reads the table rows of the skip list: | stage | test |
// the skip says | why |. The header and separator rows are not rules.
func readSkipList(r io.Reader) ([]*allowedSkip, error) {
	var list []*allowedSkip
	sc := bufio.NewScanner(r)
	n := 0
	inTable := false
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		if !inTable {
			// the header row
			inTable = true
			if len(cells) != 4 || !strings.EqualFold(cells[0], "stage") {
				return nil, fmt.Errorf("line %d: the skip table's header must be | stage | test | the skip says | why |", n)
			}
			continue
		}
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the separator row
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: want 4 cells, have %d", n, len(cells))
		}
		s := &allowedSkip{Stage: cells[0], Test: cells[1], Says: cells[2], Why: cells[3], Line: n}
		if s.Why == "" {
			return nil, fmt.Errorf("line %d: a skip that stays needs its reason", n)
		}
		var err error
		if s.stage, err = glob(s.Stage); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if s.test, err = glob(s.Test); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		list = append(list, s)
	}
	return list, sc.Err()
}

// allowed returns the row that lets the skip stay, or nil.
func allowed(list []*allowedSkip, stage, name, msg string) *allowedSkip {
	for _, s := range list {
		if s.stage.MatchString(stage) && s.test.MatchString(name) && strings.Contains(msg, s.Says) {
			s.Useful = true
			return s
		}
	}
	return nil
}
