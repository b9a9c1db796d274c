package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// TestPageCallsAreRoutes: every API path the page's scripts name is a
// row of localapi.Routes (a path that ends in "/" is completed at run
// time, by a wildcard of the row).
func TestPageCallsAreRoutes(t *testing.T) {
	// A row's path as a regexp: its escaped wildcards ("\{address\}")
	// match one segment.
	wildcard := regexp.MustCompile(`\\\{[^}]*\\\}`)
	var patterns []*regexp.Regexp
	var prefixes []string
	for _, r := range localapi.Routes {
		patterns = append(patterns, regexp.MustCompile("^"+wildcard.ReplaceAllString(regexp.QuoteMeta(r.Path), "[^/]+")+"$"))
		if i := strings.Index(r.Path, "{"); i > 0 {
			prefixes = append(prefixes, r.Path[:i])
		}
	}
	literal := regexp.MustCompile(`"(/api/v1/[^"?]*)`)
	n := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		src, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			n++
			if !pageRoute(m[1], patterns, prefixes) {
				t.Errorf("%s calls %s: no row of localapi.Routes", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Errorf("found %d API paths in the page's scripts: is the pattern still right?", n)
	}
}

func pageRoute(p string, patterns []*regexp.Regexp, prefixes []string) bool {
	for _, re := range patterns {
		if re.MatchString(p) {
			return true
		}
	}
	for _, pre := range prefixes {
		if strings.HasSuffix(p, "/") && pre == p {
			return true
		}
	}
	return false
}
