package localapi

import (
	"testing"
)

// TestRoutesTable: each row once, every operation a POST or DELETE,
// every read a GET (the page's login and logout aside), every long call
// an operation.
func TestRoutesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Routes {
		if seen[r.Pattern()] {
			t.Errorf("%s twice", r.Pattern())
		}
		seen[r.Pattern()] = true
		if !r.Session && r.Mutating == (r.Method == "GET") || r.Long && !r.Mutating {
			t.Errorf("%s: mutating %v, long %v", r.Pattern(), r.Mutating, r.Long)
		}
		if r.Result == nil || r.Calls == "" {
			t.Errorf("%s: no result type or handler named", r.Pattern())
		}
	}
}
