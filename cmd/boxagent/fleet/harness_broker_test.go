package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// needBroker skips with -short (the test starts a daemon) and, off CI,
// when the broker is not installed; under CI=true a missing broker fails:
// CI installs deploy/test-packages.
func needBroker(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts %s; skipped with -short", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (%v): CI installs deploy/test-packages", name, err)
		}
		t.Skipf("%s is not installed (%v); CI installs it", name, err)
	}
	return path
}

// pki is a test CA that issues the broker's and the clients' certificates.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	serial int64
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: dir, ca: ca, caKey: key, CAFile: filepath.Join(dir, "ca.pem"), serial: 1}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// issue makes a certificate for cn (a server's for 127.0.0.1 when
// server) and returns its files.
func (p *pki) issue(t testing.TB, cn string, server bool, notAfter time.Time) (cert, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+".key")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, key, "EC PRIVATE KEY", kder)
	return cert, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientTLS is the TLS settings of a client holding cn's certificate.
func (p *pki) clientTLS(t testing.TB, cn string) *tls.Config {
	t.Helper()
	cert, key := p.issue(t, cn, false, time.Now().Add(24*time.Hour))
	id, err := LoadIdentity(config.Fleet{CA: p.CAFile, Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return id.TLS
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t testing.TB, port int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d after %s", port, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startMosquitto runs Debian's mosquitto on loopback: TLS with client
// certificates, the certificate's CN as the username, and the per-box
// ACL a fleet uses. It returns the broker's URL.
func startMosquitto(t testing.TB, p *pki) string {
	t.Helper()
	bin := needBroker(t, "mosquitto")
	port := freePort(t)
	cert, key := p.issue(t, "broker", true, time.Now().Add(24*time.Hour))
	acl := filepath.Join(p.dir, "acl")
	// The operator may do anything below the prefix; a box only below its
	// own id, and read its groups' commands.
	os.WriteFile(acl, []byte("user operator\ntopic readwrite boxagent/#\n\n"+
		"pattern readwrite boxagent/%u/#\npattern read boxagent/_group/#\n"), 0o600)
	conf := filepath.Join(p.dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`user root
per_listener_settings false
allow_anonymous false
persistence false
max_connections -1
max_queued_messages 10000
acl_file %s
log_dest stderr
log_type error
log_type warning
connection_messages false
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, acl, port, p.CAFile, cert, key)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = &prefixWriter{t: t, prefix: "mosquitto: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port, 10*time.Second)
	return fmt.Sprintf("mqtts://127.0.0.1:%d", port)
}

type prefixWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	done   bool
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			w.t.Log(w.prefix + line)
		}
	}
	return len(b), nil
}

// testBackend is the agent's backend in these tests: what matters is the
// route table, the journal and the events, all real.
type testBackend struct {
	revision atomic.Value // string
	reloads  atomic.Int64
}

func (b *testBackend) Status(context.Context) localapi.Status {
	rev, _ := b.revision.Load().(string)
	return localapi.Status{Version: "test", Config: localapi.ConfigInfo{Revision: rev}, UptimeSeconds: float64(time.Now().UnixNano())}
}
func (b *testBackend) Doctor(context.Context) localapi.Doctor { return localapi.Doctor{} }
func (b *testBackend) Board(context.Context) any              { return nil }
func (b *testBackend) Boards(context.Context) (any, error)    { return []string{}, nil }
func (b *testBackend) ReloadConfig(context.Context) (localapi.ReloadResult, error) {
	b.reloads.Add(1)
	return localapi.ReloadResult{}, nil
}
func (b *testBackend) Snapshot() journal.Snapshot {
	return journal.Snapshot{Revision: "sha256:test", Board: "test", Config: json.RawMessage(`{}`)}
}

// testBox is an agent with its link: a real local API, journal and event
// broker, and one extra route that counts its runs per command.
type testBox struct {
	id      string
	dir     string
	backend *testBackend
	srv     *localapi.Server
	store   *journal.Store
	events  *localapi.Broker
	opts    Options

	mu   sync.Mutex
	runs map[string]int // test.work runs by the command's "n"

	log *syncBuffer // the link's log, shown when a test fails

	link   *Link
	cancel context.CancelFunc
	done   chan struct{}
}

// fleetRoutes are what the test boxes allow; the cancel route is not.
var fleetRoutes = []string{
	"GET /api/v1/status", "GET /api/v1/operations", "GET /api/v1/operations/{id}",
	"POST /api/v1/config/reload", "POST /api/v1/test/work",
}

func newTestBox(t testing.TB, cfg config.Fleet, id Identity) *testBox {
	t.Helper()
	b := &testBox{id: id.ID, dir: t.TempDir(), backend: &testBackend{}, runs: map[string]int{}}
	var err error
	b.store, err = journal.Open(filepath.Join(b.dir, "journal.db"), journal.Options{Keep: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	b.events = localapi.NewBroker(256)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.log = &syncBuffer{}
	linkLog := slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv = localapi.New(localapi.Options{Backend: b.backend, Journal: b.store, Events: b.events, Logger: log})
	b.srv.Handle("POST", "/api/v1/test/work", true, func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			N string `json:"n"`
		}
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		return b.srv.Operate(w, r, localapi.Spec{Kind: "test.work", Request: req}, func(context.Context, localapi.ProgressFunc) (any, error) {
			b.mu.Lock()
			b.runs[req.N]++
			b.mu.Unlock()
			return map[string]string{"ran": req.N}, nil
		})
	})
	b.opts = Options{
		Config: cfg, Identity: id, Version: "test",
		API: b.srv.InProcess(journal.OriginFleet), Journal: b.store, Events: b.events,
		Snapshot: b.backend.Snapshot, Cursor: Cursor{Path: filepath.Join(b.dir, CursorFile)},
		Logger: linkLog,
	}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *testBox) start(t testing.TB) {
	t.Helper()
	l, err := New(b.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.link, b.cancel, b.done = l, cancel, make(chan struct{})
	go func() { defer close(b.done); l.Run(ctx) }()
}

func (b *testBox) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	}
}

// record journals one operation of the agent's own (origin auto).
func (b *testBox) record(t testing.TB, kind string) uint64 {
	t.Helper()
	op, err := b.srv.Run(localapi.Spec{Kind: kind}, func(context.Context, localapi.ProgressFunc) (any, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	return op.ID
}

func (b *testBox) runsOf(n string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[n]
}

// operatorKey makes an operator key pair; the public half goes in [fleet].
func operatorKey(t testing.TB) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, base64.StdEncoding.EncodeToString(pub)
}

// waitFor polls a test condition (the test's, not the link's).
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
