package daemon

import (
	"net/http"

	"github.com/boxagent/boxagent/cmd/boxagent/web"
)

// pageHandler serves the control page beside the API on the TCP listener.
func (a *agent) pageHandler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	page := web.Handler()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the login page and what it needs are served before a login.
		if !a.sessions.Authenticated(r) && !web.Public(r.URL.Path) {
			http.Redirect(w, r, "/login.html", http.StatusSeeOther)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		page.ServeHTTP(w, r)
	}))
	return mux
}
