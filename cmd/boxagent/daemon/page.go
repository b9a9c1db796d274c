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
		if err := a.authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="boxagent"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		page.ServeHTTP(w, r)
	}))
	return mux
}
