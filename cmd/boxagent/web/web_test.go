package web

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"sort"
	"testing"
)

func catalogue(t *testing.T, lang string) map[string]string {
	t.Helper()
	data, err := fs.ReadFile(static, "static/i18n/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", lang, err)
	}
	return m
}

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	en, zh := catalogue(t, "en"), catalogue(t, "zh-CN")
	var missing []string
	for k := range en {
		if _, ok := zh[k]; !ok {
			missing = append(missing, "zh-CN lacks "+k)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			missing = append(missing, "en lacks "+k)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}
	for k, v := range zh {
		if v == "" {
			t.Errorf("zh-CN %s is empty", k)
		}
	}
}

func TestEveryPageStringIsInTheCatalogue(t *testing.T) {
	en := catalogue(t, "en")
	re := regexp.MustCompile(`(?:data-i18n="|t\(")([a-z.]+)"`)
	for _, name := range []string{"static/index.html", "static/app.js"} {
		data, err := fs.ReadFile(static, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s uses %q, which the catalogue lacks", name, m[1])
			}
		}
	}
}

func TestPublicPaths(t *testing.T) {
	for path, want := range map[string]bool{"/login.html": true, "/login.js": true, "/style.css": true, "/": false, "/app.js": false, "/index.html": false} {
		if Public(path) != want {
			t.Errorf("Public(%q) = %v", path, !want)
		}
	}
}
