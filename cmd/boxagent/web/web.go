// Package web is the control page: static files embedded in the binary,
// no build step. The page is a thin client of the local API; it holds no
// logic of its own. (The full page is the issue "The local control page";
// this is its first screen.)
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the page.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	return http.FileServerFS(sub)
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
