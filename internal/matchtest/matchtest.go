// Package matchtest checks a hand-written matcher against the regular
// expression it replaced, for tests only: the agent's binary leaves
// package regexp out (issue 20), its tests prove that nothing else
// changed with it. The inputs are every short string over an alphabet
// chosen for the pattern, the strings one edit away from examples (at the
// length limits, with a newline before and after), and a fuzzer's.
package matchtest

import (
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"unicode/utf8"
)

// units splits an alphabet into its characters; an invalid byte is a
// character of its own, so "é\xff" is "é" and "\xff".
func units(alphabet string) []string {
	var us []string
	for alphabet != "" {
		_, n := utf8.DecodeRuneInString(alphabet)
		us = append(us, alphabet[:n])
		alphabet = alphabet[n:]
	}
	return us
}

// All is every string of at most n characters of alphabet.
func All(alphabet string, n int) []string {
	us := units(alphabet)
	all, last := []string{""}, []string{""}
	for range n {
		var next []string
		for _, s := range last {
			for _, u := range us {
				next = append(next, s+u)
			}
		}
		all, last = append(all, next...), next
	}
	return all
}

// Near is each example, every string one edit away from it (a byte
// deleted, or replaced by a character of alphabet, or a character
// inserted), and each example with a newline before and after it.
func Near(alphabet string, examples ...string) []string {
	var near []string
	for _, e := range examples {
		near = append(near, e, "\n"+e, e+"\n")
		for i := range len(e) + 1 {
			if i < len(e) {
				near = append(near, e[:i]+e[i+1:])
			}
			for _, u := range units(alphabet) {
				near = append(near, e[:i]+u+e[i:])
				if i < len(e) {
					near = append(near, e[:i]+u+e[i+1:])
				}
			}
		}
	}
	return near
}

// Table fails t on each case that fn answers otherwise.
func Table[T any](t testing.TB, fn func(string) T, cases map[string]T) {
	t.Helper()
	for s, want := range cases {
		if got := fn(s); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %#v, want %#v", s, got, want)
		}
	}
}

// Check is a hand-written function and the expression it replaced; one
// of Match, Submatch and Replace is set.
type Check struct {
	Expr string
	// Match is checked against the expression's MatchString.
	Match func(string) bool
	// Submatch is checked against FindStringSubmatch: the whole match
	// and the groups', nil when there is none.
	Submatch func(string) []string
	// Replace is checked against ReplaceAllStringFunc with Repl.
	Replace, Repl func(string) string
}

var compiled sync.Map // expression → *regexp.Regexp

// answers is what the new function and the expression say about s.
func (c Check) answers(s string) (got, want string) {
	re, ok := compiled.Load(c.Expr)
	if !ok {
		re, _ = compiled.LoadOrStore(c.Expr, regexp.MustCompile(c.Expr))
	}
	e := re.(*regexp.Regexp)
	switch {
	case c.Match != nil:
		return fmt.Sprint(c.Match(s)), fmt.Sprint(e.MatchString(s))
	case c.Submatch != nil:
		return fmt.Sprintf("%#v", c.Submatch(s)), fmt.Sprintf("%#v", e.FindStringSubmatch(s))
	default:
		return fmt.Sprintf("%q", c.Replace(s)), fmt.Sprintf("%q", e.ReplaceAllStringFunc(s, c.Repl))
	}
}

// Agree fails t on the first ten inputs that the function and the
// expression answer differently, and says how many did.
func (c Check) Agree(t testing.TB, inputs ...[]string) {
	t.Helper()
	bad, n := 0, 0
	for _, list := range inputs {
		for _, s := range list {
			n++
			got, want := c.answers(s)
			if got == want {
				continue
			}
			if bad++; bad <= 10 {
				t.Errorf("%q: %s, the expression %#q says %s", s, got, c.Expr, want)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d of %d inputs disagree with %#q", bad, n, c.Expr)
	}
}

// Fuzz fuzzes the checks from the seeds.
func Fuzz(f *testing.F, seeds []string, checks ...Check) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range checks {
			c.Agree(t, []string{s})
		}
	})
}
