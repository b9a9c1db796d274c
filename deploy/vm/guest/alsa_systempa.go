package guest

import (
	"os"
	"testing"
)

// SystemPulse is PulseAudio in system mode (pulseaudio --system, as the
// box runs it from deploy/pulseaudio): sockets in /run/pulse, the daemon
// drops to the "pulse" user, clients authenticate with its cookie or the
// pulse-access group.
type SystemPulse struct {
	DBus   string // unix:path=/run/pulse/dbus-socket
	Native string // /run/pulse/native
	Cookie string // /run/pulse/.config/pulse/cookie
	Proc   *Proc
}

// StartSystemPulse starts PulseAudio in system mode with the script at
// path (e.g. deploy/pulseaudio/system.pa) and returns once it is ready.
func StartSystemPulse(t testing.TB, script string) *SystemPulse {
	t.Helper()
	os.RemoveAll("/run/pulse") // a former test's
	t.Cleanup(func() { os.RemoveAll("/run/pulse") })
	return &SystemPulse{DBus: "unix:path=/run/pulse/dbus-socket", Native: "/run/pulse/native",
		Cookie: "/run/pulse/.config/pulse/cookie", Proc: startPulse(t, "pulseaudio-system", nil, "--system", "-n", "-F", script)}
}
