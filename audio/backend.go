package audio

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Backend is the sound server as the agent drives it. Two implement it:
//
//   - Client: PulseAudio over its own D-Bus protocol (module-dbus-protocol),
//     kept current by PulseAudio's D-Bus signals.
//   - PipeWireClient: PipeWire through pipewire-pulse's native Pulse
//     protocol (pipewire-pulse has no D-Bus protocol: loading
//     module-dbus-protocol answers "No such entity"), kept current by the
//     protocol's subscription events.
//
// The modes (music, call, off) are one piece of logic over both (setMode);
// the names differ (a2dp_sink and a2dp-sink, see musicProfiles) and
// PipeWire reports the codec in the active profile's name (a2dp-sink-sbc),
// which profileIs takes in. The play-and-record test (PlayRecord) uses the
// native protocol on both.
type Backend interface {
	// Server is where the backend was reached; Server().Backend names it.
	Server() Server
	State() State
	Subscribe() (<-chan Event, func())
	// Done is closed when the connection to the sound server is gone.
	Done() <-chan struct{}
	Close() error
	SetMode(ctx context.Context, card, mode string) (ModeResult, error)
	SetCardProfile(ctx context.Context, card, profile string) error
	SetFallback(ctx context.Context, kind, name string) error
	SetVolume(ctx context.Context, name string, pct float64) (Volume, error)
	SetMute(ctx context.Context, name string, mute bool) error
}

// The backends, as Server.Backend and status name them.
const (
	BackendPulseAudio = "pulseaudio"
	BackendPipeWire   = "pipewire"
)

var (
	_ Backend = (*Client)(nil)
	_ Backend = (*PipeWireClient)(nil)
)

// modeDriver is what setMode needs of a backend: the mechanisms (a D-Bus
// property, a native-protocol command) are each backend's, the logic is
// one.
type modeDriver interface {
	cardByName(name string) (*Card, error)
	// switchProfile makes p the card's active profile.
	switchProfile(ctx context.Context, card *Card, p Profile, op string) error
	// cardDevices reads the card's first sink and its first source that
	// is not a monitor, as they are after switching to p.
	cardDevices(ctx context.Context, card *Card, p Profile) (sink, source string, err error)
	SetFallback(ctx context.Context, kind, name string) error
	Subscribe() (<-chan Event, func())
	Done() <-chan struct{}
	options() Options
	logger() *slog.Logger
}

// profileIs says whether a card's active profile is the profile name:
// PipeWire reports the codec's own profile after a switch to the generic
// one (a2dp-sink is active as a2dp-sink-sbc, headset-head-unit as
// headset-head-unit-cvsd or -msbc), PulseAudio the name itself.
func profileIs(active, name string) bool {
	return active == name || strings.HasPrefix(active, name+"-")
}

// fanout hands events to subscribers; one that does not keep up loses
// events rather than stall the model.
type fanout struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Subscribe returns a channel of events and a function that ends the
// subscription.
func (f *fanout) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan Event]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		})
	}
}

func (f *fanout) emit(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}
