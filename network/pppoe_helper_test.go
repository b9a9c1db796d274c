package network

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestPPPoESessionCheck(t *testing.T) {
	good := PPPoESession{Link: "eth0.35", User: "alice@isp", Password: "pw", MTU: 1492, Unit: 3, Holdoff: 1}
	if err := good.Check(); err != nil {
		t.Fatalf("a good session: %v", err)
	}
	for name, tt := range map[string]struct {
		edit func(*PPPoESession)
		want string
	}{
		"link with a slash": {func(s *PPPoESession) { s.Link = "../x" }, "link"},
		"no user":           {func(s *PPPoESession) { s.User = "" }, "no user"},
		"newline in user":   {func(s *PPPoESession) { s.User = "a\nplugin /tmp/evil.so" }, "user"},
		"long password":     {func(s *PPPoESession) { s.Password = strings.Repeat("x", maxSecret+1) }, "password"},
		"mtu":               {func(s *PPPoESession) { s.MTU = 9000 }, "mtu"},
		"unit":              {func(s *PPPoESession) { s.Unit = -1 }, "unit"},
		"holdoff":           {func(s *PPPoESession) { s.Holdoff = 86400 }, "holdoff"},
	} {
		s := good
		tt.edit(&s)
		if err := s.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to name %q", name, err, tt.want)
		}
	}
	// pppd's path, plugins and options are the helper's, whatever the
	// agent's settings say.
	args := strings.Join(good.config().args(helperPasswordFD), " ")
	if !strings.Contains(args, "plugin pppoe.so nic-eth0.35 user alice@isp plugin passwordfd.so passwordfd 3") || strings.Contains(args, "pw") {
		t.Errorf("helper's pppd args %s", args)
	}
	if good.config().PPPD != DefaultPPPD {
		t.Errorf("helper runs %s", good.config().PPPD)
	}
}

// TestPPPoEHelperHandoff: the agent's side and the helper's meet on the
// session socket: the helper (root) gets the session, and only from a
// socket of the agent's user reached without a link; the agent gets what
// the helper writes back. It needs root, as the helper has it.
func TestPPPoEHelperHandoff(t *testing.T) {
	if testing.Short() {
		t.Skip("openat2 and SO_PEERCRED through qemu-user: skipped with -short (the cross tests)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the agent turns away helpers that are not root")
	}
	dir := t.TempDir()
	sess := PPPoESession{Link: "eth0.35", User: "alice@isp", Password: "s3cret", MTU: 1492, Unit: 2, Holdoff: 1}
	inst := PPPoEInstance("isp-wan")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, inst+".sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	var serveErr error
	go func() { defer wg.Done(); serveErr = serveHelper(ln, sess, &out) }()

	// A socket of another user's: refused before any byte is read.
	if _, _, err := readSession(inst, dir, 4242); err == nil || !strings.Contains(err.Error(), "not a socket of the agent's user") {
		t.Errorf("a socket of another uid: %v", err)
	}
	// A link in its place: refused.
	os.Symlink(filepath.Join(dir, inst+".sock"), filepath.Join(dir, "link.sock"))
	if _, _, err := readSession("link", dir, 0); err == nil {
		t.Error("a symbolic link to the socket was followed")
	}
	if _, _, err := readSession("../x", dir, 0); err == nil {
		t.Error("an instance with a slash was taken")
	}
	c, got, err := readSession(inst, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != sess {
		t.Errorf("session %+v, want %+v", got, sess)
	}
	c.Write([]byte("Using interface ppp2\n"))
	c.Close()
	wg.Wait()
	if serveErr != nil || out.String() != "Using interface ppp2\n" {
		t.Errorf("the agent read %q, %v", out.String(), serveErr)
	}
}
