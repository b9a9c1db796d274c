package provision

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
)

// imageKeyPath is the image's fingerprint key, inside the root.
var imageKeyPath = path.Join("var/lib/boxagent", config.FingerprintKeyFile)

// useImageKey fingerprints secrets under the image's own key, the one its
// agent will use, so the image's journal reads alike before and after
// first boot. An image without one gets a new key, returned to be written
// by commit (through the root, never out of the image) once the journal is
// open; a dry run or a refused run writes nothing.
func useImageKey(r *os.Root) (newKey []byte, err error) {
	data, err := r.ReadFile(imageKeyPath)
	switch {
	case err == nil:
		key, err := config.ParseFingerprintKey(data)
		if err != nil {
			return nil, fmt.Errorf("cannot use the image's /%s: %w", imageKeyPath, err)
		}
		config.SetFingerprintKey(key)
		return nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("cannot read the image's /%s: %w", imageKeyPath, err)
	}
	key, err := config.NewFingerprintKey()
	if err != nil {
		return nil, err
	}
	config.SetFingerprintKey(key)
	return key, nil
}

// writeImageKey writes a new key into the image, 0600, atomically, owned
// by the agent's user when uid is not -1.
func writeImageKey(r *os.Root, key []byte, uid, gid int) error {
	tmp := imageKeyPath + ".tmp"
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot make the image's fingerprint key: %w", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil && uid != -1 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, imageKeyPath)
	}
	if err != nil {
		r.Remove(tmp)
		return fmt.Errorf("cannot make the image's fingerprint key: %w", err)
	}
	if d, err := r.Open(path.Dir(imageKeyPath)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
