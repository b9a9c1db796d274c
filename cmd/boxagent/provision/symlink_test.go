package provision

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSymlinkedJournalStaysInImage: an image whose journal.db (or its
// folder) is a symlink to a host path made provision --root IMAGE create
// and chmod the host's file: bbolt opened the path, following the link out
// of the image. The journal is opened through the image's root now, the
// last step without following a link, and the run is refused.
func TestSymlinkedJournalStaysInImage(t *testing.T) {
	for _, what := range []string{"journal.db", "folder"} {
		t.Run(what, func(t *testing.T) {
			root := image(t)
			host := t.TempDir()
			victim := filepath.Join(host, "victim")
			if err := os.WriteFile(victim, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "var/lib/boxagent")
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(host, "journal.db")
			if what == "folder" {
				must(t, os.Symlink(host, dir))
			} else {
				must(t, os.MkdirAll(dir, 0o700))
				must(t, os.Symlink(target, filepath.Join(dir, "journal.db")))
			}
			must(t, os.Symlink(victim, filepath.Join(host, "fingerprint.key")))
			_, err := Apply(load(t, "provision.toml"), options(t, root))
			if err == nil {
				t.Error("provisioning through a symlinked journal succeeded")
			}
			if _, err := os.Lstat(target); err == nil {
				t.Errorf("the host's %s was created through the image's symlink", target)
			}
			if fi, err := os.Stat(victim); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o644 {
				t.Errorf("the host's victim changed: %v %v", fi, err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
