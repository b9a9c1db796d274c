package firmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// SystemdMounter has PID 1 mount sticks: each mount is a transient .mount
// unit started over the system bus (Manager.StartTransientUnit, what
// `systemd-mount` does), so the agent itself needs no CAP_SYS_ADMIN. The
// vfat files belong to the agent's user (uid=, gid=, umask=0077), so it can
// write the package while nobody else can read the stick's files.
//
// The system bus decides who may call it: systemd asks polkit for
// org.freedesktop.systemd1.manage-units, and the package's polkit rule
// grants it to the boxagent user (deploy/systemd/SECURITY.md).
type SystemdMounter struct {
	// UID and GID own the files of a FAT mount; zero values mean the
	// agent's own (os.Getuid, os.Getgid).
	UID, GID int
	Logger   *slog.Logger

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

// mountOptions are the options the unit mounts with: the filesystem's
// data, nosuid/nodev/noexec (a stick's content is data), ro or rw, and
// for FAT the owner, since FAT has no owners of its own.
func (m *SystemdMounter) mountOptions(req MountRequest) string {
	opts := []string{"nosuid", "nodev", "noexec"}
	if req.ReadOnly {
		opts = append([]string{"ro"}, opts...)
	} else {
		opts = append([]string{"rw"}, opts...)
	}
	if d := MountData(req.FSType); d != "" {
		opts = append(opts, d)
	}
	switch req.FSType {
	case "vfat", "exfat", "ntfs3":
		uid, gid := m.UID, m.GID
		if uid == 0 && gid == 0 {
			uid, gid = os.Getuid(), os.Getgid()
		}
		opts = append(opts, "uid="+strconv.Itoa(uid), "gid="+strconv.Itoa(gid), "umask=0077")
	}
	return strings.Join(opts, ",")
}

// Mount starts a transient mount unit for req and waits for its job. A
// remount stops the unit and starts it again with the new options: PID 1
// cannot change a loaded unit's Options=, and a fresh mount also drops
// the stick's pages from the cache.
func (m *SystemdMounter) Mount(ctx context.Context, req MountRequest) error {
	unit, err := MountUnitName(req.Target)
	if err != nil {
		return err
	}
	c, err := m.bus(ctx)
	if err != nil {
		return err
	}
	if req.Remount {
		what, err := c.GetUnitTypePropertyContext(ctx, unit, "Mount", "What")
		if err != nil {
			return fmt.Errorf("cannot remount %s: systemd does not know its unit %s: %w", req.Target, unit, err)
		}
		src, _ := what.Value.Value().(string)
		if src == "" {
			return fmt.Errorf("cannot remount %s: unit %s has no What=", req.Target, unit)
		}
		if err := m.stop(ctx, c, unit, req.Target); err != nil {
			return fmt.Errorf("cannot remount %s: %w", req.Target, err)
		}
		req.Source, req.Remount = src, false
	}
	if req.Source == "" {
		return fmt.Errorf("cannot mount on %s: no source device", req.Target)
	}
	// The agent makes the mount point itself: one PID 1 made would be
	// root's, and the agent could not remove it after the unmount.
	if err := os.MkdirAll(req.Target, 0o700); err != nil {
		return fmt.Errorf("cannot create the mount point: %w", err)
	}
	props := []sddbus.Property{
		sddbus.PropDescription("boxagent: USB stick " + req.Source),
		{Name: "What", Value: dbus.MakeVariant(req.Source)},
		{Name: "Where", Value: dbus.MakeVariant(req.Target)},
		{Name: "Type", Value: dbus.MakeVariant(req.FSType)},
		{Name: "Options", Value: dbus.MakeVariant(m.mountOptions(req))},
		// A stick is not part of the boot: no ordering against
		// local-fs.target, only the stop at shutdown (umount.target).
		{Name: "DefaultDependencies", Value: dbus.MakeVariant(false)},
		{Name: "Conflicts", Value: dbus.MakeVariant([]string{"umount.target"})},
		{Name: "Before", Value: dbus.MakeVariant([]string{"umount.target"})},
	}
	m.log().Debug("starting mount unit", "unit", unit, "what", req.Source, "options", m.mountOptions(req))
	res, err := m.job(ctx, c, unit, func(ch chan<- string) (int, error) {
		return c.StartTransientUnitContext(ctx, unit, "fail", props, ch)
	})
	if err != nil {
		os.Remove(req.Target)
		if isDBusError(err, "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") {
			return fmt.Errorf("cannot mount %s: systemd refused the agent's user (%v); the polkit rule of the package (50-boxagent.rules) grants it", req.Source, err)
		}
		return fmt.Errorf("cannot mount %s: %w", req.Source, err)
	}
	if res != "done" {
		why := m.failure(ctx, c, unit)
		os.Remove(req.Target)
		if !req.ReadOnly && strings.Contains(why, "read-only") {
			return fmt.Errorf("cannot mount %s: %w (%s)", req.Source, ErrReadOnly, why)
		}
		return fmt.Errorf("cannot mount %s (%s): unit %s: job %s, %s", req.Source, req.FSType, unit, res, why)
	}
	return nil
}

// Unmount stops the mount unit of dir (systemd runs umount, never
// lazily) and removes the mount point.
func (m *SystemdMounter) Unmount(ctx context.Context, dir string) error {
	unit, err := MountUnitName(dir)
	if err != nil {
		return err
	}
	c, err := m.bus(ctx)
	if err != nil {
		return err
	}
	if err := m.stop(ctx, c, unit, dir); err != nil {
		return err
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
// transient unit so that its name can be used again.
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
	MounterSystemd = "systemd" // transient mount units (SystemdMounter)
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
func ChooseMounter(setting string, log *slog.Logger) (Mounter, string, error) {
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
		return &SystemdMounter{Logger: log}, setting, nil
	}
	return DirectMounter{}, setting, nil
}
