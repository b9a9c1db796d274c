package localapi

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite the route table in docs/ARCHITECTURE.md")

const (
	routesBegin = "<!-- routes: made from localapi.Routes; go test ./cmd/boxagent/localapi -run TestArchitectureRoutes -args -update -->\n"
	routesEnd   = "<!-- routes: end -->\n"
)

// TestArchitectureRoutes: docs/ARCHITECTURE.md's route table is the
// code's, row for row.
func TestArchitectureRoutes(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "ARCHITECTURE.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := bytes.Index(doc, []byte(routesBegin)), bytes.Index(doc, []byte(routesEnd))
	if begin < 0 || end < begin {
		t.Fatalf("%s has no route table between %q and %q", path, routesBegin, routesEnd)
	}
	got, want := string(doc[begin+len(routesBegin):end]), routesMarkdown(Routes)
	if got == want {
		return
	}
	if *updateDocs {
		out := append(append(append([]byte{}, doc[:begin+len(routesBegin)]...), want...), doc[end:]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's route table differs from localapi.Routes (-args -update rewrites it); want:\n%s", path, want)
}

// routesMarkdown is the table as docs/ARCHITECTURE.md shows it.
func routesMarkdown(table []Route) string {
	var b strings.Builder
	b.WriteString("| call | request | answer (of an operation: its result) | kind | handler calls | notes |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range table {
		kind := "read"
		switch {
		case r.Session:
			kind = "page session, TCP only"
		case r.Long:
			kind = "long operation (202)"
		case r.Mutating:
			kind = "operation"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.Pattern(), typeName(r.Request), typeName(r.Result), kind, r.Calls, r.Doc)
	}
	return b.String()
}

func typeName(v any) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("`%T`", v)
}

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
