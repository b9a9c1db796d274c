//go:build lab

package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/firmware"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// The guest side runs on the systemd board (vm.Options.Systemd): PID 1 is
// the host's systemd, and these tests are the run's unit.

// installAgent installs boxagent as the .deb does (deploy/deb/scripts/
// postinst: groups, system user, /etc/boxagent the agent's), the units in
// /lib/systemd/system, the polkit rule, and a drop-in that shortens the
// watchdog for the test.
func installAgent(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		t.Fatal("PID 1 is not systemd: boot with vm.Options.Systemd")
	}
	dir := os.Getenv(envLabDir)
	sh(t, `set -e
for g in bluetooth netdev pulse-access; do getent group "$g" >/dev/null || addgroup --quiet --system "$g"; done
getent passwd boxagent >/dev/null || adduser --quiet --system --group --home /var/lib/boxagent --no-create-home \
	--shell /usr/sbin/nologin --gecos "boxagent agent" boxagent
adduser --quiet boxagent pulse-access
mkdir -p /etc/boxagent
chown boxagent:boxagent /etc/boxagent
chmod 0700 /etc/boxagent
install -m 0755 "$D/boxagent" /usr/bin/boxagent
install -m 0644 "$D/boxagent.service" "$D/boxagent-firstboot.service" "$D/boxagent-mount@.service" "$D/boxagent-pppoe@.service" \
	"$D/boxagent-resolvconf.path" "$D/boxagent-resolvconf.service" /lib/systemd/system/
mkdir -p /etc/polkit-1/rules.d /etc/systemd/system/boxagent.service.d
install -m 0644 "$D/50-boxagent.rules" /etc/polkit-1/rules.d/
printf '[Service]\nWatchdogSec=4s\nTimeoutAbortSec=2s\n' >/etc/systemd/system/boxagent.service.d/lab.conf
install -D -m 0644 "$D/boxagent-modules.conf" /usr/lib/modules-load.d/boxagent.conf
install -D -m 0644 "$D/70-boxagent-sticks.rules" /usr/lib/udev/rules.d/70-boxagent-sticks.rules
udevadm control --reload-rules
systemctl daemon-reload
# As the package's postinst does (a box's boot does it before any unit
# starts; the lab board masks the service for a quick boot).
systemctl unmask --quiet systemd-modules-load.service
systemctl restart systemd-modules-load.service`, "D="+dir)
}

// TestGuestFirstBoot is the first boot: provisioning from the boot
// image, then boxagent.service and what the unit promises.
func TestGuestFirstBoot(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	t.Run("FirstBootProvisioning", func(t *testing.T) {
		// A oneshot without RemainAfterExit is unloaded once it ends: its
		// properties are gone, the journal keeps what happened.
		sh(t, "systemctl start boxagent-firstboot.service")
		if j := journal(t, "boxagent-firstboot.service"); !strings.Contains(j, "Finished boxagent-firstboot.service") {
			t.Fatalf("boxagent-firstboot.service did not finish:\n%s", j)
		}
		stamped, _ := filepath.Glob("/boot/provision.toml.applied-*")
		if _, err := os.Stat("/boot/provision.toml"); err == nil || len(stamped) != 1 {
			t.Fatalf("after the first boot /boot should hold one provision.toml.applied-STAMP and no provision.toml: %v", stamped)
		}
		if fi, err := os.Stat("/etc/boxagent/config.toml"); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("config.toml: %v %v", fi, err)
		}
		t.Logf("applied, renamed to %s\n%s", stamped[0], journal(t, "boxagent-firstboot.service"))
	})
	if t.Failed() {
		return
	}

	// The stick is there before the agent starts, and udev has given it
	// group boxagent (the package's rule): the agent reads its partition
	// table at start.
	stick := guest.PlugStick(t, "stick")
	sh(t, "udevadm settle --timeout=60")
	dev := filepath.Base(stick.Partitions[0])

	t.Run("Readiness", func(t *testing.T) {
		// Type=notify: start returns once the agent sent READY=1.
		sh(t, "systemctl start boxagent.service")
		p := show(t, "boxagent.service", "ActiveState", "SubState", "StatusText", "MainPID", "User")
		if p["ActiveState"] != "active" || p["SubState"] != "running" || p["MainPID"] == "0" {
			t.Fatalf("boxagent.service after start: %v\n%s", p, journal(t, "boxagent.service"))
		}
		t.Logf("%v", p)
		st := procStatus(t, p["MainPID"])
		if capSet(t, st["CapEff"])&(1<<21) != 0 {
			t.Errorf("the agent has CAP_SYS_ADMIN: CapEff %s", st["CapEff"])
		}
		if !strings.HasPrefix(st["Uid"], uidOf(t, "boxagent")+"\t") {
			t.Errorf("the agent does not run as boxagent: Uid %s", st["Uid"])
		}
		// Not in group disk (every disk of the box): the stick alone is
		// readable, by the package's udev rule.
		disk := strings.Split(sh(t, "getent group disk"), ":")[2]
		if slices.Contains(strings.Fields(st["Groups"]), disk) {
			t.Errorf("the agent is in group disk (gid %s): Groups %s", disk, st["Groups"])
		}
		for _, node := range append([]string{stick.Disk}, stick.Partitions...) {
			if got := strings.TrimSpace(sh(t, "stat -c '%G %a' "+node)); got != "boxagent 640" {
				t.Errorf("%s is %s, want group boxagent mode 640 (70-boxagent-sticks.rules)", node, got)
			}
		}
	})
	if t.Failed() {
		return
	}
	t.Run("LimitNOFILE", func(t *testing.T) {
		pid := show(t, "boxagent.service", "MainPID")["MainPID"]
		b, err := os.ReadFile("/proc/" + pid + "/limits")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				if f := strings.Fields(l); len(f) < 5 || f[3] != "8192" || f[4] != "8192" {
					t.Errorf("LimitNOFILE=8192 not in effect: %q", l)
				}
				return
			}
		}
		t.Errorf("no Max open files line in /proc/%s/limits", pid)
	})
	// The agent's user may start the template units' instances and no
	// other unit: not a service, not a transient unit (on systemd 252
	// polkit cannot tell a transient unit's name: granting them would be
	// any unit, as root). And the mount helper takes no path or device but
	// a USB stick's.
	t.Run("NoOtherUnit", func(t *testing.T) {
		as := func(cmd string) (string, error) {
			out, err := exec.Command("setpriv", "--reuid=boxagent", "--regid=boxagent", "--init-groups", "--",
				"/bin/sh", "-c", cmd).CombinedOutput()
			return string(out), err
		}
		for _, cmd := range []string{
			"systemctl start systemd-hostnamed.service",
			"systemctl stop boxagent.service",
			"systemd-run --unit=evil /bin/true",
			"systemd-run --unit=boxagent-pppoe@evil /bin/true",
			"systemctl start boxagent-mount@rw-mmcblk0p1.service",
		} {
			out, err := as(cmd + " </dev/null")
			if err == nil || !strings.Contains(out, "denied") && !strings.Contains(out, "Access denied") && !strings.Contains(out, "Interactive authentication required") {
				t.Errorf("as boxagent, %s: %v\n%s", cmd, err, out)
			}
		}
		// Allowed by polkit, refused by the helper: not a USB stick.
		out, err := as("systemctl start boxagent-mount@rw-sdz9.service </dev/null")
		if err == nil {
			t.Errorf("boxagent-mount@rw-sdz9 started: %s", out)
		}
		if j := journal(t, "boxagent-mount@rw-sdz9.service"); !strings.Contains(j, "not a partition of a USB stick") {
			t.Errorf("the mount helper did not refuse a device that is no stick:\n%s%s", out, j)
		}
	})
	t.Run("StageThroughSystemdMounter", func(t *testing.T) {
		sha := os.Getenv(envSHA)
		// The agent reads the file itself: not from /tmp (PrivateTmp).
		sh(t, `install -m 0644 "$D/update.img" /srv/update.img`, "D="+os.Getenv(envLabDir))
		sh(t, "boxagent fw add /srv/update.img --sha256 "+sha)
		out := sh(t, "boxagent fw stage "+sha[:12]+" --device "+dev)
		if !strings.Contains(out, "staged "+sha) {
			t.Fatalf("fw stage:\n%s", out)
		}
		// The stick is mounted by an instance of the template, read-only
		// after the read-back.
		unit := "boxagent-mount@ro-" + dev + ".service"
		if p := show(t, unit, "ActiveState"); p["ActiveState"] != "active" {
			t.Fatalf("%s is %v after staging:\n%s\n%s", unit, p, journal(t, unit), journal(t, "boxagent.service"))
		}
		where := strings.TrimSpace(sh(t, "findmnt -n -o TARGET /dev/"+dev+" | head -1"))
		opts := sh(t, "findmnt -n -o OPTIONS "+where)
		if !strings.Contains(opts, "uid="+uidOf(t, "boxagent")) || !strings.HasPrefix(opts, "ro,") {
			t.Errorf("%s (%s) options %q: want ro (after the read-back) and uid=boxagent", unit, where, opts)
		}
		t.Logf("%s at %s: %s", unit, where, strings.TrimSpace(opts))
		// AF_ALG is in the unit's families: the kernel hashes the packages.
		hashed := sh(t, "journalctl -b --no-pager -o cat -u boxagent.service | grep 'packages are hashed' || true")
		if !strings.Contains(hashed, `by="kernel`) {
			t.Errorf("the hardened agent does not hash with the kernel's SHA-256: %q", hashed)
		}
		t.Logf("%s", strings.TrimSpace(hashed))
		if doc := sh(t, "boxagent doctor || true"); !regexp.MustCompile(`OK +package hashing +kernel sha`).MatchString(doc) {
			t.Errorf("boxagent doctor does not say the kernel hashes packages:\n%s", doc)
		}
		pid := show(t, "boxagent.service", "MainPID")["MainPID"]
		t.Logf("the agent's mounts of the stick:\n%s", sh(t, "grep /run/boxagent/usb /proc/"+pid+"/mountinfo || true"))
		out = sh(t, "boxagent fw eject --device "+strings.TrimRight(dev, "0123456789"))
		if !strings.Contains(out, "safe to pull") {
			t.Fatalf("fw eject:\n%s", out)
		}
		if units := sh(t, "systemctl list-units --state=active --plain --no-legend 'boxagent-mount@*'"); strings.TrimSpace(units) != "" {
			t.Errorf("mount unit still active after the eject:\n%s", units)
		}
		// PID 1's lines about the unit (its description names the stick).
		t.Logf("PID 1 on the mount units:\n%s", sh(t, "journalctl -b --no-pager -o short-monotonic --grep 'boxagent: USB stick' || true"))
	})
	t.Run("StickPluggedWhileRunning", func(t *testing.T) {
		// The agent follows kernel uevents, whose "add" comes before udev
		// has given the new disk group boxagent: the agent's open is refused,
		// and the watcher reads the disk again on udev's own event (group
		// 2 of the uevent socket). The stick must end up readable.
		udev := openUdevMonitor(t)
		defer unix.Close(udev)
		old := filepath.Base(stick.Disk)
		stick.Unplug(t)
		again := guest.PlugStick(t, "stick")
		name := filepath.Base(again.Disk)
		// The agent's events, from the first it holds: the stick's removal,
		// then its new states, whatever their timing.
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var seen []string
		gone, usable := false, false
		err := client.New(paths.Default.Socket(), "cli").EventsSince(ctx, 0, func(ev localapi.Event) error {
			var se firmware.StickEvent
			if ev.Type != "fw" || json.Unmarshal(ev.Data, &se) != nil || se.Type == "" {
				return nil
			}
			seen = append(seen, fmt.Sprintf("%s %s %q", se.Type, se.Stick.Name, se.Stick.Problem))
			switch {
			case se.Type == firmware.StickRemoved && se.Stick.Name == old:
				gone = true
			case gone && se.Type != firmware.StickRemoved && se.Stick.Name == name && se.Stick.Problem == "" && len(se.Stick.Disk.Partitions) > 0:
				usable = true
				return client.ErrStop
			}
			return nil
		})
		t.Logf("the agent's stick events:\n%s", strings.Join(seen, "\n"))
		if err != nil || !usable {
			t.Fatalf("the stick plugged while the agent runs did not become readable (%v):\n%s", err, sh(t, "boxagent fw sticks"))
		}
		out := sh(t, "boxagent fw sticks")
		if strings.Contains(out, "permission denied") || !strings.Contains(out, name) {
			t.Errorf("fw sticks after the replug:\n%s", out)
		}
		t.Logf("%s", out)
		// udevd's message for the disk, as the agent received it: real
		// bytes for firmware's parser tests.
		sh(t, "udevadm settle --timeout=60")
		if msg := udevMessageFor(udev, again.SysPath); msg != nil {
			t.Logf("udevd's message for %s (%d bytes): %x", name, len(msg), msg)
		}
	})
	t.Run("WatchdogRestart", func(t *testing.T) {
		p := show(t, "boxagent.service", "MainPID", "NRestarts")
		n, _ := strconv.Atoi(p["NRestarts"])
		// A stopped process sends no WATCHDOG=1: after WatchdogSec (4 s
		// in the drop-in) systemd aborts it, then kills it, and restarts.
		sh(t, "kill -STOP "+p["MainPID"])
		q := waitUnit(t, "boxagent.service", 2*time.Minute, func(q map[string]string) bool {
			r, _ := strconv.Atoi(q["NRestarts"])
			return r > n && q["ActiveState"] == "active" && q["SubState"] == "running" && q["MainPID"] != p["MainPID"]
		})
		t.Logf("restarted: %v -> %v", p, q)
		// Not journal(): the abort's goroutine dump fills its last lines.
		out, _ := exec.Command("journalctl", "-b", "--no-pager", "-o", "cat", "-u", "boxagent.service", "--grep", "[Ww]atchdog timeout").CombinedOutput()
		if !strings.Contains(string(out), "atchdog timeout") {
			t.Errorf("the journal does not say the watchdog fired: %s", out)
		}
		t.Logf("%s", out)
	})
	t.Run("KillModeControlGroup", func(t *testing.T) {
		p := show(t, "boxagent.service", "MainPID", "NRestarts", "ControlGroup")
		n, _ := strconv.Atoi(p["NRestarts"])
		// A helper of the agent (udhcpc, a copy) stands in: a process
		// moved into the service's cgroup.
		helper := exec.Command("sleep", "600")
		if err := helper.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- helper.Wait() }()
		procs := filepath.Join("/sys/fs/cgroup", p["ControlGroup"], "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(helper.Process.Pid)), 0o644); err != nil {
			helper.Process.Kill()
			t.Fatalf("cannot move the helper into %s: %v", procs, err)
		}
		sh(t, "kill -KILL "+p["MainPID"])
		select {
		case err := <-done:
			t.Logf("helper ended with the main process: %v", err)
		case <-time.After(time.Minute):
			helper.Process.Kill()
			t.Fatal("the helper in the cgroup outlived the SIGKILL of the main process")
		}
		q := waitUnit(t, "boxagent.service", 2*time.Minute, func(q map[string]string) bool {
			r, _ := strconv.Atoi(q["NRestarts"])
			return r > n && q["ActiveState"] == "active" && q["MainPID"] != p["MainPID"]
		})
		b, _ := os.ReadFile(procs)
		if strings.Contains(" "+strings.Join(strings.Fields(string(b)), " ")+" ", " "+strconv.Itoa(helper.Process.Pid)+" ") {
			t.Errorf("helper %d still in %s", helper.Process.Pid, procs)
		}
		t.Logf("restarted: %v -> %v; cgroup.procs now %q", p, q, strings.Fields(string(b)))
		// Stopped, the unit leaves nothing behind.
		sh(t, "systemctl stop boxagent.service")
		if b, err := os.ReadFile(procs); err == nil && strings.TrimSpace(string(b)) != "" {
			t.Errorf("processes left in %s after the stop: %q", procs, b)
		}
	})
}

// TestGuestSecondBoot: the first boot's provisioning is not applied again.
func TestGuestSecondBoot(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	sh(t, "systemctl start boxagent-firstboot.service")
	if j := journal(t, "boxagent-firstboot.service"); !strings.Contains(j, "skipped") || strings.Contains(j, "provisioned") {
		t.Errorf("boxagent-firstboot.service should be skipped on the second boot (its conditions unmet):\n%s", j)
	}
	stamped, _ := filepath.Glob("/boot/provision.toml.applied-*")
	if len(stamped) != 1 {
		t.Errorf("want one stamped provision.toml on the boot partition, have %v", stamped)
	}
	sh(t, "systemctl start boxagent.service")
	out := sh(t, "boxagent history --kind provision.apply --json")
	if n := strings.Count(out, `"provision.apply"`); n != 1 {
		t.Errorf("the journal has %d provisioning operations, want 1:\n%s", n, out)
	}
	t.Logf("journal:\n%s", out)
}

// sh runs a shell script (env: extra NAME=VALUE) and returns its output;
// a failure fails the test with the output.
func sh(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var why []byte
		if strings.Contains(script, "systemctl") {
			// A unit that failed to start says why in the journal only.
			why, _ = exec.Command("journalctl", "-b", "--no-pager", "-n", "40", "-o", "short-monotonic").CombinedOutput()
		}
		t.Fatalf("%s: %v\n%s%s", script, err, out, why)
	}
	return string(out)
}

// show reads unit properties with systemctl show.
func show(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	out := sh(t, "systemctl show -p "+strings.Join(props, ",")+" "+unit)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func journal(t *testing.T, unit string) string {
	out, _ := exec.Command("journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-n", "60", "-u", unit).CombinedOutput()
	return string(out)
}

// waitUnit waits until cond holds for the unit's properties, woken by
// systemd's PropertiesChanged signals for the unit (Manager.Subscribe),
// not by a timer.
func waitUnit(t *testing.T, unit string, timeout time.Duration, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	props := []string{"ActiveState", "SubState", "MainPID", "NRestarts"}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sd := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	var path dbus.ObjectPath
	if err := sd.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.LoadUnit", 0, unit).Store(&path); err != nil {
		t.Fatal(err)
	}
	if err := conn.AddMatchSignal(dbus.WithMatchObjectPath(path), dbus.WithMatchInterface("org.freedesktop.DBus.Properties"),
		dbus.WithMatchMember("PropertiesChanged")); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan *dbus.Signal, 64)
	conn.Signal(sigs)
	if err := sd.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err; err != nil {
		t.Fatal(err)
	}
	for {
		p := show(t, unit, props...)
		if cond(p) {
			return p
		}
		select {
		case <-sigs:
		case <-ctx.Done():
			t.Fatalf("%s: condition not met in %s; last %v\n%s", unit, timeout, p, journal(t, unit))
		}
	}
}

func procStatus(t *testing.T, pid string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func capSet(t *testing.T, hex string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatalf("capability set %q: %v", hex, err)
	}
	return v
}

func uidOf(t *testing.T, user string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "id -u "+user))
}

// openUdevMonitor subscribes to udevd's broadcasts (group 2 of the uevent
// socket), as libudev's monitor does.
func openUdevMonitor(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 2}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// udevMessageFor returns the queued libudev "add" message for the device
// at sysfs path sys, or nil.
func udevMessageFor(fd int, sys string) []byte {
	devpath := strings.TrimPrefix(sys, "/sys")
	buf := make([]byte, 16<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return nil
		}
		m := buf[:n]
		if bytes.HasPrefix(m, []byte("libudev\x00")) && bytes.Contains(m, []byte("\x00DEVPATH="+devpath+"\x00")) && bytes.Contains(m, []byte("ACTION=add\x00")) {
			return bytes.Clone(m)
		}
	}
}
