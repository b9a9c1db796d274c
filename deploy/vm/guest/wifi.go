package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/inotify"
)

// Hwsim loads mac80211_hwsim with n simulated radios (they share one
// simulated medium) and returns their interfaces, e.g. [wlan0 wlan1].
// Cleanup unloads the module, so stop the daemons on the radios first
// (start them after Hwsim: cleanups run last-in, first-out).
func Hwsim(t testing.TB, radios int) []string {
	t.Helper()
	if out, err := exec.Command("lsmod").Output(); err == nil && strings.Contains(string(out), "mac80211_hwsim") {
		t.Fatal("mac80211_hwsim is already loaded: a former test did not unload it")
	}
	ModprobeWith(t, "mac80211_hwsim", fmt.Sprintf("radios=%d", radios))
	t.Cleanup(func() {
		if out, err := exec.Command("modprobe", "-r", "mac80211_hwsim").CombinedOutput(); err != nil {
			t.Logf("cannot unload mac80211_hwsim: %v: %s", err, out)
		}
	})
	// The module registers every radio and its netdev before modprobe
	// returns.
	nets, _ := filepath.Glob("/sys/devices/virtual/mac80211_hwsim/hwsim*/net/*")
	var ifs []string
	for _, n := range nets {
		ifs = append(ifs, filepath.Base(n))
	}
	slices.Sort(ifs)
	if len(ifs) != radios {
		t.Fatalf("mac80211_hwsim radios=%d gave interfaces %v", radios, ifs)
	}
	return ifs
}

// Security kinds of HostapdConfig.
const (
	APOpen       = "open"
	APWPA2       = "wpa2"
	APWPA3       = "wpa3"
	APTransition = "wpa2/wpa3"
)

// HostapdConfig is one access point on a hwsim radio.
type HostapdConfig struct {
	Interface  string
	SSID       string
	Security   string // APOpen (default), APWPA2, APWPA3, APTransition
	Passphrase string
	Hidden     bool // ignore_broadcast_ssid=1
	Channel    int  // default 6 (2437 MHz)
	// Name of the process and its log; default "hostapd".
	Name string
	// Extra lines for hostapd.conf, e.g. "macaddr_acl=1".
	Extra []string
}

// Hostapd is a running access point.
type Hostapd struct {
	*Proc
	Config string // path of hostapd.conf
}

// hostapdConf renders c as hostapd.conf.
func hostapdConf(c HostapdConfig, ctrl string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface=%s\ndriver=nl80211\nctrl_interface=%s\nssid=%s\nhw_mode=g\nchannel=%d\n", c.Interface, ctrl, c.SSID, c.Channel)
	if c.Hidden {
		b.WriteString("ignore_broadcast_ssid=1\n")
	}
	switch c.Security {
	case APWPA2:
		fmt.Fprintf(&b, "wpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n", c.Passphrase)
	case APWPA3:
		fmt.Fprintf(&b, "wpa=2\nwpa_key_mgmt=SAE\nrsn_pairwise=CCMP\nieee80211w=2\nsae_password=%s\n", c.Passphrase)
	case APTransition:
		fmt.Fprintf(&b, "wpa=2\nwpa_key_mgmt=WPA-PSK SAE\nrsn_pairwise=CCMP\nieee80211w=1\nwpa_passphrase=%s\n", c.Passphrase)
	}
	for _, l := range c.Extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// StartHostapd writes a config into a temporary folder and runs hostapd in
// the foreground; it returns once the AP beacons (AP-ENABLED).
func StartHostapd(t testing.TB, c HostapdConfig) *Hostapd {
	t.Helper()
	if c.Channel == 0 {
		c.Channel = 6
	}
	if c.Security == "" {
		c.Security = APOpen
	}
	if c.Name == "" {
		c.Name = "hostapd"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "hostapd.conf")
	if err := os.WriteFile(conf, []byte(hostapdConf(c, filepath.Join(dir, "ctrl"))), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(LogDir(t), c.Name+".log")
	h := &Hostapd{Config: conf}
	h.Proc = StartDaemon(t, c.Name, exec.Command("hostapd", "-t", conf), 30*time.Second, func(ctx context.Context) error {
		return waitLog(ctx, log, "AP-ENABLED")
	})
	return h
}

// WpaSupplicantCtrl is the control socket folder of wpa_supplicant (-O):
// wpa_cli -p WpaSupplicantCtrl -i wlan1 status.
const WpaSupplicantCtrl = "/run/wpa_supplicant"

// StartWpaSupplicant runs wpa_supplicant as Debian's unit does: D-Bus only
// (-u), interfaces created over D-Bus, control sockets in
// WpaSupplicantCtrl. It returns once fi.w1.wpa_supplicant1 is on the bus.
func StartWpaSupplicant(t testing.TB, bus *Bus) *Proc {
	t.Helper()
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatalf("cannot connect to the system bus: %v", err)
	}
	defer conn.Close()
	// Ask for the name's arrival before starting it: readiness from the
	// bus, not from a poll.
	if err := conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, "fi.w1.wpa_supplicant1")); err != nil {
		t.Fatal(err)
	}
	sig := make(chan *dbus.Signal, 8)
	conn.Signal(sig)
	cmd := exec.Command("wpa_supplicant", "-u", "-O", WpaSupplicantCtrl, "-t", "-d")
	return StartDaemon(t, "wpa_supplicant", cmd, 30*time.Second, func(ctx context.Context) error {
		for {
			var has bool
			if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "fi.w1.wpa_supplicant1").Store(&has); err != nil {
				return err
			}
			if has {
				return nil
			}
			select {
			case <-sig:
			case <-ctx.Done():
				return fmt.Errorf("fi.w1.wpa_supplicant1 not on the bus: %w", ctx.Err())
			}
		}
	})
}

// MovePhy moves the radio of a wireless interface into ns (a wireless
// netdev moves with its phy: iw phy PHY set netns name NS), e.g. so a
// "phone" on the third hwsim radio has its own addresses and routes.
func MovePhy(t testing.TB, iface string, ns *Netns) {
	t.Helper()
	phy, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "phy80211/name"))
	if err != nil {
		t.Fatalf("cannot find the radio of %s: %v", iface, err)
	}
	run(t, "iw", "phy", strings.TrimSpace(string(phy)), "set", "netns", "name", ns.Name)
	ns.Up(t, iface)
}

// Phone is a second wpa_supplicant, configured by file (no D-Bus), that
// joins one WPA2 network as a phone would and re-joins it when it comes
// back.
type Phone struct {
	*Proc
	NS    *Netns
	Iface string
	Ctrl  string // its control socket folder, for wpa_cli -p
}

// StartPhone runs wpa_supplicant on iface in ns for network ssid/psk on
// freq (MHz, 0: scan everything). It returns at once: WaitConnected
// waits for the association.
func StartPhone(t testing.TB, ns *Netns, iface, ssid, psk string, freq int) *Phone {
	t.Helper()
	dir := t.TempDir()
	p := &Phone{NS: ns, Iface: iface, Ctrl: filepath.Join(dir, "ctrl")}
	conf := fmt.Sprintf("ctrl_interface=%s\nnetwork={\n\tssid=%q\n\tpsk=%q\n\tkey_mgmt=WPA-PSK\n", p.Ctrl, ssid, psk)
	if freq != 0 {
		conf += fmt.Sprintf("\tscan_freq=%d\n", freq)
	}
	conf += "}\n"
	path := filepath.Join(dir, "phone.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Proc = Start(t, "phone-wpa_supplicant", ns.Command("wpa_supplicant", "-i", iface, "-c", path, "-t"))
	t.Cleanup(func() { p.Stop() })
	return p
}

// WaitConnected waits until the phone has associated n times in all
// (CTRL-EVENT-CONNECTED lines in its log).
func (p *Phone) WaitConnected(ctx context.Context, n int) error {
	return inotify.WaitCount(ctx, p.Log, "CTRL-EVENT-CONNECTED", n)
}

// DHCP gets an address for the phone with busybox udhcpc and puts it on
// its interface; it returns the address.
func (p *Phone) DHCP(t testing.TB) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	out := filepath.Join(t.TempDir(), "address")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && ip addr add $ip/${mask:-24} dev $interface && echo $ip > "+out+"\nexit 0\n"), 0o755)
	if b, err := p.NS.Command("busybox", "udhcpc", "-i", p.Iface, "-n", "-q", "-t", "8", "-T", "2", "-s", script).CombinedOutput(); err != nil {
		t.Fatalf("the phone got no address: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the phone's udhcpc bound no address: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// WaitLogCount waits until p's log holds substr n times in all, e.g.
// wpa_supplicant's "CTRL-EVENT-REGDOM-CHANGE": an event it logged,
// without a race against the start of a watcher.
func (p *Proc) WaitLogCount(ctx context.Context, substr string, n int) error {
	return inotify.WaitCount(ctx, p.Log, substr, n)
}
