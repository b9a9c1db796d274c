// Package nofollow opens a path as an O_PATH descriptor with no component
// of it a symbolic link (openat2 RESOLVE_NO_SYMLINKS): the root helpers
// reach the agent's folders, which the agent's less trusted user can
// write, without a link planted there moving them elsewhere.
package nofollow

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open opens path as O_PATH, plus flags (unix.O_DIRECTORY to insist on a
// folder), following no link.
func Open(path string, flags int) (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   uint64(unix.O_PATH | unix.O_CLOEXEC | flags),
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open %s without following links: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
