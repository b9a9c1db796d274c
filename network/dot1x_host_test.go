package network

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/testbus"
	"github.com/boxagent/boxagent/internal/wpabus"
)

// The 802.1X tests: the wire's ISP namespace runs real hostapd with its
// wired driver and internal EAP server as the authenticator (an MD5 user
// and a PEAP/MSCHAPv2 user, a CA and server certificate made here), the
// box namespace runs real wpa_supplicant (-u, on a private bus), driven
// by the Manager as the agent drives it.

const (
	md5User, md5Pass   = "box-md5", "md5-secret"
	peapUser, peapPass = "box-peap", "peap-secret"
)

// needTool skips without the program, or fails under CI=true, where
// make deps installed everything. Its one argument is the program: make
// test-tools reads every string given to a need* helper as a program the
// tests run and checks that deploy/test-packages installs it.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("needs %s (deploy/test-packages names its Debian package): %v", name, err)
		}
		t.Skipf("needs %s (make deps installs it): %v", name, err)
	}
}

// dot1xCerts writes a CA and a server certificate signed by it into dir;
// it returns the CA's path.
func dot1xCerts(t testing.TB, dir string) (ca string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "boxagent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	must(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "radius.isp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &srvKey.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	must(t, err)
	write := func(name, typ string, der []byte) {
		must(t, os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	return filepath.Join(dir, "ca.pem")
}

// authenticator is hostapd on the ISP end of the wire.
type authenticator struct {
	cmd   *exec.Cmd
	ctrl  string // its control socket folder
	iface string
	*daemonLog
}

// startAuthenticator runs hostapd (driver wired, internal EAP server) on
// the ISP end; extra lines go into its config.
func (l *ispWire) startAuthenticator(t testing.TB, extra ...string) *authenticator {
	t.Helper()
	return runAuthenticator(t, filepath.Join(l.dir, "hostapd"), ispIf, func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", l.ispName}, args...)...)
	}, extra...)
}

// runAuthenticator runs hostapd on iface with its files in dir; command
// makes the command line run where iface is.
func runAuthenticator(t testing.TB, dir, iface string, command func(args ...string) *exec.Cmd, extra ...string) *authenticator {
	t.Helper()
	needTool(t, "hostapd")
	must(t, os.MkdirAll(dir, 0o700))
	dot1xCerts(t, dir)
	users := fmt.Sprintf("%q MD5 %q\n* PEAP\n%q MSCHAPV2 %q [2]\n", md5User, md5Pass, peapUser, peapPass)
	must(t, os.WriteFile(filepath.Join(dir, "eap_users"), []byte(users), 0o600))
	a := &authenticator{ctrl: filepath.Join(dir, "ctrl"), iface: iface}
	conf := strings.Join(append([]string{
		"interface=" + iface, "driver=wired", "ieee8021x=1", "eap_server=1", "eapol_version=2",
		"eap_user_file=" + filepath.Join(dir, "eap_users"),
		"ca_cert=" + filepath.Join(dir, "ca.pem"), "server_cert=" + filepath.Join(dir, "server.pem"),
		"private_key=" + filepath.Join(dir, "server.key"),
		"ctrl_interface=" + a.ctrl, "logger_stdout=-1", "logger_stdout_level=1",
	}, extra...), "\n") + "\n"
	confPath := filepath.Join(dir, "hostapd.conf")
	must(t, os.WriteFile(confPath, []byte(conf), 0o600))
	a.cmd = command("hostapd", confPath)
	out, err := a.cmd.StdoutPipe()
	must(t, err)
	a.cmd.Stderr = a.cmd.Stdout
	must(t, a.cmd.Start())
	a.daemonLog = followLog("hostapd", a.cmd, out)
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("hostapd log:\n%s", a.logText())
		}
	})
	if _, err := a.waitLine("ENABLED", 10*time.Second); err != nil {
		t.Fatalf("hostapd did not start: %v", err)
	}
	return a
}

// ctrlReply sends one command to hostapd's control socket (a datagram
// socket: hostapd_cli's way) and returns its answer.
func (a *authenticator) ctrlReply(t testing.TB, cmd string) string {
	t.Helper()
	local := filepath.Join(filepath.Dir(a.ctrl), fmt.Sprintf("cli-%d", time.Now().UnixNano()))
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: filepath.Join(a.ctrl, a.iface), Net: "unixgram"})
	must(t, err)
	defer os.Remove(local)
	defer c.Close()
	must(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte(cmd))
	must(t, err)
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	must(t, err)
	return strings.TrimSpace(string(buf[:n]))
}

// startSupplicant runs wpa_supplicant (-u only: no interface until the
// Manager asks) in the box namespace on a private bus, and returns the
// bus's address once wpa_supplicant holds its name there.
func (l *ispWire) startSupplicant(t testing.TB) string {
	t.Helper()
	needTool(t, "wpa_supplicant")
	needTool(t, "dbus-daemon")
	addr := testbus.Start(t)
	l.runSupplicant(t, addr)
	return addr
}

// runSupplicant runs wpa_supplicant on the bus at addr until the test
// ends and returns once it holds its name there; stop ends it sooner.
func (l *ispWire) runSupplicant(t testing.TB, addr string) (stop func()) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	must(t, err)
	defer conn.Close()
	must(t, conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, wpabus.Service)))
	sig := make(chan *dbus.Signal, 8)
	conn.Signal(sig)
	logf, err := os.OpenFile(filepath.Join(l.dir, "wpa_supplicant.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	cmd := exec.Command("ip", "netns", "exec", l.boxName, "wpa_supplicant", "-u", "-t", "-d")
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("wpa_supplicant log (tail):\n%s", tailLines(string(b), 80))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var has bool
		must(t, conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, wpabus.Service).Store(&has))
		if has {
			return stop
		}
		select {
		case <-sig:
		case <-ctx.Done():
			t.Fatal("wpa_supplicant did not come on the bus")
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dot1xWire is the wire with hostapd and dnsmasq running and a Manager
// that dials a private bus, whose address it returns; wpa_supplicant is
// for the test to start there (runSupplicant).
func dot1xWire(t *testing.T, hostapdExtra ...string) (*ispWire, *authenticator, *Manager, chan UplinkEvent, string) {
	l := newISPWire(t)
	// hostapd's wired driver listens on the DHCP port too, to find
	// stations: dnsmasq binds after it, so that unicast renewals reach
	// dnsmasq.
	a := l.startAuthenticator(t, hostapdExtra...)
	l.startDnsmasq(t)
	m, events := newTestManager(t, l)
	needTool(t, "wpa_supplicant")
	addr := testbus.Start(t)
	dialBus(m, addr)
	return l, a, m, events, addr
}

// dialBus has m dial the bus at addr.
func dialBus(m *Manager, addr string) {
	m.o.DialBus = func(context.Context) (*dbus.Conn, error) {
		// Not WithContext(ctx): godbus closes the connection when it ends.
		return dbus.Connect(addr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	}
}

// waitRenewed waits until the uplink is authorized again and its lease
// renewed, and says how long that took from start.
func waitRenewed(t *testing.T, events chan UplinkEvent, start time.Time) time.Duration {
	t.Helper()
	waitDot1XAfter(t, events, Dot1XAuthorized, 30*time.Second, true)
	waitDHCP(t, events, boxIf, StateRenewing, 5*time.Second)
	waitDHCP(t, events, boxIf, StateBound, 10*time.Second)
	return time.Since(start).Round(time.Millisecond)
}

// waitDot1X waits for a dot1x event of the box's uplink in state s; a
// DHCP event before it fails the test unless s is authorized.
func waitDot1X(t testing.TB, events chan UplinkEvent, s string, timeout time.Duration) Dot1XStatus {
	t.Helper()
	return waitDot1XAfter(t, events, s, timeout, s == Dot1XAuthorized)
}

// waitDot1XAfter is waitDot1X; dhcp says whether DHCP may run meanwhile.
func waitDot1XAfter(t testing.TB, events chan UplinkEvent, s string, timeout time.Duration, dhcp bool) Dot1XStatus {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.Kind == "dot1x" && e.Uplink == boxIf && e.Dot1X.State == s {
				return *e.Dot1X
			}
			if e.Kind == "dhcp" && !dhcp {
				t.Fatalf("DHCP ran before 802.1X was %s: %+v", s, e.DHCP)
			}
		case <-deadline:
			t.Fatalf("no 802.1X %s event in %s", s, timeout)
		}
	}
}

func dot1xUplink(d Dot1X) Uplink {
	u := iptvUplink()
	u.Dot1X = &d
	return u
}

func TestHostDot1X(t *testing.T) {
	l := newISPWire(t)
	dns := l.startDnsmasq(t)
	m, events := newTestManager(t, l)
	dialBus(m, l.startSupplicant(t))
	ca := filepath.Join(l.dir, "hostapd", "ca.pem")
	otherDir := filepath.Join(l.dir, "other")
	must(t, os.MkdirAll(otherDir, 0o700))
	otherCA := dot1xCerts(t, otherDir) // a CA that did not sign the server's
	pwFile := filepath.Join(l.dir, "peap.pw")
	must(t, os.WriteFile(pwFile, []byte(peapPass+"\n"), 0o600))
	cases := []struct {
		name string
		d    Dot1X
		ok   bool
		eap  string
	}{
		{"MD5", Dot1X{EAP: EAPMD5, Identity: md5User, Password: md5Pass}, true, "MD5"},
		{"MD5WrongPassword", Dot1X{EAP: EAPMD5, Identity: md5User, Password: "nope"}, false, "MD5"},
		{"PEAP", Dot1X{EAP: EAPPEAP, Identity: peapUser, PasswordFile: pwFile, CACert: ca, AnonymousIdentity: "anonymous"}, true, "PEAP"},
		{"PEAPWrongPassword", Dot1X{EAP: EAPPEAP, Identity: peapUser, Password: "nope", CACert: ca}, false, "PEAP"},
		{"PEAPWrongCA", Dot1X{EAP: EAPPEAP, Identity: peapUser, Password: peapPass, CACert: otherCA}, false, "PEAP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh authenticator each: hostapd holds a refused
			// station quiet for 60 s.
			l.startAuthenticator(t)
			start := time.Now()
			if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dot1xUplink(c.d)}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := m.Apply(context.Background(), Config{}); err != nil {
					t.Errorf("apply of nothing: %v", err)
				}
				drain(events)
			})
			if !c.ok {
				st := waitDot1X(t, events, Dot1XFailed, 20*time.Second)
				t.Logf("apply to refused: %s: %s", time.Since(start).Round(time.Millisecond), st.Text())
				want := "EAP-Failure"
				if c.d.CACert == otherCA {
					want = "certificate does not verify against ca_cert"
				}
				if st.Method != c.eap || !strings.Contains(st.Reason, want) {
					t.Errorf("failed status %+v", st)
				}
				// DHCP does not run on a closed port.
				select {
				case r := <-dns.records:
					t.Errorf("dnsmasq gave a lease: %s", r)
				case <-time.After(3 * time.Second):
				}
				s := m.Status()[0]
				if s.Up || s.Dot1X == nil || s.Dot1X.State != Dot1XFailed || !strings.Contains(s.Detail, "802.1X failed") ||
					s.DHCP == nil || s.DHCP.State != StateInit || len(l.boxAddrs(t)) != 0 {
					t.Errorf("status %+v, dhcp %+v, addresses %v", s, s.DHCP, l.boxAddrs(t))
				}
				return
			}
			st := waitDot1X(t, events, Dot1XAuthorized, 20*time.Second)
			authorized := time.Since(start)
			waitDHCP(t, events, boxIf, StateBound, 10*time.Second)
			t.Logf("apply to authorized: %s (%s), to bound: %s", authorized.Round(time.Millisecond), st.Method, time.Since(start).Round(time.Millisecond))
			if st.Method != c.eap {
				t.Errorf("method %q, want %q", st.Method, c.eap)
			}
			dns.record(t, 5*time.Second)
			s := m.Status()[0]
			if !s.Up || s.Dot1X == nil || s.Dot1X.State != Dot1XAuthorized || s.Dot1X.AuthorizedAt.IsZero() {
				t.Errorf("status %+v", s)
			}
		})
	}
}

// TestHostDot1XFollowsAuthenticator: the authenticator re-authenticates
// every few seconds (the port stays open, the lease stays), then refuses
// the box (the uplink says so at once; the lease is kept, DHCP goes
// quiet), then takes it back (authorized, and the lease renewed at once).
func TestHostDot1XFollowsAuthenticator(t *testing.T) {
	l, a, m, events, addr := dot1xWire(t, "eap_reauth_period=3")
	l.runSupplicant(t, addr)
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dot1xUplink(Dot1X{EAP: EAPMD5, Identity: md5User, Password: md5Pass})}}); err != nil {
		t.Fatal(err)
	}
	waitDot1X(t, events, Dot1XAuthorized, 20*time.Second)
	lease := waitDHCP(t, events, boxIf, StateBound, 10*time.Second).DHCP.Lease

	// Two re-authentications: never out of authorized, lease kept.
	deadline := time.After(15 * time.Second)
	for n := 0; n < 2; {
		select {
		case e := <-events:
			switch {
			case e.Kind == "dot1x" && e.Dot1X.State != Dot1XAuthorized:
				t.Fatalf("a re-authentication closed the port: %+v", *e.Dot1X)
			case e.Kind == "dot1x" && e.Dot1X.Successes > 1+n:
				n++
			case e.Kind == "dhcp" && e.DHCP.State != StateBound:
				t.Fatalf("the lease moved at a re-authentication: %s", e.DHCP.State)
			}
		case <-deadline:
			t.Fatal("no two re-authentications in 15 s")
		}
	}
	if got := m.Status()[0]; !got.Up || got.DHCP.Lease == nil || got.DHCP.Lease.Address != lease.Address {
		t.Errorf("after re-authentications: %+v", got)
	}

	// The authenticator refuses the box at its next authentication (the
	// account's password changed: hostapd re-reads its users on SIGHUP,
	// forgetting the stations; it finds the box again by its next
	// EAPOL-Start, a Reassociate here, and authenticates it anew).
	users := filepath.Join(l.dir, "hostapd", "eap_users")
	old, err := os.ReadFile(users)
	must(t, err)
	reload := func(content []byte) {
		t.Helper()
		must(t, os.WriteFile(users, content, 0o600))
		must(t, a.cmd.Process.Signal(syscall.SIGHUP))
		// hostapd's loop handles a pending signal before the sockets:
		// its answer to a PING comes after the reload.
		if got := a.ctrlReply(t, "PING"); got != "PONG" {
			t.Fatalf("hostapd PING: %s", got)
		}
	}
	m.mu.Lock()
	sess := m.runners[boxIf].dot1x
	m.mu.Unlock()
	eapolStart := func() {
		t.Helper()
		must(t, sess.conn.Object(wpabus.Service, sess.path).Call(wpabus.Iface+".Reassociate", 0).Err)
	}
	reload([]byte(fmt.Sprintf("%q MD5 %q\n", md5User, "changed")))
	eapolStart()
	st := waitDot1XAfter(t, events, Dot1XFailed, 10*time.Second, false)
	if st.Failures != 1 || !strings.Contains(st.Reason, "EAP-Failure") {
		t.Errorf("failed status %+v", st)
	}
	if got := m.Status()[0]; got.Up || !strings.Contains(got.Detail, "802.1X failed") {
		t.Errorf("after the refusal: up %v, detail %q", got.Up, got.Detail)
	}

	// The account is back (the reload forgets the refused station and
	// its 60 s quiet period). wpa_supplicant holds 60 s after a failure
	// unless the authenticator asks first, which hostapd does for a
	// station it knows: here a Reassociate (EAPOL-Start) stands for the
	// end of the hold. The port open again has the DHCP client renew at
	// once.
	reload(old)
	eapolStart()
	t.Logf("account back to authorized and renewed: %s", waitRenewed(t, events, time.Now()))
}

// TestHostDot1XByHand is the figure beside the agent's: wpa_supplicant
// -Dwired with a config file, started by hand, to EAP success (MD5).
// Both take ~2 s: wpa_supplicant waits 2 s (its startWhen) for the
// authenticator's EAP-Request before it sends EAPOL-Start, and hostapd's
// wired driver only learns of a station from its frames.
func TestHostDot1XByHand(t *testing.T) {
	l := newISPWire(t)
	l.startAuthenticator(t)
	needTool(t, "wpa_supplicant")
	conf := filepath.Join(l.dir, "wpa.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf("ap_scan=0\nnetwork={\n key_mgmt=IEEE8021X\n eap=MD5\n identity=%q\n password=%q\n eapol_flags=0\n}\n", md5User, md5Pass)), 0o600))
	start := time.Now()
	cmd := exec.Command("ip", "netns", "exec", l.boxName, "wpa_supplicant", "-Dwired", "-i", boxIf, "-c", conf)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	log := followLog("wpa_supplicant", cmd, out)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-log.exited
	})
	if _, err := log.waitLine("CTRL-EVENT-EAP-SUCCESS", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, log.logText())
	}
	t.Logf("wpa_supplicant -Dwired by hand, start to EAP success: %s", time.Since(start).Round(time.Millisecond))
}

// TestHostDot1XSupplicantRestart: wpa_supplicant leaves the bus and comes
// back (a restart, a package upgrade): the uplink says so, then starts
// over by itself, authorized again and the lease renewed.
func TestHostDot1XSupplicantRestart(t *testing.T) {
	l, _, m, events, addr := dot1xWire(t)
	stop := l.runSupplicant(t, addr)
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dot1xUplink(Dot1X{EAP: EAPMD5, Identity: md5User, Password: md5Pass})}}); err != nil {
		t.Fatal(err)
	}
	waitDot1X(t, events, Dot1XAuthorized, 20*time.Second)
	waitDHCP(t, events, boxIf, StateBound, 10*time.Second)

	stop()
	st := waitDot1XAfter(t, events, Dot1XAbsent, 10*time.Second, false)
	if got := m.Status()[0]; got.Up || !strings.Contains(got.Detail, "wpa_supplicant left the bus") {
		t.Errorf("without wpa_supplicant: up %v, detail %q (%+v)", got.Up, got.Detail, st)
	}
	start := time.Now()
	l.runSupplicant(t, addr)
	t.Logf("wpa_supplicant back to authorized and renewed: %s", waitRenewed(t, events, start))
}

// TestHostDot1XNoSupplicant: without wpa_supplicant on the bus the apply
// of an 802.1X uplink fails, saying so, and no DHCP client runs; when
// wpa_supplicant comes (one not D-Bus activatable, started after the
// agent) the link watch applies the uplink again by itself.
func TestHostDot1XNoSupplicant(t *testing.T) {
	l, _, m, events, addr := dot1xWire(t)
	_, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dot1xUplink(Dot1X{EAP: EAPMD5, Identity: md5User, Password: md5Pass})}})
	if !errors.Is(err, ErrDot1XNoSupplicant) || !strings.Contains(err.Error(), "not on the system bus") {
		t.Fatalf("apply: %v", err)
	}
	if s := m.Status()[0]; s.Up || s.DHCP != nil || !strings.Contains(s.Detail, "not on the system bus") {
		t.Errorf("status %+v", s)
	}

	start := time.Now()
	l.runSupplicant(t, addr)
	waitDot1XAfter(t, events, Dot1XAuthorized, 20*time.Second, false)
	waitDHCP(t, events, boxIf, StateBound, 10*time.Second)
	t.Logf("wpa_supplicant on the bus to authorized and bound: %s", time.Since(start).Round(time.Millisecond))
}

// TestHostDot1XPasswordFile: the password file is read at each apply: a
// password rotated in it is taken by the next apply (net apply) of the
// same table, which starts the session over.
func TestHostDot1XPasswordFile(t *testing.T) {
	l, _, m, events, addr := dot1xWire(t)
	l.runSupplicant(t, addr)
	pw := filepath.Join(l.dir, "md5.pw")
	must(t, os.WriteFile(pw, []byte(md5Pass+"\n"), 0o600))
	cfg := Config{Uplinks: []Uplink{dot1xUplink(Dot1X{EAP: EAPMD5, Identity: md5User, PasswordFile: pw})}}
	if _, err := m.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	waitDot1X(t, events, Dot1XAuthorized, 20*time.Second)
	if res, err := m.Apply(context.Background(), cfg); err != nil || len(res.Started) != 0 {
		t.Errorf("apply of the same table and password: %+v, %v", res, err)
	}
	must(t, os.WriteFile(pw, []byte("rotated\n"), 0o600))
	res, err := m.Apply(context.Background(), cfg)
	if err != nil || len(res.Started) != 1 {
		t.Errorf("apply after the rotation: %+v, %v", res, err)
	}
	if st := waitDot1XAfter(t, events, Dot1XFailed, 20*time.Second, true); !strings.Contains(st.Reason, "EAP-Failure") {
		t.Errorf("with the rotated password: %+v", st)
	}
}
