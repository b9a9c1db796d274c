package daemon

import (
	"net/http"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/web"
)

// pageHandler serves the control page beside the API on the TCP listener.
// Every request names this box in its Host header (DNS rebinding), and
// only the login page and what it needs are served before a login.
func (a *agent) pageHandler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	page := web.Handler()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.sessions.Authenticated(r) && !web.Public(r.URL.Path) {
			http.Redirect(w, r, "/login.html", http.StatusSeeOther)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		page.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.sessions.CheckHost(r); err != nil {
			localapi.WriteJSON(w, err.Status, map[string]any{"error": err})
			return
		}
		mux.ServeHTTP(w, r)
	})
}
