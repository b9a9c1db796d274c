//go:build lab

package systemd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

// Knobs of the day (lab_day_host_test.go).
const (
	envDayPkg  = "DAY_PKG"  // the signed update.zip's name in the results share
	envDayCert = "DAY_CERT" // the signer's certificate there
)

// TestGuestDay is the field engineer's day on the systemd board, driven
// only through the boxagent CLI, each step a subtest that stops the day
// when it fails: the agent as the hardened boxagent.service (readiness,
// user boxagent, watchdog), an IPoE uplink on VLAN 45 whose DHCP server
// answers only option 60 IPTV_STB and pushes the IPTV platform's route
// with option 121 (the uplink takes no default route: --no-default-route,
// multicast by --route, IGMPv2), a PPPoE uplink with its password from
// stdin that carries the only default route, a WPA2 network joined, a
// signed update.zip staged on a hot-plugged FAT32 stick and ejected, a
// headset paired from a scan, in music without asking, then in a call
// whose microphone (the HF fake's tone) is recorded with its level, and
// back to music (bluetooth.service and the packaged system PulseAudio
// beside the agent), and history --json showing every act with its
// snapshot and no secret. The host checks the stick with fsck.fat afterwards. Each step
// logs "day STEP: DURATION" (docs/BENCHMARKS.md).
func TestGuestDay(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	dir := os.Getenv(envLabDir)
	sh(t, `set -e
install -o boxagent -g boxagent -m 0644 "$D/$C" /etc/boxagent/signer.pem
printf 'board = "auto"\n[firmware]\nkeys = ["/etc/boxagent/signer.pem"]\n[wifi]\ninterface = "wlan1"\n[bluetooth]\nadapter = "hci0"\n' >/etc/boxagent/config.toml
chown boxagent:boxagent /etc/boxagent/config.toml
chmod 0600 /etc/boxagent/config.toml`, "D="+dir, "C="+os.Getenv(envDayCert))
	// The world around the box lasts the whole day (the uplinks stay in
	// the config): the ISP's IPoE and PPPoE ends behind eth4 and eth3, two
	// hwsim radios (wlan0 the access point, wlan1 the box's, the config's
	// [wifi] interface) and wpa_supplicant on the board's own system bus,
	// as Debian's unit runs it; the headset's world (startHeadsetWorld).
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "ispd")
	guest.Veth(t, "eth4", guest.InitNS, "isp0", isp)
	vlan := isp.AddVLAN(t, "isp0", 45)
	isp.Addr(t, vlan, "10.45.4.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: vlan, Range: "10.45.4.100,10.45.4.200,255.255.255.0,1h",
		VendorClass: "IPTV_STB", NoPing: true, Extra: []string{"--dhcp-option=option:router,10.45.4.1",
			"--dhcp-option=option:classless-static-route,10.99.0.0/16,10.45.4.1"}})
	_, password := guest.StartPPPoEISP(t, "ispp", "eth3")
	radios := guest.Hwsim(t, 2)
	guest.StartWpaSupplicant(t, &guest.Bus{Address: "unix:path=" + guest.SystemBusSocket})
	guest.StartHostapd(t, guest.HostapdConfig{Interface: radios[0], SSID: "lab-day", Security: guest.APWPA2, Passphrase: "daypassword"})
	headset := startHeadsetWorld(t)
	// No stick since boot, and the day does not load sd_mod itself: the
	// unit's DeviceAllow=block-sd is resolved from /proc/devices when it
	// starts, so the first stick plugged after the start is usable only
	// because the package's modules-load.d file (installAgent) loaded it.
	if !strings.Contains(sh(t, "cat /proc/devices"), " sd\n") {
		t.Fatal("no sd block major before the agent starts: the package's modules-load.d file did not load sd_mod")
	}
	day := &dayRun{t: t}

	day.step("service", func(t *testing.T) {
		start := time.Now()
		sh(t, "systemctl start boxagent.service") // Type=notify: returns at READY=1
		ready := time.Since(start)
		p := show(t, "boxagent.service", "ActiveState", "SubState", "MainPID", "WatchdogUSec", "NRestarts")
		if p["ActiveState"] != "active" || p["SubState"] != "running" || p["MainPID"] == "0" {
			t.Fatalf("boxagent.service: %v\n%s", p, journal(t, "boxagent.service"))
		}
		st := procStatus(t, p["MainPID"])
		if !strings.HasPrefix(st["Uid"], uidOf(t, "boxagent")+"\t") {
			t.Errorf("the agent runs as Uid %s, want boxagent", st["Uid"])
		}
		t.Logf("day start-to-READY: %s; idle VmRSS %s; %v", ready.Round(time.Millisecond), st["VmRSS"], p)
		if p["WatchdogUSec"] != "4s" {
			t.Errorf("WatchdogUSec %q, want the lab drop-in's 4s", p["WatchdogUSec"])
		}
	})
	day.step("uplink IPoE VLAN 45, option 60 IPTV_STB", func(t *testing.T) {
		ev := followEvents(t)
		start := time.Now()
		cli(t, "", "net", "uplink", "add", "--parent", "eth4", "--vlan", "45", "--method", "dhcp", "--vendor-class", "IPTV_STB", "--route-metric", "100",
			"--no-default-route", "--route", "239.0.0.0/8", "--igmp-version", "2")
		ev.wait(t, 90*time.Second, "a DHCP lease on eth4.45", func(e dayEvent) bool {
			return e.Type == "net" && e.Data.Uplink == "eth4.45" && e.Data.DHCP != nil && e.Data.DHCP.State == "bound"
		})
		t.Logf("day lease: %s", time.Since(start).Round(time.Millisecond))
		if addr := sh(t, "ip -4 -o addr show dev eth4.45"); !strings.Contains(addr, "10.45.4.") {
			t.Errorf("eth4.45 has no lease address: %s", addr)
		}
		// The IPTV platform's route from option 121 and multicast are on
		// the VLAN; the default route is not, though the lease names a
		// router.
		routes := sh(t, "ip -4 route show dev eth4.45")
		for _, want := range []string{"10.99.0.0/16 via 10.45.4.1", "239.0.0.0/8"} {
			if !strings.Contains(routes, want) {
				t.Errorf("eth4.45 lacks the route %q:\n%s", want, routes)
			}
		}
		if strings.Contains(routes, "default") {
			t.Errorf("the IPTV uplink took the default route:\n%s", routes)
		}
		if v := strings.TrimSpace(sh(t, "cat /proc/sys/net/ipv4/conf/eth4.45/force_igmp_version")); v != "2" {
			t.Errorf("eth4.45 force_igmp_version %s, want 2", v)
		}
	})
	day.step("uplink PPPoE, password from stdin", func(t *testing.T) {
		ev := followEvents(t)
		start := time.Now()
		cli(t, password, "net", "uplink", "add", "--parent", "eth3", "--vlan", "45", "--method", "pppoe",
			"--user", guest.PPPoEUser, "--password-stdin", "--route-metric", "50")
		ev.wait(t, 2*time.Minute, "the PPPoE session on eth3.45 up", func(e dayEvent) bool {
			return e.Type == "net" && e.Data.Uplink == "eth3.45" && e.Data.PPPoE != nil && e.Data.PPPoE.Up
		})
		t.Logf("day PPPoE up: %s", time.Since(start).Round(time.Millisecond))
		if r := sh(t, "ip -4 route show default"); !strings.Contains(r, "metric 50") || strings.Count(r, "default") != 1 {
			t.Errorf("want one default route, over the PPPoE session: %s", r)
		}
	})
	day.step("Wi-Fi: join a WPA2 network, password from stdin", func(t *testing.T) {
		start := time.Now()
		out := cli(t, "daypassword\n", "wifi", "connect", "lab-day", "--psk-stdin")
		t.Logf("day Wi-Fi connect: %s\n%s", time.Since(start).Round(time.Millisecond), out)
		if st := cli(t, "", "wifi", "status"); !strings.Contains(st, "lab-day") {
			t.Errorf("wifi status after the connect:\n%s", st)
		}
		// The joined network is saved in the config, which only the agent reads.
		if own := strings.TrimSpace(sh(t, "stat -c '%U %a' /etc/boxagent/config.toml")); own != "boxagent 600" {
			t.Errorf("config.toml is %s after the connect, want boxagent 600", own)
		}
	})
	day.step("stage the signed update.zip on a hot-plugged stick, eject", func(t *testing.T) {
		sh(t, `install -m 0644 "$D/$P" /srv/update.zip`, "D="+dir, "P="+os.Getenv(envDayPkg))
		sum := strings.Fields(sh(t, "sha256sum /srv/update.zip"))[0]
		start := time.Now()
		cli(t, "", "fw", "add", "/srv/update.zip")
		t.Logf("day fw add (verify the signature): %s", time.Since(start).Round(time.Millisecond))
		ev := followEvents(t)
		stick := guest.PlugStick(t, "stick")
		// The agent reads a stick once udev has given it group boxagent: wait
		// for the agent to say it is usable, as boxagent fw sticks would.
		name := filepath.Base(stick.Disk)
		ev.wait(t, 90*time.Second, "the agent's stick "+name+" usable", func(e dayEvent) bool {
			st := e.Data.Stick
			return e.Type == "fw" && st != nil && st.Name == name && st.Problem == "" && len(st.Disk.Partitions) > 0
		})
		start = time.Now()
		out := cli(t, "", "fw", "stage", sum[:12], "--device", filepath.Base(stick.Partitions[0]))
		if !strings.Contains(out, "staged "+sum) {
			t.Fatalf("fw stage:\n%s", out)
		}
		t.Logf("day stage: %s", time.Since(start).Round(time.Millisecond))
		// The hardened unit lets every system call of the staging through
		// (on armhf its seccomp filter once refused arm_sync_file_range
		// and the copy was read back twice, with a warning).
		if warned := sh(t, "journalctl -b --no-pager -o cat -u boxagent.service | grep 'level=WARN.*component=firmware' || true"); warned != "" {
			t.Errorf("the staging warned:\n%s", warned)
		}
		hashed := sh(t, "journalctl -b --no-pager -o cat -u boxagent.service | grep 'packages are hashed' || true")
		t.Logf("day hash: %s", strings.TrimSpace(hashed))
		if out := cli(t, "", "fw", "eject", "--device", filepath.Base(stick.Disk)); !strings.Contains(out, "safe to pull") {
			t.Fatalf("fw eject:\n%s", out)
		}
		stick.Unplug(t)
	})
	headsetSteps(day, headset)
	day.step("history --json: every act, its snapshot, no secret", func(t *testing.T) {
		out := cli(t, "", "history", "--json")
		for _, secret := range []string{password, "daypassword"} {
			if strings.Contains(out, secret) {
				t.Errorf("history --json shows a password")
			}
		}
		var ops []struct {
			ID   uint64 `json:"id"`
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal([]byte(out), &ops); err != nil {
			t.Fatalf("history --json: %v\n%s", err, out)
		}
		kinds := map[string]bool{}
		for _, op := range ops {
			kinds[op.Kind] = true
			id := strconv.FormatUint(op.ID, 10)
			var one struct {
				Snapshot map[string]any `json:"snapshot"`
			}
			raw := cli(t, "", "history", id, "--json")
			if err := json.Unmarshal([]byte(raw), &one); err != nil || len(one.Snapshot) == 0 {
				t.Errorf("history %s (%s) has no snapshot (%v):\n%s", id, op.Kind, err, raw)
			}
			if strings.Contains(raw, password) || strings.Contains(raw, "daypassword") {
				t.Errorf("history %s shows a password", id)
			}
		}
		t.Logf("kinds: %v", kinds)
		// Nor on a command line, in an environment, PID 1's units or the journal.
		noSecretOnBoard(t, password, network.PPPoEUnitName("eth3.45"))
		for _, want := range []string{"net.uplink.add", "wifi.connect", "fw.add", "fw.stage", "fw.eject",
			"bt.scan", "bt.pair", "audio.mode", "audio.test"} {
			if !kinds[want] {
				t.Errorf("history --json has no %s:\n%s", want, out)
			}
		}
	})
	day.step("watchdog: still the same process", func(t *testing.T) {
		p := show(t, "boxagent.service", "ActiveState", "NRestarts", "WatchdogTimestampMonotonic")
		if p["ActiveState"] != "active" || p["NRestarts"] != "0" {
			t.Errorf("after the day: %v\n%s", p, journal(t, "boxagent.service"))
		}
	})
}

// dayRun runs the day's steps in order; a failed step ends the day.
type dayRun struct {
	t      *testing.T
	failed bool
}

func (d *dayRun) step(name string, f func(t *testing.T)) {
	if d.failed {
		d.t.Errorf("step %q not run: an earlier step failed", name)
		return
	}
	start := time.Now()
	ok := d.t.Run(name, f)
	d.t.Logf("day step %q: %s", name, time.Since(start).Round(time.Millisecond))
	d.failed = !ok
}

// cli runs boxagent as the engineer types it, stdin given; a non-zero exit
// fails the test with the output and the agent's journal.
func cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := cliTry(stdin, args...)
	if err != nil {
		t.Fatalf("boxagent %s: %v\n%s\n%s", strings.Join(args, " "), err, out, journal(t, "boxagent.service"))
	}
	return out
}

// cliTry runs boxagent as cli does, and leaves a failure to the caller.
func cliTry(stdin string, args ...string) (string, error) {
	cmd := exec.Command("boxagent", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dayEvent is a line of boxagent events --json, with what the day waits for.
type dayEvent struct {
	Type string `json:"type"`
	Data struct {
		Uplink string `json:"uplink"`
		// An audio event: kind, card, profile, value (card.mode: the mode).
		Kind    string `json:"kind"`
		Name    string `json:"name"`
		Profile string `json:"profile"`
		Value   any    `json:"value"`
		DHCP    *struct {
			State string `json:"state"`
		} `json:"dhcp"`
		PPPoE *struct {
			Up bool `json:"up"`
		} `json:"pppoe"`
		Stick *struct {
			Name    string `json:"name"`
			Problem string `json:"problem"`
			Disk    struct {
				Partitions []json.RawMessage `json:"partitions"`
			} `json:"disk"`
		} `json:"stick"`
	} `json:"data"`
}

// events is a running boxagent events --json: a stream of JSON objects,
// each printed indented over several lines.
type events struct {
	ch   chan json.RawMessage
	seen []string
}

// followEvents starts boxagent events --json, ended at the test's end.
func followEvents(t *testing.T) *events {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "boxagent", "events", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &events{ch: make(chan json.RawMessage, 256)}
	go func() {
		defer close(e.ch)
		dec := json.NewDecoder(out)
		for {
			var m json.RawMessage
			if dec.Decode(&m) != nil {
				return
			}
			e.ch <- m
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return e
}

// within waits for an event ok accepts, for at most timeout, and says
// when it arrived; false when none did (the caller decides).
func (e *events) within(timeout time.Duration, ok func(dayEvent) bool) (time.Time, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case m, open := <-e.ch:
			if !open {
				return time.Time{}, false
			}
			e.seen = append(e.seen, string(m))
			var ev dayEvent
			if json.Unmarshal(m, &ev) == nil && ok(ev) {
				return time.Now(), true
			}
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// wait returns once an event satisfies ok; it fails t after timeout.
func (e *events) wait(t *testing.T, timeout time.Duration, what string, ok func(dayEvent) bool) {
	t.Helper()
	if _, found := e.within(timeout, ok); !found {
		t.Fatalf("no %s in %s (or boxagent events ended); events:\n%s\n%s", what, timeout, strings.Join(e.seen, "\n"), journal(t, "boxagent.service"))
	}
}
