//go:build lab

package systemd

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// Knobs and files the host gives the guest tests (lab_guest_test.go).
const (
	envLabDir = "SD_LAB_DIR" // results share: boxagent, the units, update.img
	envSHA    = "SD_SHA"     // SHA-256 of update.img
	labPkg    = "update.img"
)

// labProvision is the provision.toml on the FAT boot image: a Rockchip
// profile (its recovery takes update.img checked by SHA-256, so the lab
// needs no signing key), the API on loopback.
const labProvision = `hostname = "sd-lab"
board = "rockchip-tvbox"
timezone = "UTC"

[http]
listen = "127.0.0.1:8080"
password = "correct horse battery"
`

// TestLabSystemd boots the systemd board twice with the same results
// folder, /etc/boxagent and /var/lib/boxagent kept between the boots and a
// FAT boot image holding provision.toml: the first boot installs boxagent
// as the package does, runs the first-boot provisioning and checks the
// service (readiness, limits, staging through the SystemdMounter as the
// boxagent user, watchdog, KillMode); the second sees the stamped file
// and one provisioning in the journal, then runs a PPPoE uplink's pppd as
// a transient unit of PID 1 against pppoe-server.
func TestLabSystemd(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side of the lab tests")
	}
	c := vm.RequireLab(t)
	if _, err := exec.LookPath("mcopy"); err != nil {
		t.Skip("mtools is not installed: make lab-deps")
	}
	dir := agentFiles(t, c)
	// The store checks every package's zip structure, whatever the
	// board's method: a zip of 2 MiB of random bytes.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "payload.bin", Method: zip.Store})
	payload := make([]byte, 2<<20)
	rand.Read(payload)
	w.Write(payload)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	pkg := zb.Bytes()
	sum := sha256.Sum256(pkg)
	if err := os.WriteFile(filepath.Join(dir, labPkg), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	stick := filepath.Join(dir, "stick.img")
	if err := vm.MakeStick(stick, vm.StickSpec{Kind: vm.StickFAT32, Label: "SDSTICK"}); err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(dir, "boot.img")
	if err := vm.MakeStick(boot, vm.StickSpec{Kind: vm.StickFAT32, Label: "BOOT"}); err != nil {
		t.Fatal(err)
	}
	prov := filepath.Join(dir, "provision.toml")
	if err := os.WriteFile(prov, []byte(labProvision), 0o600); err != nil {
		t.Fatal(err)
	}
	mtools(t, "mcopy", "-i", boot+"@@1M", prov, "::/provision.toml")

	opts := func(n string) vm.Options {
		return vm.Options{Cache: c, Dir: dir, Systemd: true, BootImage: boot,
			Persist: []string{"/etc/boxagent", "/var/lib/boxagent"},
			Sticks:  map[string]string{"stick": stick},
			Env: map[string]string{envLabDir: dir, envSHA: hex.EncodeToString(sum[:]), "SD_BOOT": n,
				envResolved: filepath.Join(c.Dir, "resolved"), envResolvconf: filepath.Join(c.Dir, "resolvconf")},
			Timeout: 6 * time.Minute}
	}
	res := vm.RunGoTests(t, "./deploy/systemd", opts("1"), "-test.run=^TestGuestFirstBoot$")
	t.Logf("first boot: systemd started the run's unit at %s (init at %s)", res.Booted.Round(10*time.Millisecond), res.Boot.Round(10*time.Millisecond))
	if t.Failed() {
		return
	}
	// The second boot also runs a PPPoE uplink's pppd as PID 1's
	// transient unit (lab_pppoe_guest_test.go), the packaged
	// boxagent-pulseaudio.service (lab_pulse_guest_test.go), resolvconf
	// and systemd-resolved given the uplinks' DNS
	// (lab_resolver_guest_test.go), and an uplink's IPv6 under the
	// hardened unit (lab_ipv6_guest_test.go).
	second := opts("2")
	second.Timeout = 10 * time.Minute
	res = vm.RunGoTests(t, "./deploy/systemd", second, "-test.run=^(TestGuestSecondBoot|TestGuestPPPoEUnit|TestGuestPulseUnit|TestGuestResolvconfUnit|TestGuestResolvedUnit|TestGuestIPv6Unit)$")
	t.Logf("second boot: systemd started the run's unit at %s (init at %s)", res.Booted.Round(10*time.Millisecond), res.Boot.Round(10*time.Millisecond))

	// The boot image from outside: provision.toml renamed once, not there.
	out := mtools(t, "mdir", "-b", "-i", boot+"@@1M", "::/")
	if strings.Contains(out, "::/provision.toml\n") || strings.Count(out, "provision.toml.applied-") != 1 {
		t.Errorf("the boot image should hold one provision.toml.applied-STAMP and no provision.toml:\n%s", out)
	}
	if out, err := vm.CheckFAT(stick); err != nil {
		t.Errorf("stick: %v\n%s", err, out)
	}
}

// TestLabSystemdPipeWire boots the systemd board once for the packaged
// system PipeWire (deploy/pipewire, lab_pipewire_guest_test.go): its own
// boot, as it loads modules (snd-dummy, hci_vhci) and starts bluetoothd,
// which TestLabSystemd's boots do not have.
func TestLabSystemdPipeWire(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side of the lab tests")
	}
	c := vm.RequireLab(t)
	dir := agentFiles(t, c)
	res := vm.RunGoTests(t, "./deploy/systemd", vm.Options{Cache: c, Dir: dir, Systemd: true,
		Env: map[string]string{envLabDir: dir}, Timeout: 6 * time.Minute}, "-test.run=^TestGuestPipeWireUnits$")
	t.Logf("systemd started the run's unit at %s (init at %s)", res.Booted.Round(10*time.Millisecond), res.Boot.Round(10*time.Millisecond))
}

// agentFiles makes the results folder of a systemd board's run (kept with
// LAB_KEEP) and puts there what installAgent installs: boxagent built for
// the board's architecture, its units, polkit rule and modules-load.d file.
func agentFiles(t *testing.T, c *vm.Cache) string {
	t.Helper()
	dir := vm.NewResultsDir(t)
	root, err := vm.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.BuildBoxagent(c, filepath.Join(dir, "boxagent")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"boxagent.service", "boxagent-firstboot.service", "boxagent-mount@.service", "boxagent-pppoe@.service", "boxagent-resolvconf.path", "boxagent-resolvconf.service", "50-boxagent.rules", "boxagent-modules.conf", "70-boxagent-sticks.rules"} {
		copyFile(t, filepath.Join(root, "deploy/systemd", f), filepath.Join(dir, f))
	}
	// The packaged system PulseAudio (TestGuestPulseUnit).
	for _, f := range []string{"boxagent-pulseaudio.service", "system.pa"} {
		copyFile(t, filepath.Join(root, "deploy/pulseaudio", f), filepath.Join(dir, f))
	}
	// The packaged system PipeWire (TestGuestPipeWireUnits): its units
	// and WirePlumber's overrides, one file per .lua.d folder.
	for _, f := range []string{"boxagent-pipewire.service", "boxagent-wireplumber.service", "boxagent-pipewire-pulse.service",
		"boxagent-pipewire-user.service", "boxagent-pipewire.sysusers"} {
		copyFile(t, filepath.Join(root, "deploy/pipewire", f), filepath.Join(dir, f))
	}
	for _, d := range []string{"main", "bluetooth", "policy"} {
		copyFile(t, filepath.Join(root, "deploy/pipewire/wireplumber", d+".lua.d", "51-boxagent.lua"), filepath.Join(dir, "wireplumber-"+d+".lua"))
	}
	return dir
}

func mtools(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
