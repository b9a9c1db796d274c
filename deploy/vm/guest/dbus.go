package guest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SystemBusSocket is where the system bus listens (Debian's system.conf).
const SystemBusSocket = "/run/dbus/system_bus_socket"

// Bus is a running dbus-daemon.
type Bus struct {
	Address string // e.g. unix:path=/run/dbus/system_bus_socket,guid=…
	Proc    *Proc
}

// StartSystemBus starts the system dbus-daemon (after dbus-uuidgen
// --ensure) and returns once it accepts connections.
func StartSystemBus(t testing.TB) *Bus {
	t.Helper()
	for _, args := range [][]string{{"--ensure"}, {"--ensure=/etc/machine-id"}} {
		if out, err := exec.Command("dbus-uuidgen", args...).CombinedOutput(); err != nil {
			t.Fatalf("cannot run dbus-uuidgen %s: %v: %s", args[0], err, out)
		}
	}
	if err := os.MkdirAll("/run/dbus", 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(SystemBusSocket) // a former test's
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// dbus-daemon prints its address once it listens: readiness without polling.
	cmd := exec.Command("dbus-daemon", "--system", "--nofork", "--nopidfile", "--nosyslog", "--print-address=3")
	cmd.ExtraFiles = []*os.File{w}
	b := &Bus{}
	b.Proc = StartDaemon(t, "dbus-daemon", cmd, 20*time.Second, func(ctx context.Context) error {
		w.Close()
		dl, _ := ctx.Deadline()
		r.SetReadDeadline(dl)
		stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			return fmt.Errorf("cannot read its address: %w", err)
		}
		b.Address = strings.TrimSpace(line)
		return nil
	})
	return b
}
