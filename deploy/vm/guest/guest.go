// Package guest holds the fixtures of tests that run inside boxagent's
// virtual board (package github.com/boxagent/boxagent/deploy/vm): daemons,
// network namespaces, kernel modules, hot-plugged USB sticks.
//
// Every fixture is started with a deadline, writes its logs into the results
// share (LogDir: they survive a guest that times out), and is stopped at the
// test's cleanup with nothing left running: processes get Pdeathsig and
// their own process group, and the whole group is killed.
//
// One file per daemon: proc.go is the common process handling, dbus.go the
// system bus, netns.go namespaces/veth/VLANs, dnsmasq.go DHCP, modprobe.go
// modules, uevent.go kernel uevents, stick.go USB sticks. Bluetooth,
// PulseAudio, hostapd and wpa_supplicant fixtures follow the same shape.
//
// Guest-side tests carry the build tag "lab" and call vm.RequireGuest first;
// the host runs them with vm.RunGoTests.
package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// LogDir returns t's folder for daemon logs in the results share, or a
// temporary folder outside the virtual board.
func LogDir(t testing.TB) string {
	t.Helper()
	res := vm.ResultsDir()
	if res == "" {
		hostLogDirs.Lock()
		defer hostLogDirs.Unlock()
		if d, ok := hostLogDirs.m[t]; ok {
			return d
		}
		d := t.TempDir()
		hostLogDirs.m[t] = d
		t.Cleanup(func() {
			hostLogDirs.Lock()
			delete(hostLogDirs.m, t)
			hostLogDirs.Unlock()
		})
		return d
	}
	name := strings.NewReplacer("/", "_", " ", "_", ":", "_").Replace(t.Name())
	dir := filepath.Join(res, "logs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("cannot create the log folder: %v", err)
	}
	return dir
}

// hostLogDirs keeps LogDir stable per test outside the guest.
var hostLogDirs = struct {
	sync.Mutex
	m map[testing.TB]string
}{m: map[testing.TB]string{}}

// Workaround reports a lab workaround for a known bug, never silently:
// msg (which starts "WORKAROUND <name>") in the test's log and as a line
// in dir/workarounds.log, where the results share keeps it.
func Workaround(t testing.TB, dir, msg string) {
	t.Helper()
	t.Log(msg)
	if f, err := os.OpenFile(filepath.Join(dir, "workarounds.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%s %s: %s\n", time.Now().Format(time.RFC3339), t.Name(), msg)
		f.Close()
	}
}
