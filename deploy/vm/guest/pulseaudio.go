package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPulse starts pulseaudio with args (the mode and the script) and env
// (added to the test's) as the process name, its output in
// LogDir/name.log, and returns once PulseAudio logs "Daemon startup
// complete": its own word that every module of the script is loaded, which
// no socket appearing can tell. The guest fixtures differ only in mode,
// script and environment; this is the one start-up they share.
//
// No real-time scheduling: as root PulseAudio runs its I/O threads
// SCHED_RR under an RLIMIT_RTTIME of 200 ms (soft = hard, so the kernel
// SIGKILLs at once). Under TCG on a loaded host (load 13-18) PulseAudio was
// killed mid-test in 4 of 4 runs of TestLabHeadset on 2026-12-05 (the
// clients' "connection closed", a jfreymuth/pulse panic; "signal:
// killed" where the exit was logged), likely that limit: a Bluetooth
// card's thread (SBC, resampling) can use 200 ms of emulated CPU without
// blocking. With --realtime=no: 1 run of 1 green since.
func startPulse(t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	args = append([]string{"--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--realtime=no",
		"--log-target=stderr", "--log-level=info"}, args...)
	cmd := exec.Command("pulseaudio", args...)
	cmd.Env = append(append(os.Environ(), "DISPLAY="), env...)
	log := filepath.Join(LogDir(t), name+".log")
	return StartDaemon(t, name, cmd, 30*time.Second, func(ctx context.Context) error {
		return waitLog(ctx, log, "Daemon startup complete")
	})
}

// userPulse is a PulseAudio of the test's own in user mode: in a fresh
// dir (home and runtime folders, removed at cleanup), with no autospawn
// (-n), no session bus, and the native protocol on dir/native.
type userPulse struct {
	dbus, native, dir string
	proc              *Proc
}

// startUserPulse starts a user-mode PulseAudio as name in dir with lines
// as its script (written to dir/scriptName); lines must load
// module-native-protocol-unix on native (dir/native) and
// module-dbus-protocol.
func startUserPulse(t testing.TB, name, dir, scriptName string, lines func(native string) []string) userPulse {
	t.Helper()
	os.RemoveAll(dir) // a former test's
	for _, d := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	native := filepath.Join(dir, "native")
	script := filepath.Join(dir, scriptName)
	if err := os.WriteFile(script, []byte(strings.Join(lines(native), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPulse(t, name, []string{"HOME=" + filepath.Join(dir, "home"), "XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:"}, "-n", "--use-pid-file=no", "-F", script)
	return userPulse{dbus: "unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket"), native: "unix:" + native, dir: dir, proc: p}
}

// BluetoothPulse is a PulseAudio with the Bluetooth modules: started before
// pairing, its A2DP/HSP endpoints put the audio UUIDs into the "headset"
// controller's SDP record, and it makes a bluez_card.* for a connected
// headset. It is separate from ALSAPulse: one test, one PulseAudio.
type BluetoothPulse struct {
	DBus   string // unix:path=/run/bt-pulse/run/pulse/dbus-socket
	Native string // unix:/run/bt-pulse/native, for pactl (PULSE_SERVER)
	Dir    string
	Proc   *Proc
}

// StartBluetoothPulse starts PulseAudio with module-bluetooth-discover
// (headset=native, HSP and HFP headset roles on) and returns once it says
// it is ready. bluetoothd must be running.
func StartBluetoothPulse(t testing.TB) *BluetoothPulse {
	t.Helper()
	u := startUserPulse(t, "pulseaudio-bt", "/run/bt-pulse", "bt.pa", func(native string) []string {
		return []string{
			"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1",
			"load-module module-null-sink",
			"load-module module-dbus-protocol",
			"load-module module-bluetooth-policy",
			"load-module module-bluetooth-discover headset=native enable_native_hsp_hs=true enable_native_hfp_hf=true",
			"load-module module-card-restore",
		}
	})
	return &BluetoothPulse{DBus: u.dbus, Native: u.native, Dir: u.dir, Proc: u.proc}
}

// Pactl runs pactl against this PulseAudio.
func (p *BluetoothPulse) Pactl(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("pactl", args...)
	cmd.Env = append(os.Environ(), "PULSE_SERVER="+p.Native)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pactl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
