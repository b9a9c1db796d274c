package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// audioDomain is the agent's sound server: one connection to PulseAudio's
// D-Bus protocol, or to PipeWire's pipewire-pulse over the native Pulse
// protocol when pipewire-pulse runs (audio.Backend), kept current by the
// server's signals or events, re-opened (and the backend chosen again)
// when the server restarts. Its events go out as "audio" events.
type audioDomain struct {
	a   *agent
	log *slog.Logger
	bt  *btDomain // brings up a headset's voice profile; nil without Bluetooth

	mu     sync.Mutex
	client audio.Backend
	modes  *headsetModes // the client's; nil without one
	ctx    context.Context
	health apitype.Subsystem
	wake   chan struct{}
	done   chan struct{}
}

// audioRetry are the attempts to reach the sound server soon after one
// failed (a server starting with the box makes its socket a moment before
// it answers). After them the agent waits for the server to appear (its
// socket made: audio.SocketWatch), for a reload, or for someone asking for
// audio: no timer, no polling.
var audioRetry = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}

// audioRetryUnwatched is the retry when the sockets' folders cannot be
// watched (no inotify): rare, and then a slow retry is the only way.
const audioRetryUnwatched = 30 * time.Second

func newAudioDomain(a *agent) *audioDomain {
	return &audioDomain{a: a, log: a.log.With("component", "audio"), wake: make(chan struct{}, 1),
		health: apitype.Subsystem{Name: "audio", State: apitype.StateAbsent, Detail: "not started"}}
}

func (d *audioDomain) Name() string { return "audio" }

func audioConfig(c *config.Config) audio.Config { return c.Audio }

func (d *audioDomain) locator() audio.Locator {
	return audio.Locator{
		Config: audioConfig(d.a.config()),
		RunDir: d.a.paths.Host("/run"),
		// Only a session bus that exists: never autolaunch one.
		SessionBus: func(ctx context.Context) (*dbus.Conn, error) {
			addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
			if addr == "" {
				return nil, errors.New("no session bus")
			}
			return dbus.Connect(addr, dbus.WithContext(ctx))
		},
	}
}

// Start tries the sound server once, so status is settled when Start
// returns, then follows it until ctx ends.
func (d *audioDomain) Start(ctx context.Context) error {
	d.done = make(chan struct{})
	d.ctx = ctx
	c, err := d.connect(ctx)
	if err != nil {
		d.setHealth(d.absence(err))
		d.log.Info("sound server not reachable; will retry", "err", err)
	}
	go d.run(ctx, c)
	return nil
}

func (d *audioDomain) run(ctx context.Context, c audio.Backend) {
	defer close(d.done)
	attempt := 0
	for ctx.Err() == nil {
		var err error
		var watch *audio.SocketWatch
		if c == nil {
			// Armed before the attempt: a server that starts after it
			// fails is seen.
			watch = d.watchSockets(ctx)
			c, err = d.connect(ctx)
		}
		if err != nil {
			d.setHealth(d.absence(err))
			d.waitToRetry(ctx, watch, attempt)
			attempt++
			continue
		}
		if watch != nil {
			watch.Close()
		}
		attempt = 0
		s := c.Server()
		d.log.Info("sound server reached", "backend", s.Backend, "dbus", s.DBus, "how", s.How, "native", s.Native)
		d.a.events.Publish("audio", audio.Event{Kind: "connected", Name: s.Backend, Value: cmpOr(s.DBus, s.Native)})
		ev, cancel := c.Subscribe()
		modes := d.headsetModes()
		d.mu.Lock()
		d.client, d.modes = c, modes
		d.mu.Unlock()
		d.a.statusChanged() // its line counts c's cards from now on
	follow:
		for {
			select {
			case <-ctx.Done():
				cancel()
				c.Close()
				return
			case e := <-ev:
				d.a.events.Publish("audio", e)
				modes.card(ctx, c, e)
			case <-c.Done():
				break follow
			}
		}
		cancel()
		d.mu.Lock()
		d.client, d.modes = nil, nil
		d.mu.Unlock()
		d.a.statusChanged()
		d.log.Warn("sound server went away; reconnecting", "backend", s.Backend)
		d.a.events.Publish("audio", audio.Event{Kind: "disconnected", Name: s.Backend})
		d.setHealth(apitype.StateAbsent, backendName(s.Backend)+" went away; reconnecting")
		c = nil
	}
}

// watchSockets arms a watch on where the sound server's sockets appear
// (PulseAudio's D-Bus and native sockets, pipewire-pulse's native one);
// nil when none can be watched.
func (d *audioDomain) watchSockets(ctx context.Context) *audio.SocketWatch {
	l := d.locator()
	w, err := audio.WatchSockets(audio.SocketPaths(append(l.Candidates(ctx), l.NativeCandidates()...)))
	if err != nil {
		d.log.Warn("cannot watch for the sound server; retrying every 30 s instead", "err", err)
		return nil
	}
	return w
}

// waitToRetry waits after a failed attempt: the first ones on a timer
// (audioRetry), then only for the server's socket to appear, a reload or
// a request (d.wake). It closes watch.
func (d *audioDomain) waitToRetry(ctx context.Context, watch *audio.SocketWatch, attempt int) {
	var timer <-chan time.Time
	switch {
	case watch == nil:
		timer = time.After(audioRetryUnwatched)
	case attempt < len(audioRetry):
		timer = time.After(audioRetry[attempt])
	}
	appeared := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	if watch != nil {
		go func() { appeared <- watch.Wait(wctx) }()
		defer watch.Close()
	}
	defer cancel()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-timer:
	case err := <-appeared:
		if err != nil && ctx.Err() == nil {
			// Not a tight loop on a broken watch: the slow retry.
			d.log.Warn("the watch for the sound server ended; retrying in 30 s", "err", err)
			select {
			case <-ctx.Done():
			case <-d.wake:
			case <-time.After(audioRetryUnwatched):
			}
		}
	}
}

// connect reaches the sound server that runs: PipeWire through
// pipewire-pulse when that process runs (it has no PulseAudio D-Bus
// protocol), else PulseAudio over D-Bus. Chosen at every connect, so a box
// that moves from one to the other is followed at the next reconnect.
func (d *audioDomain) connect(ctx context.Context) (audio.Backend, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := audioConfig(d.a.config())
	opts := audio.Options{Logger: d.a.log, ModeTimeout: time.Duration(cfg.ModeTimeout) * time.Second}
	if d.bt != nil {
		opts.Bluetooth = d.bt // a headset's voice profile is connected through BlueZ
	}
	l := d.locator()
	if audio.PipeWire(d.a.paths.Proc()) {
		c, _, err := audio.ConnectPipeWire(cctx, l.NativeCandidates(), opts)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, _, err := audio.Connect(cctx, l.Candidates(cctx), opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// backendName is how status and doctor name a backend.
func backendName(b string) string {
	if b == audio.BackendPipeWire {
		return "PipeWire"
	}
	return "PulseAudio"
}

// cmpOr is the first non-empty string.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// absence says why the sound server cannot be reached; doctor tells
// apart a PulseAudio that is not running from one without
// module-dbus-protocol.
func (d *audioDomain) absence(error) (string, string) {
	if audio.PipeWire(d.a.paths.Proc()) {
		return apitype.StateAbsent, "PipeWire: pipewire-pulse runs but its native protocol is not reachable"
	}
	return apitype.StateAbsent, "PulseAudio's D-Bus protocol is not reachable (PulseAudio not running, or no module-dbus-protocol)"
}

func (d *audioDomain) setHealth(state, detail string) {
	d.mu.Lock()
	d.health = apitype.Subsystem{Name: "audio", State: state, Detail: detail}
	d.mu.Unlock()
	d.a.statusChanged()
}

// Health is ok with what the sound server has, naming the backend, or
// absent with why.
func (d *audioDomain) Health() apitype.Subsystem {
	d.mu.Lock()
	c, h := d.client, d.health
	d.mu.Unlock()
	if c == nil {
		return h
	}
	s := c.State()
	how := "over D-Bus"
	if s.Server.Backend == audio.BackendPipeWire {
		how = "through pipewire-pulse"
	}
	detail := fmt.Sprintf("%s %s %s: %d cards, %d sinks, %d sources", backendName(s.Server.Backend), s.Server.Version, how,
		len(s.Cards), len(s.Sinks), len(s.Sources))
	if s.FallbackSink != "" {
		detail += ", default sink " + s.FallbackSink
	}
	return apitype.Subsystem{Name: "audio", State: apitype.StateOK, Detail: detail}
}

func (d *audioDomain) Stop() {
	if d.done != nil {
		<-d.done
	}
}

// Reconfigure reconnects when [audio] changed, and puts headsets the
// config gained in their mode.
func (d *audioDomain) Reconfigure(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	d.mu.Lock()
	c, modes, runCtx := d.client, d.modes, d.ctx
	d.mu.Unlock()
	if c != nil && modes != nil {
		var cards []string
		for _, card := range c.State().Cards {
			cards = append(cards, card.Name)
		}
		// The run's context, not the reload's: the switch outlives it.
		modes.configured(runCtx, c, cards, old.Bluetooth, cfg.Bluetooth)
	}
	if old.Audio == cfg.Audio {
		return nil, nil
	}
	if c != nil {
		c.Close() // run reconnects with the new settings
	}
	d.nudge()
	return []string{"audio: reconnecting to the sound server with the new [audio] settings"}, nil
}

// nudge asks the connect loop to try again now (a reload, a request),
// without waiting for it.
func (d *audioDomain) nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// current returns the live client or the reason there is none.
func (d *audioDomain) current() (audio.Backend, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		d.nudge() // someone asks for audio: try again now, not at the next socket
		return nil, &audio.Error{Op: "reach the sound server", Kind: audio.ErrUnreachable, Msg: d.health.Detail,
			Hint: "systemctl status pulseaudio (or pipewire-pulse); boxagent doctor says what is missing"}
	}
	return d.client, nil
}

func (d *audioDomain) Register(api *localapi.Server) {
	api.Handle("GET /api/v1/audio", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.current()
		if err != nil {
			return err
		}
		localapi.WriteJSON(w, http.StatusOK, c.State())
		return nil
	})
	api.Handle("POST /api/v1/audio/cards/{name}/mode", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.AudioModeRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		card := audio.CardName(r.PathValue("name"))
		if req.Mode == "" {
			return localapi.Errorf(http.StatusBadRequest, "audio.invalid", "mode is missing: music, call, off or a profile name", "")
		}
		c, err := d.current()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "audio.mode", Summary: fmt.Sprintf("switch %s to %s", card, req.Mode),
			Request: map[string]string{"card": card, "mode": req.Mode}},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				return c.SetMode(ctx, card, req.Mode)
			})
	})
	api.Handle("POST /api/v1/audio/default", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.AudioDefaultRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Kind != "sink" && req.Kind != "source" || req.Name == "" {
			return localapi.Errorf(http.StatusBadRequest, "audio.invalid", `kind must be "sink" or "source" and name must be given`, "")
		}
		c, err := d.current()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "audio.default", Summary: fmt.Sprintf("make %s the default %s", req.Name, req.Kind), Request: req},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				if err := c.SetFallback(ctx, req.Kind, req.Name); err != nil {
					return nil, err
				}
				s := c.State()
				return apitype.AudioDefaultResult{FallbackSink: s.FallbackSink, FallbackSource: s.FallbackSource}, nil
			})
	})
	api.Handle("POST /api/v1/audio/volume", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.AudioVolumeRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Device == "" || req.Percent == nil && req.Mute == nil {
			return localapi.Errorf(http.StatusBadRequest, "audio.invalid", "device and percent or mute must be given", "")
		}
		if p := req.Percent; p != nil && (*p < 0 || *p > audio.MaxVolumePercent) {
			return localapi.Errorf(http.StatusBadRequest, "audio.invalid", fmt.Sprintf("volume %g%% is out of range 0..%d%%", *p, audio.MaxVolumePercent), "")
		}
		c, err := d.current()
		if err != nil {
			return err
		}
		var parts []string
		if req.Percent != nil {
			parts = append(parts, fmt.Sprintf("volume %g%%", *req.Percent))
		}
		if req.Mute != nil {
			parts = append(parts, map[bool]string{true: "mute", false: "unmute"}[*req.Mute])
		}
		return api.Operate(w, r, localapi.Spec{Kind: "audio.volume", Summary: req.Device + ": " + strings.Join(parts, ", "), Request: req},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				if req.Percent != nil {
					if _, err := c.SetVolume(ctx, req.Device, *req.Percent); err != nil {
						return nil, err
					}
				}
				if req.Mute != nil {
					if err := c.SetMute(ctx, req.Device, *req.Mute); err != nil {
						return nil, err
					}
				}
				s := c.State()
				if dev, ok := s.Sink(req.Device); ok {
					return dev, nil
				}
				dev, _ := s.Source(req.Device)
				return dev, nil
			})
	})
	api.Handle("POST /api/v1/audio/test", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.AudioTestRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Seconds == 0 {
			req.Seconds = 3
		}
		if req.Seconds < 0 || req.Seconds > audio.MaxTestSeconds {
			return localapi.Errorf(http.StatusBadRequest, "audio.invalid", fmt.Sprintf("seconds must be more than 0 and at most %d", audio.MaxTestSeconds), "")
		}
		play := req.Play == nil || *req.Play
		c, err := d.current()
		if err != nil {
			return err
		}
		native := c.Server().Native
		return api.Operate(w, r, localapi.Spec{Kind: "audio.test",
			Summary: fmt.Sprintf("play a tone and record for %gs", req.Seconds), Request: req},
			func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
				return audio.PlayRecord(ctx, audio.TestOptions{
					Native: native, Play: play, Sink: req.Sink, Source: req.Source,
					Seconds: req.Seconds, Frequency: req.Frequency, Progress: progress,
				})
			})
	})
}

// checkAudio is doctor's view of the sound server: which backend, that it
// answers, and that headsets get cards (PulseAudio's Bluetooth module,
// PipeWire's WirePlumber). doctor.go calls it.
func (a *agent) checkAudio(ctx context.Context) []apitype.Check {
	proc := a.paths.Proc()
	var c audio.Backend
	for _, dom := range a.domains {
		if ad, ok := dom.(*audioDomain); ok {
			c, _ = ad.current()
		}
	}
	if audio.PipeWire(proc) {
		return checkPipeWire(proc, c)
	}
	pc, _ := c.(*audio.Client)
	running := len(audio.Running(proc, "pulseaudio")) > 0
	if pc == nil {
		if !running {
			return []apitype.Check{{Name: "pulseaudio", Result: apitype.CheckWarn, Detail: "PulseAudio is not running (nor PipeWire's pipewire-pulse)",
				Fix: "apt-get install pulseaudio pulseaudio-module-bluetooth; systemctl enable --now boxagent-pulseaudio (deploy/pulseaudio)"}}
		}
		return []apitype.Check{
			{Name: "pulseaudio", Result: apitype.CheckOK, Detail: "running"},
			{Name: "module-dbus-protocol", Result: apitype.CheckFail, Detail: "PulseAudio's D-Bus protocol does not answer",
				Fix: "add load-module module-dbus-protocol to system.pa (deploy/pulseaudio/system.pa) and restart PulseAudio"},
		}
	}
	s := pc.State()
	checks := []apitype.Check{
		{Name: "pulseaudio", Result: apitype.CheckOK, Detail: fmt.Sprintf("PulseAudio %s, driven over its D-Bus protocol", s.Server.Version)},
		{Name: "module-dbus-protocol", Result: apitype.CheckOK, Detail: "answers at " + pc.Server().DBus},
	}
	mods, err := pc.Modules(ctx)
	bt := apitype.Check{Name: "module-bluetooth-discover"}
	switch {
	case err != nil:
		bt.Result, bt.Detail = apitype.CheckFail, err.Error()
	case slices.Contains(mods, "module-bluetooth-discover"):
		bt.Result, bt.Detail = apitype.CheckOK, "loaded: headsets get cards"
	default:
		bt.Result, bt.Detail = apitype.CheckWarn, "not loaded: Bluetooth headsets get no PulseAudio card"
		bt.Fix = "load-module module-bluetooth-discover headset=native (deploy/pulseaudio/system.pa); apt-get install pulseaudio-module-bluetooth"
	}
	return append(checks, bt)
}

// checkPipeWire is checkAudio on a PipeWire box: pipewire-pulse answers
// (c is the agent's connection, nil without one), and WirePlumber runs:
// PipeWire's Bluetooth plugin (the headsets' cards, their A2DP and HFP)
// lives in WirePlumber. Its module list is not asked: pipewire-pulse's is
// its own emulation, not PipeWire's.
func checkPipeWire(proc string, c audio.Backend) []apitype.Check {
	pw := apitype.Check{Name: "pipewire-pulse"}
	if c == nil {
		pw.Result, pw.Detail = apitype.CheckFail, "PipeWire: pipewire-pulse runs but its native protocol does not answer the agent"
		pw.Fix = "set [audio] native to pipewire-pulse's socket (its user's $XDG_RUNTIME_DIR/pulse/native) and let the agent's user reach it"
	} else {
		s := c.State()
		pw.Result, pw.Detail = apitype.CheckOK, fmt.Sprintf("PipeWire %s, driven through pipewire-pulse's native protocol at %s", s.Server.Version, s.Server.Native)
	}
	wp := apitype.Check{Name: "wireplumber", Result: apitype.CheckOK, Detail: "running: headsets get cards (PipeWire's bluez5 plugin)"}
	if len(audio.Running(proc, "wireplumber")) == 0 {
		wp.Result, wp.Detail = apitype.CheckWarn, "not running: PipeWire makes no cards for Bluetooth headsets"
		wp.Fix = "apt-get install wireplumber libspa-0.2-bluetooth; systemctl --user enable --now wireplumber"
	}
	return []apitype.Check{pw, wp}
}
