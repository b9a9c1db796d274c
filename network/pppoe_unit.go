package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// Choices of the [network] pppd key: how pppd runs.
const (
	PPPDAuto    = "auto"    // systemd when PID 1 is systemd, else child
	PPPDSystemd = "systemd" // an instance of boxagent-pppoe@.service per session (unitRunner)
	PPPDChild   = "child"   // the agent's child (childRunner)
)

// validPPPD checks the [network] pppd key ("" is auto).
func validPPPD(s string) error {
	switch s {
	case "", PPPDAuto, PPPDSystemd, PPPDChild:
		return nil
	}
	return fmt.Errorf("%q is not one of \"auto\", \"systemd\", \"child\"", s)
}

// pppdProblems is the problem of the [network] pppd key, if any.
func pppdProblems(s string) []FieldError {
	if err := validPPPD(s); err != nil {
		return []FieldError{{Key: "pppd", Msg: err.Error()}}
	}
	return nil
}

// systemdBooted is sd_booted(): PID 1 is systemd when it made
// /run/systemd/system. A variable for tests.
var systemdBooted = func() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ChoosePPPD resolves setting (auto, systemd, child; "" is auto) to
// systemd or child. Auto takes systemd when PID 1 is systemd and the
// session runs in the agent's own namespace (ns not open): PID 1 starts
// units in its own namespace, which is the agent's on a box; sessions in
// another namespace (the host tests') stay children.
func ChoosePPPD(setting string, ns netns.NsHandle) (string, error) {
	if err := validPPPD(setting); err != nil {
		return "", err
	}
	switch setting {
	case PPPDSystemd:
		if ns.IsOpen() {
			return "", errors.New("pppd as a systemd unit runs in PID 1's network namespace, not the uplinks' (set [network] pppd = \"child\")")
		}
		return PPPDSystemd, nil
	case PPPDChild:
		return PPPDChild, nil
	}
	if systemdBooted() && !ns.IsOpen() {
		return PPPDSystemd, nil
	}
	return PPPDChild, nil
}

func newPPPDRunner(uplink string, ns netns.NsHandle, cfg PPPoEConfig, log *slog.Logger) (pppdRunner, error) {
	how, err := ChoosePPPD(cfg.Runner, ns)
	if err != nil {
		return nil, err
	}
	if how == PPPDChild {
		return childRunner{pppd: cfg.PPPD, ns: ns}, nil
	}
	return &unitRunner{uplink: uplink, cfg: cfg, log: log, dial: sddbus.NewSystemConnectionContext}, nil
}

// PPPoEInstance is the instance of boxagent-pppoe@.service of uplink's
// session: the uplink's name escaped as systemd-escape does (a link name
// may hold "-" and bytes unit names refuse).
func PPPoEInstance(uplink string) string {
	var b strings.Builder
	for i := range len(uplink) {
		c := uplink[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.' && i > 0
		if ok {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// PPPoEUnitName is the unit of uplink's session,
// boxagent-pppoe@<instance>.service: an instance of the package's fixed
// template, whose name the polkit rule (deploy/systemd/50-boxagent.rules)
// lets the agent's user start and stop, and no other unit.
func PPPoEUnitName(uplink string) string {
	return "boxagent-pppoe@" + PPPoEInstance(uplink) + ".service"
}

// DefaultPPPoESocketDir is where the agent waits for each session's
// helper: the agent's runtime folder.
const DefaultPPPoESocketDir = "/run/boxagent/pppoe"

// unitRunner runs each pppd as an instance of boxagent-pppoe@.service,
// started over the system bus: PID 1 runs `boxagent pppoe-helper` as root,
// outside the agent's cgroup and hardening; the helper connects to a unix
// socket the agent listens on for that session, reads the session's
// settings and password from it (PPPoESession: checked there, for the
// agent's user is less trusted than root), and execs pppd with its output
// on that socket: the same log lines the child path parses, DNS servers
// included. The password is on no command line, in no unit file, no
// property and no file.
//
// An agent restart replaces the session, it does not adopt it: the socket
// dies with the agent, and a pppd nobody reads could not report its
// address, DNS servers or hang-ups. The agent stops its units when it
// stops, and a unit a killed agent left is stopped before a new one
// starts. The template has Restart=no and no dependency on the agent's
// service (PartOf= or BindsTo= would restart the session with the agent).
type unitRunner struct {
	uplink string
	cfg    PPPoEConfig
	log    *slog.Logger
	dial   func(context.Context) (*sddbus.Conn, error)
}

func (*unitRunner) name() string { return PPPDSystemd }

// passwordFD is the helper's: the agent does not build pppd's command
// line for a unit, the helper does.
func (*unitRunner) passwordFD() int { return helperPasswordFD }

func (r *unitRunner) socketPath() string {
	dir := r.cfg.SocketDir
	if dir == "" {
		dir = DefaultPPPoESocketDir
	}
	return sessionSocket(dir, PPPoEInstance(r.uplink))
}

// sessionSocket is the socket of a session's instance in dir, where the
// agent listens and its helper connects.
func sessionSocket(dir, instance string) string { return filepath.Join(dir, instance+".sock") }

func (r *unitRunner) run(ctx context.Context, _ []string, password, out *os.File, started func(int)) error {
	defer out.Close()
	secret, err := io.ReadAll(io.LimitReader(password, maxSecret+1))
	password.Close()
	if err != nil {
		return fmt.Errorf("cannot read the password pipe: %w", err)
	}
	sess := r.cfg.session(string(secret))
	if err := sess.Check(); err != nil {
		return err
	}
	unit := PPPoEUnitName(r.uplink)
	sock := r.socketPath()
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return fmt.Errorf("cannot make the session sockets' folder: %w", err)
	}
	os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("cannot listen for the session's helper: %w", err)
	}
	defer os.Remove(sock)
	defer ln.Close()
	// Not ctx: the connection would close with it, and the unit's stop
	// needs it after ctx has ended.
	c, err := r.dial(context.Background())
	if err != nil {
		return fmt.Errorf("cannot reach systemd on the system bus: %w", err)
	}
	defer c.Close()
	// Subscribed before the start: no change of the unit is missed.
	updates := make(chan *sddbus.PropertiesUpdate, 256)
	overflow := make(chan error, 1)
	c.SetPropertiesSubscriber(updates, overflow)
	if err := c.Subscribe(); err != nil {
		return fmt.Errorf("cannot subscribe to systemd's signals: %w", err)
	}
	if err := r.clear(ctx, c, unit); err != nil {
		return err
	}
	// The helper's connection: the session's settings go out, pppd's
	// output comes back until pppd ends.
	served := make(chan struct{})
	go func() {
		defer close(served)
		defer out.Close()
		if err := serveHelper(ln, sess, out); err != nil && !errors.Is(err, net.ErrClosed) {
			r.log.Warn("the PPPoE helper's connection failed", "unit", unit, "err", err)
		}
	}()
	defer func() { ln.Close(); <-served }()
	job := make(chan string, 1)
	if _, err = c.StartUnitContext(ctx, unit, "replace", job); err != nil {
		if n := wpabus.ErrorName(err); n == "org.freedesktop.DBus.Error.AccessDenied" || n == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" {
			return fmt.Errorf("cannot start unit %s: systemd refused the agent's user (%v); the polkit rule of the package (50-boxagent.rules) grants it", unit, err)
		}
		return fmt.Errorf("cannot start unit %s: %w", unit, err)
	}
	select {
	case res := <-job:
		if res != "done" {
			return fmt.Errorf("unit %s: start job %s, %s", unit, res, r.result(c, unit))
		}
	case <-ctx.Done():
		return r.stop(c, unit)
	}
	// What came before the start job ended is stale (a new unit is
	// inactive until its job runs); the state now is read once, then
	// signals tell.
	for len(updates) > 0 {
		<-updates
	}
	if ended, err := r.ended(ctx, c, unit); ended {
		return err
	}
	if p, err := c.GetServicePropertyContext(ctx, unit, "MainPID"); err == nil {
		pid, _ := p.Value.Value().(uint32)
		started(int(pid))
	} else {
		started(0)
	}
	for {
		select {
		case u := <-updates:
			if u.UnitName != unit {
				continue
			}
			s, _ := u.Changed["ActiveState"].Value().(string)
			if s != "inactive" && s != "failed" {
				continue
			}
			return fmt.Errorf("unit %s ended: %s", unit, r.result(c, unit))
		case <-overflow:
			// Signals were dropped: read the state instead.
			if ended, err := r.ended(ctx, c, unit); ended {
				return err
			}
		case <-ctx.Done():
			return r.stop(c, unit)
		}
	}
}

// ended reads whether the unit has ended, and why.
func (r *unitRunner) ended(ctx context.Context, c *sddbus.Conn, unit string) (bool, error) {
	st, err := c.ListUnitsByNamesContext(ctx, []string{unit})
	if err != nil {
		return false, nil // the bus is gone: the next signal or stop tells
	}
	if len(st) == 0 || st[0].LoadState != "loaded" || st[0].ActiveState == "inactive" || st[0].ActiveState == "failed" {
		return true, fmt.Errorf("unit %s ended: %s", unit, r.result(c, unit))
	}
	return false, nil
}

// clear stops a unit of the same name a former agent left (a killed
// agent cannot stop its units; its pppd's output pipe is gone), and
// resets a failed one so that its name can be used again.
func (r *unitRunner) clear(ctx context.Context, c *sddbus.Conn, unit string) error {
	st, err := c.ListUnitsByNamesContext(ctx, []string{unit})
	if err != nil {
		return fmt.Errorf("cannot ask systemd about unit %s: %w", unit, err)
	}
	if len(st) == 0 || st[0].LoadState != "loaded" {
		return nil
	}
	switch st[0].ActiveState {
	case "inactive":
		return nil
	case "failed":
		if err := c.ResetFailedUnitContext(ctx, unit); err != nil {
			return fmt.Errorf("cannot reset the failed unit %s: %w", unit, err)
		}
		return nil
	}
	r.log.Info("stopping the unit a former agent left", "unit", unit, "state", st[0].ActiveState)
	job := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, unit, "replace", job); err != nil {
		return fmt.Errorf("cannot stop the former unit %s: %w", unit, err)
	}
	select {
	case <-job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop has PID 1 stop the unit (SIGTERM: pppd hangs up) and waits for the
// job, on a context of its own: the session's has ended.
func (r *unitRunner) stop(c *sddbus.Conn, unit string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.log.Info("stopping the PPPoE unit", "unit", unit)
	job := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, unit, "replace", job); err != nil {
		r.log.Warn("cannot stop the PPPoE unit", "unit", unit, "err", err)
		return fmt.Errorf("cannot stop unit %s: %w", unit, err)
	}
	select {
	case res := <-job:
		r.log.Info("PPPoE unit stopped", "unit", unit, "job", res)
		if res != "done" {
			return fmt.Errorf("unit %s: stop job %s", unit, res)
		}
		return nil
	case <-ctx.Done():
		r.log.Warn("gave up waiting for the PPPoE unit's stop", "unit", unit)
		return fmt.Errorf("gave up waiting for the stop of unit %s: %w", unit, ctx.Err())
	}
}

// result says how the unit's pppd ended (Result=, ExecMainStatus=: pppd's
// exit code says why) while PID 1 still has the unit loaded.
func (r *unitRunner) result(c *sddbus.Conn, unit string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var parts []string
	if p, err := c.GetServicePropertyContext(ctx, unit, "Result"); err == nil {
		if s, ok := p.Value.Value().(string); ok {
			parts = append(parts, "result "+s)
		}
	}
	if p, err := c.GetServicePropertyContext(ctx, unit, "ExecMainStatus"); err == nil {
		if n, ok := p.Value.Value().(int32); ok {
			parts = append(parts, fmt.Sprintf("pppd exit status %d", n))
		}
	}
	if len(parts) == 0 {
		return "unit gone (journalctl -u " + unit + " says more)"
	}
	return strings.Join(parts, ", ") + " (journalctl -u " + unit + " says more)"
}
