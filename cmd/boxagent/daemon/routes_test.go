package daemon

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

// TestEveryRouteHandled: once the domains have registered, every row of
// the route table has its handler (Server.Handle refuses a call that is
// not a row, so the two cannot differ).
func TestEveryRouteHandled(t *testing.T) {
	root := t.TempDir()
	a := &agent{paths: paths.Paths{Root: root}, cfgPath: filepath.Join(root, "etc/boxagent/config.toml"),
		log: slog.New(slog.DiscardHandler), events: localapi.NewBroker(8), cfg: config.Default()}
	api := localapi.New(localapi.Options{Backend: a, Events: a.events, Logger: a.log})
	a.api = api
	for _, d := range a.buildDomains() {
		d.Register(api)
	}
	for _, r := range api.Unbound() {
		t.Errorf("%s has no handler", r.Pattern())
	}
}
