// Package fleettest runs the real brokers the fleet's tests and its
// simulator use: a test CA, Debian's mosquitto with TLS client
// certificates and the per-box ACL, and a three-node NATS cluster with
// JetStream and MQTT. Tests and the simulator only: the agent never
// imports it.
package fleettest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// T is what the helpers need of a test (testing.TB has it); the
// simulator passes its own.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var _ T = testing.TB(nil)

// NeedBroker skips with -short (the test starts a daemon) and, off CI,
// when the broker is not installed; under CI=true a missing broker fails:
// CI installs deploy/test-packages.
func NeedBroker(t T, name string) string {
	t.Helper()
	if testing.Testing() && testing.Short() {
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

// PKI is a test CA that issues the broker's and the clients' certificates.
type PKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	serial int64
}

func NewPKI(t T) *PKI {
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
		t.Fatalf("%v", err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{dir: dir, ca: ca, caKey: key, CAFile: filepath.Join(dir, "ca.pem"), serial: 1}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// Issue makes a certificate for cn (a server's for 127.0.0.1 when
// server) and returns its files.
func (p *PKI) Issue(t T, cn string, server bool, notAfter time.Time) (cert, key string) {
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
		t.Fatalf("%v", err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+".key")
	writePEM(t, cert, "CERTIFICATE", der)
	writePEM(t, key, "EC PRIVATE KEY", kder)
	return cert, key
}

func writePEM(t T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
}

// ClientTLS is the TLS settings of a client holding cn's certificate.
func (p *PKI) ClientTLS(t T, cn string) *tls.Config {
	t.Helper()
	cert, key := p.Issue(t, cn, false, time.Now().Add(24*time.Hour))
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{pair}}
}

func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func WaitPort(t T, port int, within time.Duration) {
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

// StartMosquitto runs Debian's mosquitto on loopback: TLS with client
// certificates, the certificate's CN as the username, and the per-box
// ACL a fleet uses. It returns the broker's URL.
func StartMosquitto(t T, p *PKI) string {
	url, _ := StartMosquittoPID(t, p)
	return url
}

// StartMosquittoPID is StartMosquitto that also tells the broker's
// process id (the simulator reads its memory).
func StartMosquittoPID(t T, p *PKI) (string, int) {
	t.Helper()
	bin := NeedBroker(t, "mosquitto")
	port := FreePort(t)
	cert, key := p.Issue(t, "broker", true, time.Now().Add(24*time.Hour))
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
max_queued_messages 1000000
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
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	WaitPort(t, port, 10*time.Second)
	return fmt.Sprintf("mqtts://127.0.0.1:%d", port), cmd.Process.Pid
}

type prefixWriter struct {
	t      T
	prefix string
	mu     sync.Mutex
	done   bool
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			w.t.Logf("%s", w.prefix+line)
		}
	}
	return len(b), nil
}
