package audio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// SystemRuntimeDir is where PulseAudio in system mode keeps its sockets
// (dbus-socket, native).
const SystemRuntimeDir = "/run/pulse"

// Server is one place PulseAudio may listen.
type Server struct {
	// DBus is the address of module-dbus-protocol's peer-to-peer socket.
	DBus string `json:"dbus"`
	// Native is the native-protocol server string for streams.
	Native string `json:"native,omitempty"`
	// How says how the address was found: "PULSE_DBUS_SERVER", "config",
	// "system", "org.PulseAudio1 lookup", "XDG_RUNTIME_DIR".
	How string `json:"how"`
	// Backend is BackendPulseAudio or BackendPipeWire, set by the Connect
	// that reached it.
	Backend string `json:"backend,omitempty"`
}

// Locator finds PulseAudio. Every outside thing it reads is a field, so
// tests point it at a temporary folder.
type Locator struct {
	Config Config
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// RunDir is "/run" on a box; tests give a temporary folder.
	RunDir string
	// SessionBus connects to the user's session bus for the
	// org.PulseAudio1 lookup; nil skips the lookup.
	SessionBus func(ctx context.Context) (*dbus.Conn, error)
}

// env is the locator's environment reader and run folder, defaulted.
func (l Locator) env() (func(string) string, string) {
	getenv, run := l.Getenv, l.RunDir
	if getenv == nil {
		getenv = os.Getenv
	}
	if run == "" {
		run = "/run"
	}
	return getenv, run
}

// Candidates lists where to try, in order.
func (l Locator) Candidates(ctx context.Context) []Server {
	getenv, run := l.env()
	native := func(s Server) Server {
		if l.Config.Native != "" {
			s.Native = l.Config.Native
		}
		if s.Native == "" {
			s.Native = nativeBeside(s.DBus)
		}
		return s
	}
	system := native(Server{DBus: "unix:path=" + filepath.Join(run, "pulse", "dbus-socket"), How: "system"})
	var out []Server
	switch s := l.Config.Server; s {
	case ServerSystem:
		return []Server{system}
	case ServerUser:
		return l.user(ctx, getenv, native)
	case "", ServerAuto:
		if a := getenv("PULSE_DBUS_SERVER"); a != "" {
			out = append(out, native(Server{DBus: a, Native: getenv("PULSE_SERVER"), How: "PULSE_DBUS_SERVER"}))
		}
		out = append(out, system)
		return append(out, l.user(ctx, getenv, native)...)
	default:
		return []Server{native(Server{DBus: s, How: "config"})}
	}
}

// NativeCandidates lists the native-protocol sockets where PipeWire's
// pipewire-pulse may listen, in order: [audio] native, PULSE_SERVER, the
// system socket (RunDir/pulse/native), $XDG_RUNTIME_DIR/pulse/native.
func (l Locator) NativeCandidates() []Server {
	getenv, run := l.env()
	var out []Server
	add := func(native, how string) {
		for _, s := range out {
			if native == "" || s.Native == native {
				return
			}
		}
		out = append(out, Server{Native: native, How: how})
	}
	if n := l.Config.Native; n != "" {
		add(n, "config")
	}
	add(getenv("PULSE_SERVER"), "PULSE_SERVER")
	add("unix:"+filepath.Join(run, "pulse", "native"), "system")
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		add("unix:"+filepath.Join(d, "pulse", "native"), "XDG_RUNTIME_DIR")
	}
	return out
}

func (l Locator) user(ctx context.Context, getenv func(string) string, native func(Server) Server) []Server {
	var out []Server
	if l.SessionBus != nil {
		if a, err := lookupAddress(ctx, l.SessionBus); err == nil {
			out = append(out, native(Server{DBus: a, Native: getenv("PULSE_SERVER"), How: "org.PulseAudio1 lookup"}))
		}
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		s := native(Server{DBus: "unix:path=" + filepath.Join(d, "pulse", "dbus-socket"), Native: getenv("PULSE_SERVER"), How: "XDG_RUNTIME_DIR"})
		if len(out) == 0 || out[0].DBus != s.DBus {
			out = append(out, s)
		}
	}
	return out
}

// lookupAddress asks the user's PulseAudio where its D-Bus protocol
// listens (org.PulseAudio1, /org/pulseaudio/server_lookup1).
func lookupAddress(ctx context.Context, bus func(context.Context) (*dbus.Conn, error)) (string, error) {
	conn, err := bus(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, err := conn.Object("org.PulseAudio1", "/org/pulseaudio/server_lookup1").
		GetProperty("org.PulseAudio.ServerLookup1.Address")
	if err != nil {
		return "", err
	}
	a, ok := v.Value().(string)
	if !ok || a == "" {
		return "", errors.New("org.PulseAudio1 answered no address")
	}
	return a, nil
}

// nativeBeside guesses the native socket from the D-Bus socket's folder:
// PulseAudio puts "native" beside "dbus-socket".
func nativeBeside(dbusAddr string) string {
	p, ok := strings.CutPrefix(dbusAddr, "unix:path=")
	if !ok {
		return ""
	}
	p, _, _ = strings.Cut(p, ",")
	return filepath.Join(filepath.Dir(p), "native")
}

// Dial opens the peer-to-peer connection to PulseAudio's D-Bus protocol
// and authenticates. It does not call Hello: there is no bus daemon on
// this socket, and PulseAudio answers Hello with UnknownMethod.
func Dial(ctx context.Context, addr string) (*dbus.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, &Error{Op: "connect to PulseAudio at " + addr, Kind: ErrUnreachable, Msg: err.Error(),
			Hint: "start PulseAudio with module-dbus-protocol (deploy/pulseaudio)"}
	}
	done := make(chan error, 1)
	go func() { done <- conn.Auth(nil) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, &Error{Op: "authenticate to PulseAudio at " + addr, Kind: ErrUnreachable, Msg: err.Error()}
	}
	return conn, nil
}

// Connect tries the candidates in order and returns the first connection
// that answers as PulseAudio, with the server it reached. When nothing
// answers, the error says what was tried and whether PipeWire runs.
func Connect(ctx context.Context, cands []Server, opts Options) (*Client, Server, error) {
	var tried []string
	var last error
	for _, s := range cands {
		conn, err := Dial(ctx, s.DBus)
		if err != nil {
			tried = append(tried, s.DBus)
			last = err
			continue
		}
		c, err := New(ctx, conn, opts)
		if err != nil {
			conn.Close()
			tried = append(tried, s.DBus)
			last = err
			continue
		}
		s.Backend = BackendPulseAudio
		c.server = s
		return c, s, nil
	}
	e := &Error{Op: "reach PulseAudio's D-Bus protocol", Kind: ErrUnreachable,
		Hint: "start PulseAudio (boxagent-pulseaudio.service, deploy/pulseaudio) with load-module module-dbus-protocol"}
	if len(tried) > 0 {
		e.Msg = fmt.Sprintf("tried %s", strings.Join(tried, ", "))
		if last != nil {
			e.Msg += ": " + last.Error()
		}
	} else {
		e.Msg = "no address to try"
	}
	return nil, Server{}, e
}
