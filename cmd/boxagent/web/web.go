// Package web is the control page: static files embedded in the binary,
// no build step. The page is a thin client of the local API; it holds no
// logic of its own.
//
// Each page's strings live in their own catalogue file beside the shared
// one (static/i18n/<lang>.json and static/i18n/<page>.<lang>.json), so a
// page can be worked on alone; the browser gets one merged catalogue per
// language from /i18n/<lang>.json.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed static
var static embed.FS

// Languages are the catalogues every page has.
var Languages = []string{"en", "zh-CN"}

// Handler serves the page.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lang, ok := strings.CutPrefix(r.URL.Path, "/i18n/"); ok {
			lang = strings.TrimSuffix(lang, ".json")
			data, err := mergedCatalogue(lang)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write(data)
			return
		}
		files.ServeHTTP(w, r)
	})
}

var (
	cataloguesOnce sync.Once
	catalogues     map[string][]byte
	cataloguesErr  error
)

// mergedCatalogue is every catalogue file of one language as one JSON
// object, built once: the files are embedded and never change.
func mergedCatalogue(lang string) ([]byte, error) {
	cataloguesOnce.Do(func() {
		catalogues = map[string][]byte{}
		for _, l := range Languages {
			m, err := Catalogue(l)
			if err != nil {
				cataloguesErr = err
				return
			}
			catalogues[l], _ = json.Marshal(m)
		}
	})
	if cataloguesErr != nil {
		return nil, cataloguesErr
	}
	data, ok := catalogues[lang]
	if !ok {
		return nil, fmt.Errorf("no catalogue for %q", lang)
	}
	return data, nil
}

// Catalogue merges the shared and per-page catalogue files of a language;
// a key defined twice is an error.
func Catalogue(lang string) (map[string]string, error) {
	names, err := fs.Glob(static, "static/i18n/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".json")
		if base != lang && !strings.HasSuffix(base, "."+lang) {
			continue
		}
		data, err := fs.ReadFile(static, name)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for k, v := range m {
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("%s: key %q is defined in another catalogue file too", name, k)
			}
			out[k] = v
		}
	}
	return out, nil
}

// Public says whether a path is served before a login: the login page and
// the assets it loads.
func Public(path string) bool {
	switch path {
	case "/login.html", "/login.js", "/style.css", "/favicon.ico":
		return true
	}
	return false
}
