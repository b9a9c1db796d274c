package web

import (
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"regexp"
	"sort"
	"testing"
)

func catalogue(t *testing.T, lang string) map[string]string {
	t.Helper()
	m, err := Catalogue(lang)
	if err != nil {
		t.Fatal(err)
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
	re := regexp.MustCompile(`(?:data-i18n="|t\(")([a-z0-9._-]+)"`)
	names, _ := fs.Glob(static, "static/*.js")
	pages, _ := fs.Glob(static, "static/pages/*.js")
	for _, name := range append(append([]string{"static/index.html"}, names...), pages...) {
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

func TestMergedCatalogueIsServed(t *testing.T) {
	for _, lang := range Languages {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/i18n/"+lang+".json", nil))
		var m map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &m); rec.Code != 200 || err != nil {
			t.Fatalf("%s: %d %v", lang, rec.Code, err)
		}
		if want := catalogue(t, lang); len(m) != len(want) || m["nav.bluetooth"] == "" {
			t.Errorf("%s: served %d keys, the files have %d", lang, len(m), len(want))
		}
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/i18n/fr.json", nil))
	if rec.Code != 404 {
		t.Errorf("unknown language: %d", rec.Code)
	}
}

func TestPublicPaths(t *testing.T) {
	for path, want := range map[string]bool{"/login.html": true, "/login.js": true, "/style.css": true, "/": false, "/app.js": false, "/index.html": false} {
		if Public(path) != want {
			t.Errorf("Public(%q) = %v", path, !want)
		}
	}
}
