package firmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// SystemdMounter has PID 1 mount sticks, so the agent itself needs no
// CAP_SYS_ADMIN: each mount is an instance of the fixed template unit
// boxagent-mount@.service (rw-sda1, ro-sda1), started and stopped over the
// system bus, whose ExecStart runs `boxagent mount-helper` as root
// (mount_helper.go): the helper derives the mount point and options
// itself, and the FAT files belong to the agent's user (uid=, gid=,
// umask=0077), so it can write the package while nobody else can read the
// stick's files.
//
// The system bus decides who may call it: systemd asks polkit for
// org.freedesktop.systemd1.manage-units naming the unit, and the package's
// polkit rule grants it to the boxagent user for these units alone
// (deploy/systemd/SECURITY.md). A transient unit would need the grant for
// StartTransientUnit, which systemd before 256 gives polkit without the
// unit's name: any unit, as root.
type SystemdMounter struct {
	// Paths are the host's /dev and mountinfo, and MountBase, where the
	// helper mounts.
	Paths  HostPaths
	Logger *slog.Logger

	mu   sync.Mutex
	conn *sddbus.Conn
	// dial replaces the system bus connection in tests.
	dial func(ctx context.Context) (*sddbus.Conn, error)
}

var _ Mounter = (*SystemdMounter)(nil)

// Close drops the bus connection.
func (m *SystemdMounter) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		m.conn.Close()
		m.conn = nil
	}
}

// bus connects on first use, and again after the connection died (a
// dbus-daemon restart must not leave the agent unable to mount).
func (m *SystemdMounter) bus(ctx context.Context) (*sddbus.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil && m.conn.Connected() {
		return m.conn, nil
	}
	if m.conn != nil {
		m.conn.Close()
		m.conn = nil
	}
	dial := m.dial
	if dial == nil {
		dial = sddbus.NewSystemConnectionContext
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot reach systemd on the system bus: %w", err)
	}
	m.conn = c
	return c, nil
}

func (m *SystemdMounter) log() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

// MountUnit is the unit of boxagent-mount@.service that mounts device
// dev ("sda1") read-only or read-write.
func MountUnit(readOnly bool, dev string) string {
	return "boxagent-mount@" + MountInstance(readOnly, dev) + ".service"
}

// Mount starts the template unit's instance for req's device and mode and
// waits for its job; the helper mounts at MountBase/<stick id>, which must
// be req.Target. A remount stops the instance that holds req.Target and
// starts the other mode's: a fresh mount also drops the stick's pages
// from the cache.
func (m *SystemdMounter) Mount(ctx context.Context, req MountRequest) error {
	c, err := m.bus(ctx)
	if err != nil {
		return err
	}
	if req.Remount {
		src, ok := m.sourceOf(req.Target)
		if !ok {
			return fmt.Errorf("cannot remount %s: nothing is mounted there", req.Target)
		}
		if err := m.Unmount(ctx, req.Target); err != nil {
			return fmt.Errorf("cannot remount %s: %w", req.Target, err)
		}
		req.Source, req.Remount = src, false
	}
	dev, ok := strings.CutPrefix(req.Source, m.Paths.Dev+"/")
	if !ok || req.Source == "" {
		return fmt.Errorf("cannot mount on %s: %q is not a device under %s", req.Target, req.Source, m.Paths.Dev)
	}
	// The helper makes the mount point, in a folder that must be the
	// agent's (or root's): the agent makes it.
	if err := os.MkdirAll(filepath.Dir(req.Target), 0o700); err != nil {
		return fmt.Errorf("cannot create the mount points' folder: %w", err)
	}
	unit := MountUnit(req.ReadOnly, dev)
	m.log().Debug("starting mount unit", "unit", unit, "target", req.Target)
	res, err := m.job(ctx, c, unit, func(ch chan<- string) (int, error) {
		return c.StartUnitContext(ctx, unit, "replace", ch)
	})
	if err != nil {
		if isDBusError(err, "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") {
			return fmt.Errorf("cannot mount %s: systemd refused the agent's user (%v); the polkit rule of the package (50-boxagent.rules) grants it", req.Source, err)
		}
		return fmt.Errorf("cannot mount %s: %w", req.Source, err)
	}
	if res != "done" {
		why := m.failure(ctx, c, unit)
		if !req.ReadOnly && strings.Contains(why, "read-only") {
			return fmt.Errorf("cannot mount %s: %w (%s)", req.Source, ErrReadOnly, why)
		}
		return fmt.Errorf("cannot mount %s (%s): unit %s: job %s, %s", req.Source, req.FSType, unit, res, why)
	}
	if src, ok := m.sourceOf(req.Target); !ok || src != req.Source {
		m.stop(ctx, c, unit, req.Target)
		return fmt.Errorf("cannot mount %s: unit %s did not mount it at %s (mounted: %q)", req.Source, unit, req.Target, src)
	}
	return nil
}

// sourceOf is the device mounted at dir, from mountinfo.
func (m *SystemdMounter) sourceOf(dir string) (string, bool) {
	all, err := Mounts(m.Paths)
	if err != nil {
		return "", false
	}
	for _, mt := range all {
		if mt.Dir == dir {
			return mt.Source, true
		}
	}
	return "", false
}

// Unmount stops the unit that mounted dir (its ExecStop unmounts, never
// lazily) and removes the mount point.
func (m *SystemdMounter) Unmount(ctx context.Context, dir string) error {
	src, ok := m.sourceOf(dir)
	if !ok {
		os.Remove(dir)
		return nil
	}
	dev, ok := strings.CutPrefix(src, m.Paths.Dev+"/")
	if !ok {
		return fmt.Errorf("cannot unmount %s: %s was not mounted by the agent", dir, src)
	}
	c, err := m.bus(ctx)
	if err != nil {
		return err
	}
	for _, ro := range []bool{false, true} {
		unit := MountUnit(ro, dev)
		st, err := c.ListUnitsByNamesContext(ctx, []string{unit})
		if err != nil {
			return fmt.Errorf("cannot unmount %s: %w", dir, err)
		}
		if len(st) == 0 || st[0].ActiveState != "active" {
			continue
		}
		if err := m.stop(ctx, c, unit, dir); err != nil {
			return err
		}
	}
	if _, still := m.sourceOf(dir); still {
		return fmt.Errorf("cannot unmount %s: it is in use (a shell or a program has a file open there), or no unit of the agent's mounted it", dir)
	}
	os.Remove(dir)
	return nil
}

func (m *SystemdMounter) stop(ctx context.Context, c *sddbus.Conn, unit, dir string) error {
	res, err := m.job(ctx, c, unit, func(ch chan<- string) (int, error) {
		return c.StopUnitContext(ctx, unit, "replace", ch)
	})
	if err != nil {
		return fmt.Errorf("cannot unmount %s: %w", dir, err)
	}
	if res != "done" {
		why := m.failure(ctx, c, unit)
		if strings.Contains(why, "busy") || res == "failed" {
			return fmt.Errorf("cannot unmount %s: it is in use (a shell or a program has a file open there): unit %s: job %s, %s", dir, unit, res, why)
		}
		return fmt.Errorf("cannot unmount %s: unit %s: job %s, %s", dir, unit, res, why)
	}
	return nil
}

// job queues a job with start and waits for its JobRemoved signal (the
// connection subscribes to it; no polling) or for ctx. A job still queued
// when ctx ends is left to PID 1: cancelling it could leave a half-done
// mount nobody tracks.
func (m *SystemdMounter) job(ctx context.Context, c *sddbus.Conn, unit string, start func(chan<- string) (int, error)) (string, error) {
	ch := make(chan string, 1) // buffered: the connection must never block on us
	if _, err := start(ch); err != nil {
		return "", err
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return "", fmt.Errorf("gave up waiting for the job of unit %s: %w", unit, ctx.Err())
	}
}

// failure says why a unit's job failed, from its Result= (exit-code,
// timeout, ...) and the umount/mount status, and resets a failed
// unit so that its name can be used again.
func (m *SystemdMounter) failure(ctx context.Context, c *sddbus.Conn, unit string) string {
	parts := []string{}
	if p, err := c.GetUnitTypePropertyContext(ctx, unit, "Mount", "Result"); err == nil {
		if s, ok := p.Value.Value().(string); ok {
			parts = append(parts, "result "+s)
		}
	}
	if p, err := c.GetUnitPropertyContext(ctx, unit, "ActiveState"); err == nil {
		if s, ok := p.Value.Value().(string); ok {
			parts = append(parts, "state "+s)
			if s == "failed" {
				if err := c.ResetFailedUnitContext(ctx, unit); err != nil {
					m.log().Warn("cannot reset the failed mount unit", "unit", unit, "err", err)
				}
			}
		}
	}
	if len(parts) == 0 {
		return "no result from systemd (journalctl -u " + unit + " says more)"
	}
	return strings.Join(parts, ", ") + " (journalctl -u " + unit + " says more)"
}

func isDBusError(err error, names ...string) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		for _, n := range names {
			if de.Name == n {
				return true
			}
		}
	}
	var dep *dbus.Error
	if errors.As(err, &dep) {
		for _, n := range names {
			if dep.Name == n {
				return true
			}
		}
	}
	return false
}

// Mounter choices of the [firmware] mounter key.
const (
	MounterAuto    = "auto"    // systemd when PID 1 is systemd and the agent is not root
	MounterSystemd = "systemd" // boxagent-mount@.service instances (SystemdMounter)
	MounterDirect  = "direct"  // mount(2) (DirectMounter, needs CAP_SYS_ADMIN)
)

// validMounter checks the [firmware] mounter key ("" is auto).
func validMounter(s string) error {
	switch s {
	case "", MounterAuto, MounterSystemd, MounterDirect:
		return nil
	}
	return &ConfigError{"mounter", fmt.Sprintf("%q is not one of auto, systemd, direct", s)}
}

// ChooseMounter picks the Mounter for setting (auto, systemd, direct; ""
// is auto). Auto takes systemd's when PID 1 is systemd (sd_booted: the
// directory /run/systemd/system exists) and the agent does not run as
// root: a root agent (BusyBox init boards) mounts directly, as it always
// could. It returns the choice's name for the log and the health page.
func ChooseMounter(setting string, hp HostPaths, log *slog.Logger) (Mounter, string, error) {
	if err := validMounter(setting); err != nil {
		return nil, "", err
	}
	if setting == "" || setting == MounterAuto {
		setting = MounterDirect
		if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() && os.Geteuid() != 0 {
			setting = MounterSystemd
		}
	}
	if setting == MounterSystemd {
		return &SystemdMounter{Paths: hp, Logger: log}, setting, nil
	}
	return DirectMounter{}, setting, nil
}
