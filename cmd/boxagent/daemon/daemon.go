// Package daemon is `boxagent serve`: it loads and validates the config,
// detects the board, opens the journal, serves the local API on the unix
// socket and on TCP, talks to systemd (readiness, status, watchdog) and
// handles signals. It is the only place that wires the domains together.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/internal/password"
)

// Options configure Run.
type Options struct {
	Paths paths.Paths
	// ConfigPath, SocketPath: empty means the Paths default.
	ConfigPath string
	SocketPath string
	// Listen overrides [http] listen.
	Listen  string
	Version string
	Logger  *slog.Logger
	// Timeouts of the API's servers; zero means DefaultTimeouts.
	Timeouts Timeouts
}

// ShutdownGrace is how long running operations get to finish on SIGTERM
// before they are cancelled; the process exits well within 5 s.
const ShutdownGrace = 3 * time.Second

// ErrRefused marks start-up refusals caused by the user's settings (an
// invalid config, a listen address that needs a password), as opposed to
// faults of the machine.
var ErrRefused = errors.New("refused")

// Run serves until ctx is cancelled or SIGTERM/SIGINT arrives. SIGHUP
// reloads the config. It returns nil after a clean shutdown.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if o.ConfigPath == "" {
		o.ConfigPath = o.Paths.ConfigFile()
	}
	if o.SocketPath == "" {
		o.SocketPath = o.Paths.Socket()
	}
	a, err := newAgent(o)
	if err != nil {
		return err
	}
	cfg := a.config()
	listen := cfg.HTTP.Listen
	if o.Listen != "" {
		listen = o.Listen
		eff := *cfg
		eff.HTTP.Listen = listen
		if err := checkListen(&eff); err != nil {
			return fmt.Errorf("%w: --listen %s: %v", ErrRefused, listen, err)
		}
	}
	logLimits(log)

	store, err := journal.Open(o.Paths.JournalDB(), journal.Options{Keep: cfg.Journal.Keep})
	if err != nil {
		return fmt.Errorf("cannot open the journal: %w", err)
	}
	defer store.Close()
	a.journal = store
	if d := store.Damage(); d != nil {
		a.damage = d
		log.Warn("the journal was damaged; it is moved aside and a new one started",
			"moved_to", d.MovedTo, "reason", d.Reason)
	}
	if n := store.Recovered(); n > 0 {
		log.Warn("operations interrupted by the previous stop", "count", n)
	}

	gen, err := ensurePassword(o.Paths)
	if err != nil {
		return fmt.Errorf("cannot make the page password: %w", err)
	}
	a.generated = gen
	unixL, err := listenUnix(o.SocketPath)
	if err != nil {
		return err
	}
	tcpL, err := net.Listen("tcp", listen)
	if err != nil {
		unixL.Close()
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	a.listeners = apitype.Listeners{Socket: o.SocketPath, HTTP: tcpL.Addr().String()}
	if ap, err := netip.ParseAddrPort(tcpL.Addr().String()); err == nil {
		a.listenIP = ap.Addr().Unmap()
	}
	var tlsConf *tls.Config
	if a.listenIP.IsValid() && !a.listenIP.IsLoopback() {
		cert, err := pageCert(o.Paths)
		if err != nil {
			unixL.Close()
			tcpL.Close()
			return fmt.Errorf("cannot make the page's certificate: %w", err)
		}
		tlsConf = pageTLS(cert)
		a.listeners.HTTPS, a.listeners.CertSHA256 = true, CertFingerprint(cert.Certificate[0])
		log.Info("the page is served over HTTPS with a self-signed certificate", "sha256", a.listeners.CertSHA256)
	}
	a.tellPassword(gen)

	a.sessions = &localapi.Sessions{
		Check:       func(pass string) bool { return password.Verify(a.passwordHash(), pass) },
		HostAllowed: a.hostAllowed,
		Save:        a.saveSessions,
	}
	a.restoreSessions()
	api := localapi.New(localapi.Options{
		Backend: a, Journal: store, Events: a.events, Logger: log,
		Mappers: []localapi.ErrorMapper{mapError}, Sessions: a.sessions,
	})
	a.api, a.journal = api, store
	a.domains = a.buildDomains()
	domainCtx, stopDomains := context.WithCancel(context.Background())
	defer stopDomains()
	for _, d := range a.domains {
		d.Register(api)
	}
	for _, d := range a.domains {
		if err := d.Start(domainCtx); err != nil {
			log.Warn("cannot start a subsystem; it is reported in status", "subsystem", d.Name(), "err", err)
		}
	}
	a.followJournal(domainCtx)
	timeouts := o.Timeouts
	if timeouts == (Timeouts{}) {
		timeouts = DefaultTimeouts
	}
	unixSrv := newServer(api.Handler(true), timeouts, log)
	tcpSrv := newServer(a.pageHandler(api.Handler(false)), timeouts, log)
	serveErr := make(chan error, 2)
	go func() { serveErr <- unixSrv.Serve(limitConns(unixSrv, guardSocket(unixL, log), maxUnixConns)) }()
	if tlsConf != nil {
		tcpSrv.TLSConfig = tlsConf
		tcpSrv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // no HTTP/2
		go func() { serveErr <- tcpSrv.ServeTLS(limitConns(tcpSrv, tcpL, maxTCPConns), "", "") }()
	} else {
		go func() { serveErr <- tcpSrv.Serve(limitConns(tcpSrv, tcpL, maxTCPConns)) }()
	}

	log.Info("serving", "socket", o.SocketPath, "http", tcpL.Addr().String(),
		"board", a.board().Profile.ID, "config", a.configInfo().Revision)
	notify("READY=1\nSTATUS=serving on " + tcpL.Addr().String() + " and " + o.SocketPath)

	stopWatchdog := startWatchdog(log)
	defer stopWatchdog()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("cannot serve: %w", err)
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				a.reloadFromSignal()
				continue
			}
			log.Info("stopping", "signal", sig.String())
			break loop
		}
	}

	notify("STOPPING=1\nSTATUS=stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	// Stop accepting first, then let operations finish or cancel them.
	_ = unixSrv.Shutdown(shutCtx)
	_ = tcpSrv.Shutdown(shutCtx)
	if err := api.Shutdown(shutCtx); err != nil {
		log.Warn("operations cancelled at shutdown", "err", err)
	}
	// Streams (events) do not end on Shutdown; close what is left.
	unixSrv.Close()
	tcpSrv.Close()
	stopDomains()
	for _, d := range a.domains {
		d.Stop()
	}
	os.Remove(o.SocketPath)
	log.Info("stopped")
	return runErr
}

// listenUnix opens the API socket, mode 0660. A socket left by a dead
// daemon is replaced; a live one is not, nor anything that is not a socket
// (serve --socket /etc/shadow removed the file).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("cannot listen on %s: it is a %s, not a socket; boxagent removes only a socket a dead agent left", path, fileKind(fi.Mode()))
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("cannot listen on %s: another boxagent is serving there", path)
		}
		os.Remove(path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot inspect %s: %w", path, err)
	}
	// The umask makes the socket 0660 from the start, with no window in
	// which it is wider.
	old := unix.Umask(0o117)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	return l, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "file of type " + m.Type().String()
}

// notify tells systemd; without NOTIFY_SOCKET it does nothing.
func notify(state string) {
	_, _ = sd.SdNotify(false, state)
}

// startWatchdog pings systemd's watchdog at half its interval when the unit
// asks for one. The ticker is the watchdog contract, not a poll.
func startWatchdog(log *slog.Logger) (stop func()) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return func() {}
	}
	log.Info("systemd watchdog enabled", "interval", interval)
	t := time.NewTicker(interval / 2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				notify("WATCHDOG=1")
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}

// minNoFile is the open-file limit below which the agent warns: sockets,
// D-Bus connections, the journal and staging files add up on a busy box.
const minNoFile = 1024

func logLimits(log *slog.Logger) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("cannot read RLIMIT_NOFILE", "err", err)
		return
	}
	log.Info("open file limit", "soft", rl.Cur, "hard", rl.Max)
	if rl.Cur < minNoFile {
		log.Warn("open file limit is low; set LimitNOFILE= in the unit", "soft", rl.Cur, "want", minNoFile)
	}
}

// checkListen refuses a TCP address reachable from the LAN unless a
// password protects it.
func checkListen(c *config.Config) error {
	loopback, err := c.ListenIsLoopback()
	if err != nil {
		return err
	}
	if !loopback && c.HTTP.PasswordHash == "" {
		return errors.New("a non-loopback address needs [http] password_hash in the config")
	}
	return nil
}
