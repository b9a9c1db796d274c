package guest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/inotify"
)

// PPPoEModules are the modules of a PPPoE session over a VLAN.
var PPPoEModules = []string{"8021q", "veth", "pppoe"}

// PPPoEServerConfig is an access concentrator on one interface: Debian's
// pppoe-server (package pppoe), which spawns a pppd per session.
type PPPoEServerConfig struct {
	NS        *Netns // where it runs; nil: the initial namespace
	Interface string // e.g. isp0.45
	Local     string // the concentrator's address, e.g. 10.45.0.1
	Remote    string // first address handed to clients, e.g. 10.45.0.10
	// User and Password are written to /etc/ppp/chap-secrets (the
	// guest's RAM overlay): the ISP's side of the secret.
	User, Password string
	// IPv6: the sessions negotiate IPV6CP too (+ipv6).
	IPv6 bool
}

// PPPoEServer is a running pppoe-server. It always daemonizes, so it is
// followed by its pid file, not as a child.
type PPPoEServer struct {
	cfg     PPPoEServerConfig
	PIDFile string
	Options string // the sessions' pppd options file
	Log     string // the sessions' pppd log
}

// PPPoEUser is the user StartPPPoEISP's concentrator knows.
const PPPoEUser = "boxuser"

// StartPPPoEISP is an ISP for a PPPoE uplink on VLAN 45 of the box's link
// boxLink: the far end of a veth in a new namespace ns, and on its VLAN 45
// a concentrator at 10.45.0.1 handing out 10.45.0.10 on, which knows
// PPPoEUser with a fresh random password (returned, so the test can look
// for it where it must not be).
func StartPPPoEISP(t testing.TB, ns, boxLink string) (*PPPoEServer, string) {
	t.Helper()
	Modprobe(t, PPPoEModules...)
	isp := NewNetns(t, ns)
	Veth(t, boxLink, InitNS, "isp0", isp)
	vlan := isp.AddVLAN(t, "isp0", 45)
	password := PPPoEPassword(t)
	srv := StartPPPoEServer(t, PPPoEServerConfig{NS: isp, Interface: vlan, Local: "10.45.0.1", Remote: "10.45.0.10", User: PPPoEUser, Password: password})
	return srv, password
}

// PPPoEPassword is a fresh random password for PPPoEUser, easy to look
// for where it must not be.
func PPPoEPassword(t testing.TB) string {
	t.Helper()
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(pw)
}

// StartPPPoEServer writes the secret and the session options, starts
// pppoe-server and returns once its pid file names a live process.
// Cleanup kills it and every session it spawned.
func StartPPPoEServer(t testing.TB, cfg PPPoEServerConfig) *PPPoEServer {
	t.Helper()
	dir := LogDir(t)
	s := &PPPoEServer{cfg: cfg, PIDFile: filepath.Join(t.TempDir(), "pppoe-server.pid"),
		Options: filepath.Join(dir, "pppoe-server-options"), Log: filepath.Join(dir, "pppd-server.log")}
	secret := fmt.Sprintf("%s * %s *\n", cfg.User, cfg.Password)
	for _, f := range []string{"/etc/ppp/chap-secrets", "/etc/ppp/pap-secrets"} {
		if err := os.WriteFile(f, []byte(secret), 0o600); err != nil {
			t.Fatalf("cannot write %s: %v", f, err)
		}
	}
	opts := "require-chap\nlcp-echo-interval 1\nlcp-echo-failure 3\nnodefaultroute\nnoipdefault\nms-dns " + cfg.Local + "\ndebug\nlogfile " + s.Log + "\n"
	if cfg.IPv6 {
		opts += "+ipv6\n"
	}
	if err := os.WriteFile(s.Options, []byte(opts), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Kill(t) })
	s.Start(t)
	return s
}

// Start starts pppoe-server (again) and waits for its pid file.
func (s *PPPoEServer) Start(t testing.TB) {
	t.Helper()
	os.Remove(s.PIDFile)
	cmd := s.cfg.NS.Command("pppoe-server", "-I", s.cfg.Interface, "-L", s.cfg.Local, "-R", s.cfg.Remote,
		"-N", "4", "-O", s.Options, "-X", s.PIDFile)
	// It daemonizes: its output goes to a file, so no pipe is held open.
	logPath := filepath.Join(LogDir(t), "pppoe-server.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	f.Close()
	if err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("cannot start pppoe-server: %v: %s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := inotify.WaitContains(ctx, s.PIDFile, "\n"); err != nil {
		if b, _ := os.ReadFile(s.PIDFile); len(b) == 0 {
			t.Fatalf("pppoe-server wrote no pid file in 10 s: %v", err)
		}
	}
	if pid := s.PID(); pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pppoe-server is not running (pid file says %d)", s.PID())
	}
}

// PID is the server's pid from its pid file, or 0.
func (s *PPPoEServer) PID() int {
	b, err := os.ReadFile(s.PIDFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Kill ends the server (SIGTERM: it tears its sessions down) and the
// session processes it spawned, and waits until they are gone.
func (s *PPPoEServer) Kill(t testing.TB) {
	t.Helper()
	pids := s.sessions()
	if pid := s.PID(); pid > 0 {
		pids = append([]int{pid}, pids...)
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for syscall.Kill(p, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // no pidfd for a process that is not our child
		}
		if err := syscall.Kill(p, syscall.SIGKILL); err == nil {
			t.Logf("pppoe-server process %d needed SIGKILL", p)
		} else if !errors.Is(err, syscall.ESRCH) {
			t.Logf("cannot kill %d: %v", p, err)
		}
	}
	os.Remove(s.PIDFile)
}

// sessions are the pppd and pppoe processes of the server's namespace.
func (s *PPPoEServer) sessions() []int {
	var out []int
	var pids []string
	if s.cfg.NS != nil && s.cfg.NS.Name != "" {
		b, err := exec.Command("ip", "netns", "pids", s.cfg.NS.Name).Output()
		if err != nil {
			return nil
		}
		pids = strings.Fields(string(b))
	}
	for _, f := range pids {
		cmdline, err := os.ReadFile("/proc/" + f + "/cmdline")
		if err != nil {
			continue
		}
		if c := string(cmdline); strings.Contains(c, "pppd") || strings.Contains(c, "pppoe") {
			if n, err := strconv.Atoi(f); err == nil && n != s.PID() {
				out = append(out, n)
			}
		}
	}
	return out
}
