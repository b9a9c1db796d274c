//go:build lab

package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// TestBtvirtShim: btvirt -l2 under the SCO shim gives two controllers whose
// SCO buffer is not 0 (stock BlueZ 5.66 reports 0 and the kernel then
// refuses SCO). Proves the shim, not the Bluetooth fixtures.
func TestBtvirtShim(t *testing.T) {
	vm.RequireGuest(t)
	shim := os.Getenv(vm.EnvBtvirtShim)
	if _, err := os.Stat(shim); err != nil {
		t.Fatalf("no shim (%s=%q): %v", vm.EnvBtvirtShim, shim, err)
	}
	prepareBtvirt(t) // else hci0's init can time out on a boot's first btvirt
	u, err := OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	cmd := exec.Command("btvirt", "-l2")
	shimLog := filepath.Join(LogDir(t), "btvirt-shim.log")
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+shim, "BTVIRT_SHIM_LOG="+shimLog)
	Start(t, "btvirt", cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var hcis []string
	for len(hcis) < 2 {
		ev, err := u.Wait(ctx, func(ev Uevent) bool {
			return ev.Action == "add" && ev.Subsystem == "bluetooth" && ev.DevType == "host"
		})
		if err != nil {
			t.Fatalf("controllers so far %v: %v", hcis, err)
		}
		hcis = append(hcis, filepath.Base(ev.DevPath))
	}
	for _, hci := range hcis {
		if out, err := exec.Command("hciconfig", hci, "up").CombinedOutput(); err != nil {
			t.Fatalf("hciconfig %s up: %v: %s", hci, err, out)
		}
		out, err := exec.Command("hciconfig", hci).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SCO MTU: 64:8") {
			t.Errorf("hciconfig %s: %v\n%s", hci, err, out)
		}
	}
	if b, _ := os.ReadFile(shimLog); !strings.Contains(string(b), "controller 1 is fd") {
		t.Errorf("the shim did not see both /dev/vhci opens; its log:\n%s", b)
	}
}

// TestBtvirtRepeat starts and stops btvirt LAB_BT_REPEAT times in one boot
// and counts the rounds that left a controller without its init (no MGMT
// Index Added within btvirtSetup): the way to measure the fixture's
// flake without a boot per sample. Not part of the default run. Knobs:
// LAB_BT_UNPREPARED=1 also runs rounds that first unload btvirt's crypto
// modules (each such round is a boot's first btvirt, the flake's cause),
// LAB_BT_COLD=1 unloads them before each fixture round too (a boot's
// first btvirt with the fixture's preparation),
// LAB_BT_LOAD=N keeps N busy processes running (a loaded host),
// LAB_BT_TRACE=1 has the shim log every packet.
func TestBtvirtRepeat(t *testing.T) {
	vm.RequireGuest(t)
	n, _ := strconv.Atoi(os.Getenv("LAB_BT_REPEAT"))
	if n <= 0 {
		t.Skip("LAB_BT_REPEAT is not set")
	}
	if load, _ := strconv.Atoi(os.Getenv("LAB_BT_LOAD")); load > 0 {
		for i := range load {
			// A load generator, not a wait: it stands for the other
			// boards and builds on the host.
			Start(t, fmt.Sprintf("load-%d", i), exec.Command("sh", "-c", "while :; do :; done"))
		}
	}
	phases := []string{"fixture"}
	if os.Getenv("LAB_BT_UNPREPARED") != "" {
		phases = append(phases, "unprepared")
	}
	// Users before what they use: af_alg goes last.
	unload := slices.Clone(btvirtCryptoModules)
	slices.Reverse(unload)
	round := 0
	for _, phase := range phases {
		t.Run(phase, func(t *testing.T) {
			failed := 0
			for range n {
				round++
				if phase == "unprepared" || os.Getenv("LAB_BT_COLD") != "" {
					if out, err := exec.Command("modprobe", append([]string{"-r", "-a"}, unload...)...).CombinedOutput(); err != nil {
						t.Fatalf("cannot unload %v: %v: %s", unload, err, out)
					}
				}
				if phase == "fixture" {
					prepareBtvirt(t)
				}
				p, err := startBtvirtOnce(t, round)
				if err != nil {
					t.Logf("round %d: %v", round, err)
					failed++
					continue
				}
				stopBtvirt(t, p)
			}
			t.Logf("btvirt (%s): %d of %d rounds left a controller without its init", phase, failed, n)
			if failed > 0 && phase == "fixture" {
				t.Fail()
			}
		})
	}
}
