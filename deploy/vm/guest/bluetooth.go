package guest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm"
)

// BluetoothModules are what two virtual controllers and audio profiles
// need. The crypto ones are btvirt's (see StartBtvirt): loaded here, they
// are not loaded by the kernel's modprobe helper while hci0 waits.
var BluetoothModules = append([]string{"hci_vhci", "rfcomm", "bnep"}, btvirtCryptoModules...)

// btvirtCryptoModules back the AF_ALG sockets (ecb(aes) skcipher,
// cmac(aes) hash) every emulated controller opens in btdev_create.
var btvirtCryptoModules = []string{"af_alg", "algif_skcipher", "algif_hash", "ecb", "cmac"}

// The controllers `btvirt -l2` creates: hci0 is the board's, hci1 stands
// for the headset.
const (
	BtvirtAddr0 = "00:AA:01:00:00:00"
	BtvirtAddr1 = "00:AA:01:01:00:01"
)

// btvirtAttempts is how many times StartBtvirt starts btvirt before it
// gives up; btvirtSetup is how long one attempt may take until both
// controllers finished their init (0.2-2.2 s seen; the kernel gives each
// init command 2 s, so a failed one has shown by then).
const (
	btvirtAttempts = 3
	btvirtSetup    = 15 * time.Second
)

// StartBtvirt loads hci_vhci and runs BlueZ's emulator with two BR/EDR
// controllers (a fake: it stands for the box's radio and the headset's),
// through the SCO shim when the lab built it. It returns once the kernel
// has finished both controllers' init, as the management interface's
// Index Added says: that is when bluetoothd can use them.
//
// The flake this fixes ("hci0: Opcode 0x0c03 failed: -110", about one
// boot in four, bluetoothd then listing only hci1): the kernel sends a
// new controller its HCI Reset at once and waits 2 s for the answer
// (HCI_CMD_TIMEOUT), but btvirt -l2 answers hci0 only from its main loop,
// after it has created hci1. In between, btdev_create for hci0 opens
// AF_ALG sockets (BlueZ's bt_crypto_new: ecb(aes), cmac(aes)), and on the
// first btvirt of a boot that makes the kernel load af_alg, algif_skcipher,
// algif_hash, ecb and cmac through its modprobe helper, one process start
// after another under TCG. The shim's trace (LAB_BT_TRACE=1) of a failed
// boot: hci0 created at 11.69 s, "NET: Registered PF_ALG protocol family"
// at 11.90 s, the kernel's -110 at 13.76 s, hci1 created at 14.32 s; a
// later btvirt in the same boot bridges that gap in 7 ms. So the modules
// are loaded and the algorithms built before btvirt starts
// (prepareBtvirt). Should a
// controller still miss its init, btvirt is started again (its controllers
// never recover by themselves: a failed setup is not announced, and
// HCIDEVUP does not announce it either), each failed attempt logged with
// the kernel's lines.
func StartBtvirt(t testing.TB) *Proc {
	t.Helper()
	prepareBtvirt(t)
	var errs []string
	for attempt := 1; attempt <= btvirtAttempts; attempt++ {
		p, err := startBtvirtOnce(t, attempt)
		if err == nil {
			if attempt > 1 {
				t.Logf("btvirt came up at attempt %d", attempt)
			}
			return p
		}
		t.Logf("btvirt attempt %d of %d failed: %v", attempt, btvirtAttempts, err)
		errs = append(errs, err.Error())
	}
	t.Fatalf("btvirt did not give two working controllers in %d attempts:\n%s", btvirtAttempts, strings.Join(errs, "\n"))
	return nil
}

// prepareBtvirt loads the modules and binds the AF_ALG sockets that
// btdev_create binds (BlueZ's bt_crypto_new: skcipher ecb(aes), hash
// cmac(aes)). Loaded modules were not enough: the first bind of a boot
// still has the kernel look for "crypto-ecb(aes)" and "crypto-cmac(aes)"
// through its modprobe helper before it builds and self-tests the
// instances from the templates (1.6-1.9 s per btvirt start in
// TestBtvirtRepeat's unprepared rounds, 0.1-0.3 s prepared). Done here,
// that happens before hci0 exists.
func prepareBtvirt(t testing.TB) {
	t.Helper()
	Modprobe(t, BluetoothModules...)
	for _, a := range []*unix.SockaddrALG{{Type: "skcipher", Name: "ecb(aes)"}, {Type: "hash", Name: "cmac(aes)"}} {
		fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("cannot open an AF_ALG socket: %v", err)
		}
		err = unix.Bind(fd, a)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("cannot bind AF_ALG %s %s (btvirt needs it): %v", a.Type, a.Name, err)
		}
	}
}

// startBtvirtOnce starts btvirt and waits for both controllers' Index
// Added; on failure it stops btvirt and waits until the kernel removed
// its controllers.
func startBtvirtOnce(t testing.TB, attempt int) (*Proc, error) {
	m, err := OpenMgmt()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exec.Command("dmesg", "--clear").Run() // the diagnostics show this attempt's lines
	name := "btvirt"
	if attempt > 1 {
		name = fmt.Sprintf("btvirt-%d", attempt)
	}
	cmd := exec.Command("btvirt", "-l2")
	shimLog := filepath.Join(LogDir(t), name+"-shim.log")
	cmd.Env = append(os.Environ(), "BTVIRT_SHIM_LOG="+shimLog)
	// LAB_BT_NOSHIM=1 runs btvirt as Debian ships it, to tell the shim's
	// faults from BlueZ's; LAB_BT_TRACE=1 has the shim log every packet.
	if shim := os.Getenv(vm.EnvBtvirtShim); shim != "" && os.Getenv("LAB_BT_NOSHIM") == "" {
		if _, err := os.Stat(shim); err == nil {
			cmd.Env = append(cmd.Env, "LD_PRELOAD="+shim)
		} else {
			t.Logf("no SCO shim at %s: SCO links will not work", shim)
		}
	}
	if os.Getenv("LAB_BT_TRACE") != "" {
		cmd.Env = append(cmd.Env, "BTVIRT_SHIM_TRACE=1")
	}
	start := time.Now()
	p := Start(t, name, cmd)
	var seen map[uint16]bool
	err = p.Ready(btvirtSetup, func(ctx context.Context) error {
		var err error
		seen, err = m.WaitIndexes(ctx, 0, 1)
		return err
	})
	if err == nil {
		t.Logf("btvirt: hci0 and hci1 set up in %s", time.Since(start).Round(time.Millisecond))
		return p, nil
	}
	err = fmt.Errorf("controllers set up: %v: %w\n%s", seen, err, btDiagnostics())
	stopBtvirt(t, p)
	return nil, err
}

// stopBtvirt stops btvirt and waits until the kernel removed its
// controllers, so that the next btvirt gets hci0 and hci1 again.
func stopBtvirt(t testing.TB, p *Proc) {
	u, err := OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, hci := range []string{"hci0", "hci1"} {
		for {
			if _, err := os.Stat("/sys/class/bluetooth/" + hci); err != nil {
				break
			}
			if _, err := u.Wait(ctx, func(ev Uevent) bool { return ev.Subsystem == "bluetooth" && ev.Action == "remove" }); err != nil {
				t.Fatalf("%s still there after btvirt stopped: %v", hci, err)
			}
		}
	}
}

// Bluetoothd is a running bluetoothd.
type Bluetoothd struct {
	Proc *Proc
	// Owner is its unique name on the system bus.
	Owner string
}

// StartBluetoothd runs bluetoothd -n on the system bus and returns once it
// owns org.bluez and lists both controllers (signals, no polling).
func StartBluetoothd(t testing.TB, bus *Bus) *Bluetoothd {
	t.Helper()
	w, err := watchBluez(bus, "InterfacesAdded")
	if err != nil {
		t.Fatal(err)
	}
	defer w.conn.Close()
	if err := w.conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, "org.bluez")); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n"}
	if os.Getenv("LAB_BT_DEBUG") != "" {
		args = append(args, "-d")
	}
	b := &Bluetoothd{}
	var seen []string // what arrived, for the error
	b.Proc = StartDaemon(t, "bluetoothd", exec.Command("/usr/libexec/bluetooth/bluetoothd", args...), 30*time.Second, func(ctx context.Context) error {
		for b.Owner == "" {
			select {
			case s := <-w.ch:
				seen = append(seen, fmt.Sprint(s.Name, s.Path, s.Body))
				if s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3 && s.Body[2] != "" {
					b.Owner = s.Body[2].(string)
				}
			case <-ctx.Done():
				return fmt.Errorf("bluetoothd did not take org.bluez: %w", ctx.Err())
			}
		}
		return waitAdapters(ctx, w, &seen)
	})
	return b
}

// bluezWatch is a connection to the system bus that hears org.bluez's
// signals, to look at its objects again at each one.
type bluezWatch struct {
	conn *dbus.Conn
	ch   chan *dbus.Signal
}

// bluezObjects is org.bluez's object tree: path, interface, property.
type bluezObjects = map[dbus.ObjectPath]map[string]map[string]dbus.Variant

// watchBluez connects to bus and hears the org.bluez signals named
// members. Close its conn.
func watchBluez(bus *Bus, members ...string) (*bluezWatch, error) {
	conn, err := dbus.Connect(bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the system bus: %w", err)
	}
	w := &bluezWatch{conn: conn, ch: make(chan *dbus.Signal, 64)}
	conn.Signal(w.ch)
	for _, m := range members {
		if err := conn.AddMatchSignal(dbus.WithMatchSender("org.bluez"), dbus.WithMatchMember(m)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return w, nil
}

// until reads org.bluez's objects until ok holds for them, again at each
// signal heard (added to seen when not nil); with ctx's error it returns
// the objects it read last.
func (w *bluezWatch) until(ctx context.Context, seen *[]string, ok func(bluezObjects) bool) (bluezObjects, error) {
	for {
		var objs bluezObjects
		if err := w.conn.Object("org.bluez", "/").CallWithContext(ctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs); err != nil {
			return nil, err
		}
		if ok(objs) {
			return objs, nil
		}
		select {
		case s := <-w.ch:
			if seen != nil {
				*seen = append(*seen, fmt.Sprint(s.Name, " ", s.Path))
			}
		case <-ctx.Done():
			return objs, ctx.Err()
		}
	}
}

// waitAdapters waits until bluetoothd lists hci0 and hci1; w hears its
// InterfacesAdded, and what it hears is added to seen for the error.
// StartBtvirt returned once both controllers were set up, so bluetoothd
// adds both.
func waitAdapters(ctx context.Context, w *bluezWatch, seen *[]string) error {
	objs, err := w.until(ctx, seen, func(objs bluezObjects) bool {
		_, a0 := objs["/org/bluez/hci0"]
		_, a1 := objs["/org/bluez/hci1"]
		return a0 && a1
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("bluetoothd does not list hci0 and hci1 (it has %v; signals %v): %w\n%s", keysOf(objs), *seen, err, btDiagnostics())
	}
	return err
}

// WaitBluetoothd waits until the bluetoothd that owns org.bluez on bus
// lists hci0 and hci1 (signals, no polling): for one that systemd runs
// (Debian's bluetooth.service, which udev's bluetooth.target starts when
// a controller appears), after StartBtvirt.
func WaitBluetoothd(t testing.TB, bus *Bus, timeout time.Duration) {
	t.Helper()
	w, err := watchBluez(bus, "InterfacesAdded")
	if err != nil {
		t.Fatal(err)
	}
	defer w.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var seen []string
	if err := waitAdapters(ctx, w, &seen); err != nil {
		t.Fatal(err)
	}
}

// MakeHeadsetDiscoverable powers hci1, the headset's controller, and makes
// it pairable and discoverable (for bluetoothd's DiscoverableTimeout,
// 180 s by default), as a headset put in pairing mode is: the board's
// scan on hci0 finds it.
func MakeHeadsetDiscoverable(t testing.TB, bus *Bus) {
	t.Helper()
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatalf("cannot connect to the system bus: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range []string{"Powered", "Pairable", "Discoverable"} {
		err := conn.Object("org.bluez", "/org/bluez/hci1").CallWithContext(ctx, "org.freedesktop.DBus.Properties.Set", 0,
			"org.bluez.Adapter1", p, dbus.MakeVariant(true)).Err
		if err != nil {
			t.Fatalf("cannot set %s on hci1: %v", p, err)
		}
	}
}

// ConnectHeadsetA2DP asks the box's bluetoothd (hci0) to connect the
// headset's A2DP sink, with Device1.ConnectProfile: always over BR/EDR.
// (A btvirt controller is dual-mode; after a bluetoothd restart BlueZ
// 5.66's Device1.Connect may choose LE for a headset it last saw
// advertising there, refused: le-connection-abort-by-local.)
func ConnectHeadsetA2DP(ctx context.Context, bus *Bus, addr string) error {
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		return fmt.Errorf("cannot connect to the system bus: %w", err)
	}
	defer conn.Close()
	path := dbus.ObjectPath("/org/bluez/hci0/dev_" + strings.ReplaceAll(addr, ":", "_"))
	if err := conn.Object("org.bluez", path).CallWithContext(ctx, "org.bluez.Device1.ConnectProfile", 0, A2DPSinkUUID).Err; err != nil {
		return fmt.Errorf("ConnectProfile A2DP sink of %s: %w", addr, err)
	}
	return nil
}

// A2DPSourceUUID is a MediaTransport1's UUID when the local end sends
// (the box's music to a headset); A2DPSinkUUID when it receives.
const (
	A2DPSourceUUID = "0000110a-0000-1000-8000-00805f9b34fb"
	A2DPSinkUUID   = "0000110b-0000-1000-8000-00805f9b34fb"
)

// WaitA2DPTransport waits until bluetoothd has an A2DP transport
// (MediaTransport1) with uuid (its local endpoint's: A2DPSourceUUID or
// A2DPSinkUUID) for the device addr on adapter, i.e. until that stream is
// configured; signals, no polling. One direction can be up without the
// other: between two BlueZ controllers the headset side configures its
// own stream to the box too.
func WaitA2DPTransport(ctx context.Context, bus *Bus, adapter, addr, uuid string) error {
	w, err := watchBluez(bus, "InterfacesAdded")
	if err != nil {
		return err
	}
	defer w.conn.Close()
	dev := "/org/bluez/" + adapter + "/dev_" + strings.ReplaceAll(addr, ":", "_") + "/"
	_, err = w.until(ctx, nil, func(objs bluezObjects) bool {
		for p, ifs := range objs {
			tr, ok := ifs["org.bluez.MediaTransport1"]
			if u, _ := tr["UUID"].Value().(string); ok && strings.HasPrefix(string(p), dev) && strings.EqualFold(u, uuid) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("no A2DP transport %s under %s: %w", uuid, dev, err)
	}
	return nil
}

// Restart stops bluetoothd and starts a new one, as a crash and a
// systemd restart would.
func (b *Bluetoothd) Restart(t testing.TB, bus *Bus) *Bluetoothd {
	t.Helper()
	if err := b.Proc.Stop(); err != nil {
		t.Logf("bluetoothd: %v", err)
	}
	return StartBluetoothd(t, bus)
}

// BlueZ is the system bus, two virtual controllers and bluetoothd.
type BlueZ struct {
	Bus        *Bus
	Btvirt     *Proc
	Bluetoothd *Bluetoothd
}

// ResetControllers stops btvirt and starts it again while bluetoothd
// runs, as a radio's driver reset does: bluetoothd sees both
// controllers go (Index Removed) and come back.
func (z *BlueZ) ResetControllers(t testing.TB) {
	t.Helper()
	stopBtvirt(t, z.Btvirt)
	z.Btvirt = StartBtvirt(t)
}

// StartBlueZ starts the system bus, btvirt and bluetoothd, in that order.
func StartBlueZ(t testing.TB) *BlueZ {
	t.Helper()
	z := &BlueZ{Bus: StartSystemBus(t)}
	z.Btvirt = StartBtvirt(t)
	z.Bluetoothd = StartBluetoothd(t, z.Bus)
	return z
}

func keysOf(m bluezObjects) []string {
	var out []string
	for k := range m {
		out = append(out, string(k))
	}
	return out
}

// btDiagnostics says what the kernel and the management interface see,
// for a fixture that did not come up.
func btDiagnostics() string {
	var b strings.Builder
	for _, c := range [][]string{{"btmgmt", "info"}, {"sh", "-c", "dmesg | grep -iE 'bluetooth|hci' | tail -20"}, {"ls", "/sys/class/bluetooth"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput()
		cancel()
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(c, " "), err, out)
	}
	return b.String()
}

// The kernel's Bluetooth management interface (the one bluetoothd uses).
const (
	mgmtEvCmdComplete  = 0x0001
	mgmtEvIndexAdded   = 0x0004
	mgmtEvIndexRemoved = 0x0005
	mgmtOpReadIndex    = 0x0003
	mgmtIndexNone      = 0xffff
)

// mgmtEvent is one event from the management socket.
type mgmtEvent struct {
	Code, Index uint16
	Params      []byte
}

// Mgmt is a socket on the management channel. Index Added arrives when a
// controller has finished its setup (HCI Reset and the rest of the
// kernel's init), which is when bluetoothd can use it: a controller that
// exists in /sys but never sends it is one whose init failed.
type Mgmt struct {
	f   *os.File
	buf []byte
}

// OpenMgmt opens the management channel. Open it before starting btvirt
// to see every controller's Index Added.
func OpenMgmt() (*Mgmt, error) {
	fd, err := unix.Socket(unix.AF_BLUETOOTH, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.BTPROTO_HCI)
	if err != nil {
		return nil, fmt.Errorf("cannot open a Bluetooth socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrHCI{Dev: mgmtIndexNone, Channel: unix.HCI_CHANNEL_CONTROL}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot bind the Bluetooth management channel: %w", err)
	}
	return &Mgmt{f: os.NewFile(uintptr(fd), "mgmt"), buf: make([]byte, 4096)}, nil
}

// Close closes the socket.
func (m *Mgmt) Close() error { return m.f.Close() }

// read returns the next event, or an error when ctx is done.
func (m *Mgmt) read(ctx context.Context) (mgmtEvent, error) {
	dl, _ := ctx.Deadline()
	m.f.SetReadDeadline(dl)
	stop := context.AfterFunc(ctx, func() { m.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, err := m.f.Read(m.buf)
		if err != nil {
			if ctx.Err() != nil {
				return mgmtEvent{}, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return mgmtEvent{}, context.DeadlineExceeded
			}
			return mgmtEvent{}, fmt.Errorf("cannot read the management channel: %w", err)
		}
		if n < 6 {
			continue
		}
		b := m.buf[:n]
		plen := int(binary.LittleEndian.Uint16(b[4:]))
		if 6+plen > n {
			continue
		}
		return mgmtEvent{
			Code:   binary.LittleEndian.Uint16(b),
			Index:  binary.LittleEndian.Uint16(b[2:]),
			Params: append([]byte(nil), b[6:6+plen]...),
		}, nil
	}
}

// Indexes reads the list of controllers that finished their setup
// (Read Controller Index List).
func (m *Mgmt) Indexes(ctx context.Context) ([]uint16, error) {
	req := []byte{mgmtOpReadIndex & 0xff, mgmtOpReadIndex >> 8, 0xff, 0xff, 0, 0}
	if _, err := m.f.Write(req); err != nil {
		return nil, fmt.Errorf("cannot ask for the controller list: %w", err)
	}
	for {
		ev, err := m.read(ctx)
		if err != nil {
			return nil, err
		}
		// Command Complete: opcode(2) status(1) count(2) index(2)...
		p := ev.Params
		if ev.Code != mgmtEvCmdComplete || len(p) < 5 || binary.LittleEndian.Uint16(p) != mgmtOpReadIndex {
			continue
		}
		if p[2] != 0 {
			return nil, fmt.Errorf("read controller index list: mgmt status %#x", p[2])
		}
		var out []uint16
		for i, n := 0, int(binary.LittleEndian.Uint16(p[3:])); i < n && 5+2*i+2 <= len(p); i++ {
			out = append(out, binary.LittleEndian.Uint16(p[5+2*i:]))
		}
		return out, nil
	}
}

// WaitIndexes waits until every controller in want has been announced
// (Index Added) or is already in the index list; it returns the ones
// seen so far with ctx's error otherwise.
func (m *Mgmt) WaitIndexes(ctx context.Context, want ...uint16) (map[uint16]bool, error) {
	seen := map[uint16]bool{}
	have, err := m.Indexes(ctx)
	if err != nil {
		return seen, err
	}
	for _, i := range have {
		seen[i] = true
	}
	for {
		missing := false
		for _, i := range want {
			missing = missing || !seen[i]
		}
		if !missing {
			return seen, nil
		}
		ev, err := m.read(ctx)
		if err != nil {
			return seen, err
		}
		switch ev.Code {
		case mgmtEvIndexAdded:
			seen[ev.Index] = true
		case mgmtEvIndexRemoved:
			delete(seen, ev.Index)
		}
	}
}
