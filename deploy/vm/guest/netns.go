package guest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Netns is a network namespace made with ip netns; the zero Name is the
// guest's initial namespace (InitNS).
type Netns struct {
	Name string
}

// InitNS is the initial network namespace.
var InitNS = &Netns{}

// NewNetns creates namespace name; cleanup kills its processes and
// deletes it.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	n := &Netns{Name: name}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				// /proc/PID/ns/net is the main thread's: a locked thread
				// left in the namespace that happens to be the main one
				// makes the test binary look like one of its processes.
				if f == strconv.Itoa(os.Getpid()) {
					t.Errorf("netns %s: this test binary's main thread was left in it (a thread locked into a namespace was given back without leaving it)", name)
					continue
				}
				exec.Command("kill", "-9", f).Run()
			}
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("cannot delete netns %s: %v: %s", name, err, out)
		}
	})
	return n
}

// Command returns cmd to run inside the namespace.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	if n == nil || n.Name == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its output; it fails
// t when the command fails.
func (n *Netns) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cannot run %s %s in %s: %v: %s", name, strings.Join(args, " "), n, err, out)
	}
	return string(out)
}

// IP runs ip(8) against the namespace.
func (n *Netns) IP(t testing.TB, args ...string) string {
	t.Helper()
	if n != nil && n.Name != "" {
		args = append([]string{"-n", n.Name}, args...)
	}
	return run(t, "ip", args...)
}

func (n *Netns) String() string {
	if n == nil || n.Name == "" {
		return "the initial namespace"
	}
	return "netns " + n.Name
}

// Veth creates a veth pair, end a in aNS and end b in bNS, both up.
// Cleanup deletes it (deleting one end deletes both).
func Veth(t testing.TB, a string, aNS *Netns, b string, bNS *Netns) {
	t.Helper()
	run(t, "ip", "link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { aNS.Command("ip", "link", "del", a).Run() })
	if aNS != nil && aNS.Name != "" {
		run(t, "ip", "link", "set", a, "netns", aNS.Name)
	}
	if bNS != nil && bNS.Name != "" {
		run(t, "ip", "link", "set", b, "netns", bNS.Name)
	}
	aNS.Up(t, a)
	bNS.Up(t, b)
}

// AddVLAN creates PARENT.ID (802.1Q) on parent, up, and returns its name.
func (n *Netns) AddVLAN(t testing.TB, parent string, id int) string {
	t.Helper()
	name := parent + "." + strconv.Itoa(id)
	n.IP(t, "link", "add", "link", parent, "name", name, "type", "vlan", "id", strconv.Itoa(id))
	n.Up(t, name)
	return name
}

// Addr adds an address (CIDR) to dev.
func (n *Netns) Addr(t testing.TB, dev, cidr string) {
	t.Helper()
	n.IP(t, "addr", "add", cidr, "dev", dev)
}

// Up sets links up.
func (n *Netns) Up(t testing.TB, devs ...string) {
	t.Helper()
	for _, d := range devs {
		n.IP(t, "link", "set", d, "up")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cannot run %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ping sends ICMP echo from ns to addr until one reply or deadline seconds
// (busybox ping: the host has no ping).
func (n *Netns) Ping(t testing.TB, addr string, deadline int) error {
	t.Helper()
	out, err := n.Command("busybox", "ping", "-c", "1", "-w", strconv.Itoa(deadline), addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot ping %s from %s: %w: %s", addr, n, err, out)
	}
	return nil
}
