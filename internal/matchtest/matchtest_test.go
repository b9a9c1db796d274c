package matchtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recorder keeps what a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestInputs(t *testing.T) {
	Table(t, func(alphabet string) []string { return All(alphabet, 2) }, map[string][]string{
		"ab": {"", "a", "b", "aa", "ab", "ba", "bb"}, "é\xff": {"", "é", "\xff", "éé", "é\xff", "\xffé", "\xff\xff"},
	})
	near := Near("x", "ab")
	for _, s := range []string{"ab", "\nab", "ab\n", "b", "a", "xab", "axb", "abx", "xb", "ax"} {
		if !slices.Contains(near, s) {
			t.Errorf("Near(%q) lacks %q", "ab", s)
		}
	}
}

func TestDisagreement(t *testing.T) {
	r := &recorder{TB: t}
	Check{Expr: `^a$`, Match: func(s string) bool { return s == "a" || s == "b" }}.Agree(r, All("ab", 1))
	if len(r.errs) != 1 || !strings.HasPrefix(r.errs[0], `"b": true`) {
		t.Errorf("Match: %q, want one disagreement on \"b\"", r.errs)
	}
	r.errs = nil
	Check{Expr: `x(y)`, Submatch: func(string) []string { return []string{"xy", "y"} }}.Agree(r, []string{"xy", ""})
	if len(r.errs) != 1 || !strings.HasPrefix(r.errs[0], `"": []string{"xy", "y"}`) {
		t.Errorf("Submatch: %q, want one disagreement on \"\"", r.errs)
	}
	r.errs = nil
	Check{Expr: `a+`, Replace: strings.ToUpper, Repl: strings.ToUpper}.Agree(r, All("ab", 3), All("ab", 1))
	if len(r.errs) != 11 || r.errs[10] != "12 of 18 inputs disagree with `a+`" {
		t.Errorf("Replace: %q, want ten disagreements and a count", r.errs)
	}
	r.errs = nil
	Table(r, strings.ToUpper, map[string]string{"a": "A", "b": "b"})
	if len(r.errs) != 1 {
		t.Errorf("Table: %q, want one wrong answer", r.errs)
	}
}
