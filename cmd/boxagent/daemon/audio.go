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

// audioDomain is the agent's PulseAudio: one connection to its D-Bus
// protocol, kept current by PulseAudio's signals, re-opened when
// PulseAudio restarts. Its events go out as "audio" events.
type audioDomain struct {
	a   *agent
	log *slog.Logger

	mu     sync.Mutex
	client *audio.Client
	modes  *headsetModes // the client's; nil without one
	ctx    context.Context
	health apitype.Subsystem
	wake   chan struct{}
	done   chan struct{}
}

// audioRetry bounds how long the agent waits between attempts to reach
// PulseAudio when it is not there (it is a systemd unit that may start
// later or restart); this retries a connection, it polls no state.
var audioRetry = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}

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

// Start tries PulseAudio once, so status is settled when Start returns,
// then follows it until ctx ends.
func (d *audioDomain) Start(ctx context.Context) error {
	d.done = make(chan struct{})
	d.ctx = ctx
	c, err := d.connect(ctx)
	if err != nil {
		d.setHealth(d.absence(err))
		d.log.Info("PulseAudio not reachable; will retry", "err", err)
	}
	go d.run(ctx, c)
	return nil
}

func (d *audioDomain) run(ctx context.Context, c *audio.Client) {
	defer close(d.done)
	attempt := 0
	for ctx.Err() == nil {
		var err error
		if c == nil {
			c, err = d.connect(ctx)
		}
		if err != nil {
			d.setHealth(d.absence(err))
			wait := audioRetry[min(attempt, len(audioRetry)-1)]
			attempt++
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			case <-time.After(wait):
			}
			continue
		}
		attempt = 0
		s := c.Server()
		d.log.Info("PulseAudio reached", "dbus", s.DBus, "how", s.How, "native", s.Native)
		d.a.events.Publish("audio", audio.Event{Kind: "connected", Value: s.DBus})
		ev, cancel := c.Subscribe()
		modes := d.headsetModes()
		d.mu.Lock()
		d.client, d.modes = c, modes
		d.mu.Unlock()
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
		d.log.Warn("PulseAudio went away; reconnecting")
		d.a.events.Publish("audio", audio.Event{Kind: "disconnected"})
		d.setHealth(apitype.StateAbsent, "PulseAudio went away; reconnecting")
		c = nil
	}
}

func (d *audioDomain) connect(ctx context.Context) (*audio.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := audioConfig(d.a.config())
	timeout := time.Duration(cfg.ModeTimeout) * time.Second
	c, _, err := audio.Connect(cctx, d.locator().Candidates(cctx), audio.Options{Logger: d.a.log, ModeTimeout: timeout,
		ConnectProfile: connectHeadsetProfile})
	return c, err
}

// connectHeadsetProfile asks BlueZ to connect a headset's voice profile
// (HFP, else HSP) when PulseAudio shows it present but not available: the
// headset connected A2DP only. PulseAudio then signals
// ProfileAvailableChanged and `mode call` goes on.
func connectHeadsetProfile(ctx context.Context, card string, uuids []string) error {
	addr, ok := audio.HeadsetAddress(card)
	if !ok {
		return fmt.Errorf("%s is not a Bluetooth card", card)
	}
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cannot reach BlueZ: %w", err)
	}
	defer conn.Close()
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	if err := conn.Object("org.bluez", "/").CallWithContext(ctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs); err != nil {
		return fmt.Errorf("cannot list BlueZ's devices: %w", err)
	}
	for p, ifaces := range objs {
		dev, ok := ifaces["org.bluez.Device1"]
		if !ok || !strings.EqualFold(fmt.Sprint(dev["Address"].Value()), addr) {
			continue
		}
		var errs []error
		for _, u := range uuids {
			err := conn.Object("org.bluez", p).CallWithContext(ctx, "org.bluez.Device1.ConnectProfile", 0, u).Err
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("BlueZ knows no device %s", addr)
}

// absence says why PulseAudio cannot be reached; doctor tells apart a
// PulseAudio that is not running from one without module-dbus-protocol.
func (d *audioDomain) absence(error) (string, string) {
	if audio.PipeWire(d.a.paths.Proc()) {
		return apitype.StateAbsent, "PipeWire (pipewire-pulse) runs instead of PulseAudio: no D-Bus control"
	}
	return apitype.StateAbsent, "PulseAudio's D-Bus protocol is not reachable (PulseAudio not running, or no module-dbus-protocol)"
}

func (d *audioDomain) setHealth(state, detail string) {
	d.mu.Lock()
	d.health = apitype.Subsystem{Name: "audio", State: state, Detail: detail}
	d.mu.Unlock()
}

// Health is ok with what PulseAudio has, or absent with why.
func (d *audioDomain) Health() apitype.Subsystem {
	d.mu.Lock()
	c, h := d.client, d.health
	d.mu.Unlock()
	if c == nil {
		return h
	}
	s := c.State()
	detail := fmt.Sprintf("PulseAudio %s: %d cards, %d sinks, %d sources", s.Server.Version, len(s.Cards), len(s.Sinks), len(s.Sources))
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
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return []string{"audio: reconnecting to PulseAudio with the new [audio] settings"}, nil
}

// current returns the live client or the reason there is none.
func (d *audioDomain) current() (*audio.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		return nil, &audio.Error{Op: "reach PulseAudio", Kind: audio.ErrUnreachable, Msg: d.health.Detail,
			Hint: "systemctl status pulseaudio; boxagent doctor says what is missing"}
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

// checkAudio is doctor's view of PulseAudio: running, PipeWire instead,
// the D-Bus protocol and the Bluetooth modules loaded. doctor.go calls it.
func (a *agent) checkAudio(ctx context.Context) []apitype.Check {
	proc := a.paths.Proc()
	if audio.PipeWire(proc) {
		return []apitype.Check{{Name: "pulseaudio", Result: apitype.CheckWarn,
			Detail: "PipeWire (pipewire-pulse) runs instead of PulseAudio: boxagent cannot switch headset profiles over D-Bus",
			Fix:    "systemctl --global disable --now pipewire-pulse.socket pipewire-pulse; install deploy/pulseaudio"}}
	}
	var d *audioDomain
	for _, dom := range a.domains {
		if ad, ok := dom.(*audioDomain); ok {
			d = ad
		}
	}
	running := len(audio.Running(proc, "pulseaudio")) > 0
	var c *audio.Client
	if d != nil {
		c, _ = d.current()
	}
	if c == nil {
		if !running {
			return []apitype.Check{{Name: "pulseaudio", Result: apitype.CheckWarn, Detail: "PulseAudio is not running",
				Fix: "apt-get install pulseaudio pulseaudio-module-bluetooth; systemctl enable --now boxagent-pulseaudio (deploy/pulseaudio)"}}
		}
		return []apitype.Check{
			{Name: "pulseaudio", Result: apitype.CheckOK, Detail: "running"},
			{Name: "module-dbus-protocol", Result: apitype.CheckFail, Detail: "PulseAudio's D-Bus protocol does not answer",
				Fix: "add load-module module-dbus-protocol to system.pa (deploy/pulseaudio/system.pa) and restart PulseAudio"},
		}
	}
	s := c.State()
	checks := []apitype.Check{
		{Name: "pulseaudio", Result: apitype.CheckOK, Detail: fmt.Sprintf("PulseAudio %s", s.Server.Version)},
		{Name: "module-dbus-protocol", Result: apitype.CheckOK, Detail: "answers at " + c.Server().DBus},
	}
	mods, err := c.Modules(ctx)
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
