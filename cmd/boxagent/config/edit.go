package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// editMu makes the agent the config file's one writer: every edit (uplinks
// from the CLI and the page, saved Wi-Fi networks from joins and the
// hotspot, headsets' auto_connect) reads the file, changes it and writes it
// back whole, so two edits at once without it lose one of them.
var editMu sync.Mutex

// Edit changes the config file at path under the one lock: change gets the
// file's text (empty when there is none) and its config, and returns the
// new text, which must parse (Edit checks) and which it writes atomically,
// mode 0600 (the file holds keys), the old owner kept. It returns the
// config now in the file. An invalid file is refused and left alone, and
// nothing is written when change fails or returns the same text.
func Edit(path string, change func(text []byte, cur *Config) ([]byte, error)) (*Config, error) {
	editMu.Lock()
	defer editMu.Unlock()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read the config file: %w", err)
	}
	cur, err := Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("the config file is invalid (fix it first):\n%w", err)
	}
	text, err := change(data, cur)
	if err != nil {
		return nil, err
	}
	next, err := Parse(path, text)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(text, data) {
		return next, nil
	}
	if err := WriteFileAtomic(path, text, 0o600); err != nil {
		return nil, err
	}
	return next, nil
}

// WriteFileAtomic replaces the file at path with data so that a power cut
// leaves the old file or the new one, never half of one. The owner of the
// old file is kept (an administrator's file stays theirs when the root
// daemon rewrites it) and a missing folder is created.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode, atomicfile.Options{KeepOwner: true, CreateDir: true})
}
