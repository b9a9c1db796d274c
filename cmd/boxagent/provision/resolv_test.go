package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanResolvConf: /etc/resolv.conf becomes the agent's link only
// where no program keeps it; a file or another daemon's link stays, with a
// note saying where the uplinks' servers are.
func TestPlanResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		make    func(etc string) error
		link    bool   // planned: a link to the agent's file
		noteHas string // "" for no note
	}{
		{"absent", func(string) error { return nil }, true, ""},
		{"Buildroot's link to /tmp", func(etc string) error { return os.Symlink("../tmp/resolv.conf", filepath.Join(etc, "resolv.conf")) }, true, ""},
		{"already the agent's", func(etc string) error {
			return os.Symlink("/run/boxagent/resolv.conf", filepath.Join(etc, "resolv.conf"))
		}, false, ""},
		{"systemd-resolved's stub", func(etc string) error {
			return os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(etc, "resolv.conf"))
		}, false, ""},
		{"resolvconf's", func(etc string) error {
			return os.Symlink("/run/resolvconf/resolv.conf", filepath.Join(etc, "resolv.conf"))
		}, false, "kept by resolvconf"},
		{"a file", func(etc string) error {
			return os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 9.9.9.9\n"), 0o644)
		}, false, "a file of the image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			etc := filepath.Join(dir, "etc")
			if err := os.Mkdir(etc, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(etc); err != nil {
				t.Fatal(err)
			}
			r, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			e, note, err := planResolvConf(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := e != nil && e.kind == 'l' && e.link == "/run/boxagent/resolv.conf"; got != tc.link {
				t.Errorf("planned %+v, want a link: %v", e, tc.link)
			}
			if tc.noteHas == "" && note != "" || !strings.Contains(note, tc.noteHas) {
				t.Errorf("note %q, want one with %q", note, tc.noteHas)
			}
		})
	}
}
