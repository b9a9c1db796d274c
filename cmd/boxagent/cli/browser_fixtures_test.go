package cli_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netns"
)

// Fixtures of the page tests (browser_pages_test.go): a way into the
// daemon's network namespace for Chromium, and a real PulseAudio with a
// real Bluetooth card.

// proxyInto forwards a new 127.0.0.1 port here to addr inside network
// namespace ns: the daemon runs there with its uplinks, Chromium (and
// chromedp's DevTools connection to it) stays here. The browser's Host
// and Origin stay the proxy's, so the agent's origin check holds.
func proxyInto(t *testing.T, ns, addr string) string {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := dialIn(h, addr)
				if err != nil {
					t.Logf("proxy into %s: %v", ns, err)
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.Close() }()
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialIn connects to addr from inside ns. The socket keeps the namespace
// it was made in; the thread goes back to ours, or, if it cannot, dies
// with the goroutine instead of serving others in the wrong namespace.
func dialIn(ns netns.NsHandle, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, err := net.Dial("tcp", addr)
	if netns.Set(orig) == nil {
		runtime.UnlockOSThread()
	}
	return c, err
}

// a2dpTransport stands for BlueZ's side of the headset's A2DP stream: the
// one thing of a connected headset dbusmock cannot give PulseAudio. The
// stream is a socket pair whose far end the test drains.
type a2dpTransport struct {
	t     *testing.T
	mu    sync.Mutex
	files []*os.File
}

func (a *a2dpTransport) Acquire() (dbus.UnixFD, uint16, uint16, *dbus.Error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, 0, dbus.MakeFailedError(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "a2dp"), os.NewFile(uintptr(fds[1]), "a2dp-pulse")
	a.mu.Lock()
	a.files = append(a.files, ours, theirs)
	a.mu.Unlock()
	go io.Copy(io.Discard, ours)
	return dbus.UnixFD(theirs.Fd()), 672, 672, nil
}

func (a *a2dpTransport) TryAcquire() (dbus.UnixFD, uint16, uint16, *dbus.Error) { return a.Acquire() }

func (a *a2dpTransport) Release() *dbus.Error { return nil }

func (a *a2dpTransport) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.files {
		f.Close()
	}
}

// startHeadsetPulse runs the BlueZ mock with a connected headset and a
// real PulseAudio whose module-bluetooth-discover sees it on the same
// private bus; then it configures the A2DP stream as bluetoothd does
// after a connect (MediaEndpoint1.SetConfiguration). PulseAudio makes a
// real bluez_card for it: a2dp_sink, handsfree_head_unit (unavailable:
// no RFCOMM link) and off. It returns the [audio] config and the native
// socket.
func startHeadsetPulse(t *testing.T) (audioConfig, native string) {
	t.Helper()
	if _, err := exec.LookPath("pulseaudio"); err != nil {
		t.Skip("pulseaudio is not installed")
	}
	if m, _ := filepath.Glob("/usr/lib/pulse-*/modules/module-bluetooth-discover.so"); len(m) == 0 {
		t.Skip("pulseaudio-module-bluetooth is not installed")
	}
	addr := startBluezMock(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(path dbus.ObjectPath, method string, args ...any) {
		t.Helper()
		if err := conn.Object("org.bluez", path).CallWithContext(ctx, method, 0, args...).Err; err != nil {
			t.Fatalf("%s %s: %v", path, method, err)
		}
	}
	const adapter, dev = dbus.ObjectPath("/org/bluez/hci0"), dbus.ObjectPath("/org/bluez/hci0/dev_00_1B_66_AA_BB_CC")
	// PulseAudio offers a profile only if the adapter has the local role
	// (A2DP source, HFP audio gateway) and registers its endpoints with
	// Media1.RegisterApplication, which the template lacks.
	call(adapter, "org.freedesktop.DBus.Mock.UpdateProperties", "org.bluez.Adapter1", map[string]dbus.Variant{
		"UUIDs": dbus.MakeVariant([]string{"00001200-0000-1000-8000-00805f9b34fb", "0000110a-0000-1000-8000-00805f9b34fb",
			"0000111f-0000-1000-8000-00805f9b34fb", "00001112-0000-1000-8000-00805f9b34fb", "0000110e-0000-1000-8000-00805f9b34fb"})})
	call(adapter, "org.freedesktop.DBus.Mock.AddMethod", "org.bluez.Media1", "RegisterApplication", "oa{sv}", "", "")
	call(adapter, "org.freedesktop.DBus.Mock.AddMethod", "org.bluez.Media1", "UnregisterApplication", "o", "", "")
	call(dev, "org.freedesktop.DBus.Mock.UpdateProperties", "org.bluez.Device1", map[string]dbus.Variant{
		"UUIDs":     dbus.MakeVariant([]string{"0000110b-0000-1000-8000-00805f9b34fb", "0000111e-0000-1000-8000-00805f9b34fb"}),
		"Paired":    dbus.MakeVariant(true),
		"Trusted":   dbus.MakeVariant(true),
		"Connected": dbus.MakeVariant(true),
	})

	// PulseAudio's RegisterApplication says its endpoints are up.
	registered := make(chan *dbus.Signal, 16)
	conn.Signal(registered)
	if err := conn.AddMatchSignal(dbus.WithMatchObjectPath(adapter), dbus.WithMatchInterface("org.freedesktop.DBus.Mock"), dbus.WithMatchMember("MethodCalled")); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pa") // socket paths stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	startTestPulseIn(t, dir, pulseExtra{script: "load-module module-bluetooth-discover headset=native\n", env: []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr}})
	for waiting := true; waiting; {
		select {
		case s := <-registered:
			waiting = !(s.Name == "org.freedesktop.DBus.Mock.MethodCalled" && len(s.Body) > 0 && s.Body[0] == "RegisterApplication")
		case <-ctx.Done():
			t.Fatal("PulseAudio did not register its A2DP endpoints")
		}
	}
	conn.RemoveSignal(registered)
	pulse := pulseOnBus(t, ctx, conn)

	// PulseAudio acquires the stream from whoever configured it.
	tr := &a2dpTransport{t: t}
	t.Cleanup(tr.close)
	transport := dev + "/sep1/fd0"
	if err := conn.Export(tr, transport, "org.bluez.MediaTransport1"); err != nil {
		t.Fatal(err)
	}
	props := map[string]dbus.Variant{
		"Device": dbus.MakeVariant(dev), "UUID": dbus.MakeVariant("0000110a-0000-1000-8000-00805f9b34fb"),
		"Codec": dbus.MakeVariant(byte(0)), "State": dbus.MakeVariant("idle"),
		// SBC: 44.1 kHz joint stereo, 16 blocks, 8 subbands, loudness, bitpool 2..53.
		"Configuration": dbus.MakeVariant([]byte{0x21, 0x15, 2, 53}),
	}
	if err := conn.Object(pulse, "/MediaEndpoint/A2DPSource/sbc").CallWithContext(ctx, "org.bluez.MediaEndpoint1.SetConfiguration", 0, transport, props).Err; err != nil {
		t.Fatalf("configure the A2DP stream: %v", err)
	}
	native = filepath.Join(dir, "native")
	return "[audio]\nserver = \"unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket") + "\"\nnative = \"unix:" + native + "\"\n", native
}

// pulseOnBus is PulseAudio's unique name on the bus: the connection whose
// process is pulseaudio.
func pulseOnBus(t *testing.T, ctx context.Context, conn *dbus.Conn) string {
	t.Helper()
	var names []string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		var pid uint32
		if !strings.HasPrefix(n, ":") || conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, n).Store(&pid) != nil {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "pulseaudio" {
			return n
		}
	}
	t.Fatal("PulseAudio is not on the bus")
	return ""
}

// pactl asks the test PulseAudio directly, not through the agent.
func pactl(t *testing.T, native string, args ...string) string {
	t.Helper()
	out, err := exec.Command("pactl", append([]string{"--server", "unix:" + native}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pactl %v: %v\n%s", args, err, out)
	}
	return string(out)
}
