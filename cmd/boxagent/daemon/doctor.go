package daemon

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/deploy/systemd"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// Doctor implements localapi.Backend: checks of the running agent and the
// daemons it depends on, each with a one-line fix.
func (a *agent) Doctor(ctx context.Context) apitype.Doctor {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	checks := []apitype.Check{a.checkLimits(), a.journalCheck(), a.storeCheck()}
	checks = append(checks, a.checkBus(ctx)...)
	checks = append(checks, a.checkAudio(ctx)...)
	checks = append(checks, a.wifiDoctor(ctx))
	checks = append(checks, a.resolverCheck(), a.checkOrphans())
	checks = append(checks, hashCheck(kernelhash.Backend(crypto.SHA256)))
	checks = append(checks, fleetCheck(a.fleetInfo(), time.Now()))
	return apitype.Doctor{Checks: checks}
}

// hashCheck tells what hashes packages: the kernel (a crypto engine or
// the CPU's code), Go's SHA-256 where the kernel offers none, or Go's
// because the kernel's sums were wrong, which is worth a fix.
func hashCheck(name string, why error) apitype.Check {
	c := apitype.Check{Name: "package hashing", Result: apitype.CheckOK, Detail: name}
	switch {
	case errors.Is(why, kernelhash.ErrWrongSum):
		c.Result = apitype.CheckWarn
		c.Detail = "Go's SHA-256, slower: " + why.Error()
		c.Fix = "blacklist the crypto engine's kernel module (modprobe.blacklist=…; /proc/crypto names the sha256 drivers)"
	case why != nil:
		c.Detail = "Go's SHA-256 (the kernel's: " + why.Error() + ")"
	}
	return c
}

// checkLimits compares the daemon's own open-file limit with the unit's
// LimitNOFILE=: limits set in a shell profile never reach a service.
func (a *agent) checkLimits() apitype.Check {
	c := apitype.Check{Name: "limits"}
	soft, hard, err := readNoFile(filepath.Join(a.paths.Proc(), strconv.Itoa(os.Getpid()), "limits"))
	if err != nil {
		c.Result, c.Detail = apitype.CheckFail, err.Error()
		return c
	}
	want, unit := a.unitNoFile()
	c.Detail = fmt.Sprintf("open files soft %s hard %s", soft, hard)
	switch {
	case unit != "" && want != "" && want != soft:
		c.Result = apitype.CheckWarn
		c.Detail += fmt.Sprintf("; %s sets LimitNOFILE=%s", unit, want)
		c.Fix = "systemctl daemon-reload && systemctl restart boxagent"
	case soft != "unlimited" && atoiOr(soft, 0) < minNoFile:
		c.Result = apitype.CheckWarn
		c.Fix = fmt.Sprintf("set LimitNOFILE=%d or more in the boxagent unit", minNoFile*4)
	default:
		c.Result = apitype.CheckOK
	}
	return c
}

// readNoFile reads the "Max open files" row of /proc/PID/limits.
func readNoFile(path string) (soft, hard string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("cannot read limits: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Max open files"); ok {
			fields := strings.Fields(rest)
			if len(fields) >= 2 {
				return fields[0], fields[1], nil
			}
		}
	}
	return "", "", fmt.Errorf("no open-files row in %s", path)
}

// unitNoFile finds LimitNOFILE= in the installed unit, if any.
func (a *agent) unitNoFile() (value, unit string) {
	for _, dir := range systemd.UnitDirs() {
		p := a.paths.Host(filepath.Join(dir, "boxagent.service"))
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "LimitNOFILE="); ok {
				soft, _, _ := strings.Cut(v, ":")
				if soft == "infinity" {
					soft = "unlimited"
				}
				return soft, p
			}
		}
		return "", p
	}
	return "", ""
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// busNames are the services boxagent drives, with how to fix their
// absence and, where there is one, a call that shows the owner of the
// name is the service and can be driven (a hung daemon, or another
// program, can hold the name).
var busNames = []struct {
	name, what, fix string
	probe           func(ctx context.Context, conn *dbus.Conn) apitype.Check
}{
	{"org.bluez", "BlueZ (bluetoothd)", "apt-get install bluez && systemctl enable --now bluetooth", probeBluez},
	{"fi.w1.wpa_supplicant1", "wpa_supplicant with -u", "systemctl enable --now wpa_supplicant", nil},
}

// checkBus checks the system bus and the services on it.
func (a *agent) checkBus(ctx context.Context) []apitype.Check {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return []apitype.Check{{Name: "system bus", Result: apitype.CheckFail,
			Detail: "cannot connect: " + err.Error(), Fix: "systemctl start dbus"}}
	}
	defer conn.Close()
	checks := []apitype.Check{{Name: "system bus", Result: apitype.CheckOK, Detail: "reachable"}}
	for _, n := range busNames {
		var has bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, n.name).Store(&has)
		c := apitype.Check{Name: n.name}
		switch {
		case err != nil:
			c.Result, c.Detail = apitype.CheckFail, "cannot ask the bus: "+err.Error()
		case has && n.probe != nil:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c = n.probe(pctx, conn)
			cancel()
		case has:
			c.Result, c.Detail = apitype.CheckOK, n.what+" answers"
		default:
			c.Result, c.Detail, c.Fix = apitype.CheckWarn, n.what+" is not on the bus", n.fix
		}
		checks = append(checks, c)
	}
	return checks
}

// probeBluez asks org.bluez for its objects, as the Bluetooth domain does
// when it starts: the owner must answer as BlueZ and have an adapter.
func probeBluez(ctx context.Context, conn *dbus.Conn) apitype.Check {
	c := apitype.Check{Name: "org.bluez"}
	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	err := conn.Object("org.bluez", "/").CallWithContext(ctx, "org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs)
	if err != nil {
		c.Result, c.Detail, c.Fix = apitype.CheckFail, "org.bluez has an owner that does not answer as BlueZ: "+err.Error(),
			"systemctl restart bluetooth; busctl status org.bluez names the owner"
		return c
	}
	var adapters []string
	for p, ifaces := range objs {
		if _, ok := ifaces["org.bluez.Adapter1"]; ok {
			adapters = append(adapters, path.Base(string(p)))
		}
	}
	sort.Strings(adapters)
	if len(adapters) == 0 {
		c.Result, c.Detail, c.Fix = apitype.CheckWarn, "BlueZ (bluetoothd) answers but has no adapter",
			"rfkill unblock bluetooth; btmgmt info lists the controllers the kernel has"
		return c
	}
	c.Result, c.Detail = apitype.CheckOK, "BlueZ (bluetoothd) answers, adapters: "+strings.Join(adapters, ", ")
	return c
}

// helpers are the long-lived processes boxagent relies on; each must run
// under a systemd unit of its own, never as a reparented child.
var helpers = map[string]bool{
	"pulseaudio": true, "pppd": true, "wpa_supplicant": true, "udhcpc": true,
	"dnsmasq": true, "hostapd": true, "bluetoothd": true,
}

// checkOrphans finds helpers whose parent is PID 1 but which do not sit in
// a service of their own: the grandchildren a SIGKILLed supervisor leaks.
func (a *agent) checkOrphans() apitype.Check {
	c := apitype.Check{Name: "orphaned helpers"}
	entries, err := os.ReadDir(a.paths.Proc())
	if err != nil {
		c.Result, c.Detail = apitype.CheckFail, "cannot read /proc: "+err.Error()
		return c
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, ppid, err := readStat(filepath.Join(a.paths.Proc(), e.Name(), "stat"))
		if err != nil || ppid != 1 || !helpers[comm] {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join(a.paths.Proc(), e.Name(), "cgroup"))
		if orphanedCgroup(string(cg)) {
			found = append(found, fmt.Sprintf("%s[%d]", comm, pid))
		}
	}
	if len(found) == 0 {
		c.Result, c.Detail = apitype.CheckOK, "none"
		return c
	}
	c.Result = apitype.CheckWarn
	c.Detail = "running outside a unit of their own: " + strings.Join(found, " ")
	c.Fix = "kill them, then start the helper through its systemd unit"
	return c
}

// orphanedCgroup says whether a helper's cgroup is not a service unit of
// its own: a session scope, the agent's own unit, or no unit at all.
func orphanedCgroup(cgroup string) bool {
	for _, line := range strings.Split(strings.TrimSpace(cgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := parts[2]
		base := filepath.Base(path)
		if strings.HasSuffix(base, ".service") && base != "boxagent.service" {
			return false
		}
		return true
	}
	return true
}

// readStat returns the command name and parent PID from /proc/PID/stat.
func readStat(path string) (string, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return "", 0, fmt.Errorf("malformed %s", path)
	}
	fields := strings.Fields(s[close+1:])
	if len(fields) < 2 {
		return "", 0, fmt.Errorf("malformed %s", path)
	}
	ppid, err := strconv.Atoi(fields[1])
	return s[open+1 : close], ppid, err
}
