package guest

import (
	"os"
	"testing"
)

// ALSACard is the card name PulseAudio gives the snd-dummy card.
const ALSACard = "alsa_card.dummy"

// ALSAPulse is a PulseAudio that drives the snd-dummy ALSA card through
// module-alsa-card (the card's profiles: output:stereo-fallback,
// input:stereo-fallback, both, off), with module-dbus-protocol for
// boxagent and the native protocol for streams. It is separate from the
// Bluetooth PulseAudio (pulseaudio.go): one test, one PulseAudio.
type ALSAPulse struct {
	DBus   string // unix:path=/run/alsa-pulse/run/pulse/dbus-socket
	Native string // unix:/run/alsa-pulse/native
	Dir    string
	Proc   *Proc
}

// StartALSAPulse loads snd-dummy and starts PulseAudio on it; it returns
// once PulseAudio says it is ready. extraModules are more "load-module"
// lines (e.g. module-null-sink).
func StartALSAPulse(t testing.TB, extraModules ...string) *ALSAPulse {
	t.Helper()
	Modprobe(t, "snd-dummy")
	if _, err := os.Stat("/dev/snd/controlC0"); err != nil {
		t.Fatalf("snd-dummy loaded but no ALSA control device: %v", err)
	}
	u := startUserPulse(t, "pulseaudio-alsa", "/run/alsa-pulse", "alsa.pa", func(native string) []string {
		return append([]string{
			"load-module module-alsa-card device_id=0 name=dummy card_name=" + ALSACard,
			"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1",
			"load-module module-dbus-protocol",
		}, extraModules...)
	})
	return &ALSAPulse{DBus: u.dbus, Native: u.native, Dir: u.dir, Proc: u.proc}
}
