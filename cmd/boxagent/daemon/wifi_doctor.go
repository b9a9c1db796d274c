package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/wifi"
)

// wifiDoctor checks what Wi-Fi needs: wpa_supplicant installed, running
// with -u (on the system bus), and the interface not managed by another
// daemon (NetworkManager, iwd). doctor.go calls it with
// checks = append(checks, a.wifiDoctor(ctx)).
func (a *agent) wifiDoctor(ctx context.Context) apitype.Check {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return apitype.Check{Name: "wifi", Result: apitype.CheckSkip, Detail: "no system bus: " + err.Error()}
	}
	defer conn.Close()
	cfg := wifiConfig(a.config())
	c := checkWiFi(ctx, conn, a.paths, cfg.Interface)
	if c.Result != apitype.CheckOK {
		return c
	}
	return checkCountry(c, cfg.Country, func() (string, error) {
		h, err := netlink.NewHandle()
		if err != nil {
			return "", err
		}
		defer h.Close()
		return wifi.RegDomain(h)
	})
}

// checkCountry adds the regulatory domain to a passing Wi-Fi check: a
// configured country the kernel did not apply is a warning (most often
// no regulatory database), none configured is said.
func checkCountry(c apitype.Check, want wifi.Country, reg func() (string, error)) apitype.Check {
	have, err := reg()
	switch {
	case err != nil:
		c.Detail += "; regulatory domain unknown: " + err.Error()
	case want == "":
		c.Detail += "; no [wifi] country: the kernel's domain is " + have
	case have != string(want):
		c.Result = apitype.CheckWarn
		c.Detail += "; [wifi] country is " + string(want) + " but the kernel's domain is " + have
		c.Fix = "the kernel reads /lib/firmware/regulatory.db: apt-get install wireless-regdb, then restart wpa_supplicant and boxagent"
	default:
		c.Detail += "; country " + have
	}
	return c
}

// checkWiFi is wifiDoctor on a given bus and root.
func checkWiFi(ctx context.Context, conn *dbus.Conn, p paths.Paths, configured string) apitype.Check {
	c := apitype.Check{Name: "wifi"}
	iface, err := wifiInterface(p, configured)
	if err != nil {
		c.Result, c.Detail = apitype.CheckSkip, err.Error()
		if configured != "" {
			c.Result, c.Fix = apitype.CheckWarn, "set [wifi] interface to a link listed by: ls /sys/class/net/*/wireless"
		}
		return c
	}
	installed := false
	for _, dir := range []string{"/sbin", "/usr/sbin", "/usr/bin", "/bin"} {
		if _, err := os.Stat(p.Host(filepath.Join(dir, "wpa_supplicant"))); err == nil {
			installed = true
		}
	}
	onBus := nameHasOwner(ctx, conn, wifi.SupplicantName)
	switch cmdline, running := findProcess(p, "wpa_supplicant"); {
	case !installed && !running:
		c.Result, c.Detail, c.Fix = apitype.CheckFail, "wpa_supplicant is not installed", "apt-get install wpasupplicant"
		return c
	case running && !onBus && !slices.Contains(cmdline, "-u"):
		c.Result, c.Detail = apitype.CheckFail, "wpa_supplicant runs without -u, so boxagent cannot drive it over D-Bus: "+strings.Join(cmdline, " ")
		c.Fix = "run it as Debian's wpa_supplicant.service does (wpa_supplicant -u -s -O /run/wpa_supplicant): systemctl enable --now wpa_supplicant"
		return c
	case !onBus:
		c.Result, c.Detail, c.Fix = apitype.CheckFail, "wpa_supplicant is not on the system bus", "systemctl enable --now wpa_supplicant"
		return c
	}
	if other := wifi.OtherManager(ctx, conn, iface); other != "" {
		c.Result, c.Detail = apitype.CheckWarn, other
		c.Fix = "nmcli device set " + iface + " managed no (or unmanaged-devices=interface-name:" + iface + " in NetworkManager.conf); stop iwd"
		return c
	}
	c.Result, c.Detail = apitype.CheckOK, "wpa_supplicant answers on the bus; "+iface+" is boxagent's"
	return c
}

func nameHasOwner(ctx context.Context, conn *dbus.Conn, name string) bool {
	var has bool
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
	return err == nil && has
}

// findProcess returns the command line of a process named comm.
func findProcess(p paths.Paths, comm string) ([]string, bool) {
	entries, err := os.ReadDir(p.Proc())
	if err != nil {
		return nil, false
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		c, err := os.ReadFile(filepath.Join(p.Proc(), e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join(p.Proc(), e.Name(), "cmdline"))
		return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00"), true
	}
	return nil, false
}
