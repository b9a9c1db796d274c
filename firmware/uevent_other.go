//go:build !linux

package firmware

import "errors"

type ueventConn struct{}

var errOverrun = errors.New("uevents were lost")

func openUevents() (*ueventConn, error) {
	return nil, errors.New("cannot follow USB sticks: uevents are Linux only")
}

func (c *ueventConn) read() (uevent, error) { return uevent{}, errors.New("uevents are Linux only") }
func (c *ueventConn) close() error          { return nil }

func (c *ueventConn) udevPending(string) bool { return false }
