package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm"
)

// BluetoothModules are what two virtual controllers and audio profiles need.
var BluetoothModules = []string{"hci_vhci", "rfcomm", "bnep"}

// The controllers `btvirt -l2` creates: hci0 is the board's, hci1 stands
// for the headset.
const (
	BtvirtAddr0 = "00:AA:01:00:00:00"
	BtvirtAddr1 = "00:AA:01:01:00:01"
)

// Known flake (seen once in eight boots, on a loaded machine): the kernel
// sends HCI Reset as soon as the controller exists and, when btvirt is
// slow to read it, "hci0: Opcode 0x0c03 failed: -110" leaves hci0 out of
// bluetoothd; StartBluetoothd then fails with that line in its error.
//
// StartBtvirt loads hci_vhci and runs BlueZ's emulator with two BR/EDR
// controllers (a fake: it stands for the box's radio and the headset's),
// through the SCO shim when the lab built it; it returns once the kernel
// announced hci0 and hci1.
func StartBtvirt(t testing.TB) *Proc {
	t.Helper()
	Modprobe(t, BluetoothModules...)
	u, err := OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	cmd := exec.Command("btvirt", "-l2")
	// LAB_BT_NOSHIM=1 runs btvirt as Debian ships it, to tell the shim's
	// faults from BlueZ's.
	if shim := os.Getenv(vm.EnvBtvirtShim); shim != "" && os.Getenv("LAB_BT_NOSHIM") == "" {
		if _, err := os.Stat(shim); err == nil {
			cmd.Env = append(os.Environ(), "LD_PRELOAD="+shim)
		} else {
			t.Logf("no SCO shim at %s: SCO links will not work", shim)
		}
	}
	return StartDaemon(t, "btvirt", cmd, 20*time.Second, func(ctx context.Context) error {
		seen := map[string]bool{}
		for _, n := range []string{"hci0", "hci1"} {
			if _, err := os.Stat("/sys/class/bluetooth/" + n); err == nil {
				seen[n] = true
			}
		}
		for !seen["hci0"] || !seen["hci1"] {
			ev, err := u.Wait(ctx, func(ev Uevent) bool { return ev.Subsystem == "bluetooth" && ev.Action == "add" })
			if err != nil {
				return fmt.Errorf("controllers seen %v: %w", seen, err)
			}
			seen[ev.DevPath[strings.LastIndex(ev.DevPath, "/")+1:]] = true
		}
		return nil
	})
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
	conn, err := dbus.Connect(bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatalf("cannot connect to the system bus: %v", err)
	}
	defer conn.Close()
	ch := make(chan *dbus.Signal, 64)
	conn.Signal(ch)
	if err := conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, "org.bluez")); err != nil {
		t.Fatal(err)
	}
	if err := conn.AddMatchSignal(dbus.WithMatchSender("org.bluez"), dbus.WithMatchMember("InterfacesAdded")); err != nil {
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
			case s := <-ch:
				seen = append(seen, fmt.Sprint(s.Name, s.Path, s.Body))
				if s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3 && s.Body[2] != "" {
					b.Owner = s.Body[2].(string)
				}
			case <-ctx.Done():
				return fmt.Errorf("bluetoothd did not take org.bluez: %w", ctx.Err())
			}
		}
		for {
			var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
			if err := conn.Object("org.bluez", "/").CallWithContext(ctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs); err != nil {
				return err
			}
			_, a0 := objs["/org/bluez/hci0"]
			_, a1 := objs["/org/bluez/hci1"]
			if a0 && a1 {
				return nil
			}
			// An InterfacesAdded says to look again. The one-second look
			// is a safety net: a first run missed the adapters' signals
			// (see the error below for what did arrive).
			select {
			case s := <-ch:
				seen = append(seen, fmt.Sprint(s.Name, " ", s.Path))
			case <-time.After(time.Second):
				// The flake below leaves a controller down: open it again
				// (HCIDEVUP reruns its init), as hciconfig hciN up would.
				for i, ok := range []bool{a0, a1} {
					if !ok {
						hciUp(i)
					}
				}
			case <-ctx.Done():
				return fmt.Errorf("bluetoothd does not list hci0 and hci1 (it has %v; signals %v): %w\n%s", keysOf(objs), seen, ctx.Err(), btDiagnostics())
			}
		}
	})
	return b
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

// StartBlueZ starts the system bus, btvirt and bluetoothd, in that order.
func StartBlueZ(t testing.TB) *BlueZ {
	t.Helper()
	z := &BlueZ{Bus: StartSystemBus(t)}
	z.Btvirt = StartBtvirt(t)
	z.Bluetoothd = StartBluetoothd(t, z.Bus)
	return z
}

func keysOf(m map[dbus.ObjectPath]map[string]map[string]dbus.Variant) []string {
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

// hciUp is the HCIDEVUP ioctl on controller index: it reruns the
// controller's init after one that timed out.
func hciUp(index int) error {
	fd, err := unix.Socket(unix.AF_BLUETOOTH, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.BTPROTO_HCI)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	const hciDevUp = 0x400448c9 // _IOW('H', 201, int)
	return unix.IoctlSetInt(fd, hciDevUp, index)
}
