//go:build !linux

package firmware

import (
	"context"
	"errors"
	"os"
)

// DirectMounter mounts with mount(2), on Linux only.
type DirectMounter struct{}

var errNotLinux = errors.New("mounting sticks is Linux only")

func (DirectMounter) Mount(ctx context.Context, req MountRequest) error { return errNotLinux }
func (DirectMounter) Unmount(ctx context.Context, dir string) error     { return errNotLinux }

func mountAt(source, target, at, fstype string, ro bool, data string) error { return errNotLinux }
func openNoFollow(path string) (*os.File, error)                            { return nil, errNotLinux }
func fileOwner(fi os.FileInfo) int                                          { return -1 }
