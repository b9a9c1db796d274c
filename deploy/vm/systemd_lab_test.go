//go:build lab

package vm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSystemdBoot boots the systemd board (Options.Systemd): PID 1 is
// systemd, knobs cross in, the command's output, exit status and the
// console come back as on the plain board.
func TestSystemdBoot(t *testing.T) {
	c := RequireLab(t)
	res, err := Run(context.Background(), Options{
		Cache: c, Dir: t.TempDir(), Systemd: true,
		Command: []string{"sh", "-c", `echo "knob=$LAB_KNOB guest=$LAB_GUEST pid1=$(cat /proc/1/comm)"; systemctl is-active systemd-journald.service dbus.socket systemd-udevd.service; exit 3`},
		Env:     map[string]string{"LAB_KNOB": "it's here"},
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to guest init %s, run's unit started at %s, wall %s", res.Boot.Round(10*time.Millisecond),
		res.Booted.Round(10*time.Millisecond), res.Wall.Round(10*time.Millisecond))
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3; console:\n%s", res.ExitCode, res.ConsoleTail(30))
	}
	out, _ := os.ReadFile(res.Output)
	if !strings.Contains(string(out), "knob=it's here guest=1 pid1=systemd") || strings.Count(string(out), "\nactive") != 3 {
		t.Errorf("output %q: want the knob, systemd as PID 1, journald, dbus and udevd active", out)
	}
	if con, _ := os.ReadFile(res.Console); !strings.Contains(string(con), "lab: exit status 3") {
		t.Errorf("console lacks the exit status:\n%s", res.ConsoleTail(30))
	}
	if res.Booted <= res.Boot {
		t.Errorf("systemd's start of the run's unit (%s) not recorded after init (%s)", res.Booted, res.Boot)
	}
}

// TestSystemdTimeout: a hung systemd board ends at the run's timeout.
func TestSystemdTimeout(t *testing.T) {
	c := RequireLab(t)
	_, err := Run(context.Background(), Options{Cache: c, Dir: t.TempDir(), Systemd: true, Command: []string{"sleep", "600"}, Timeout: 20 * time.Second})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}
