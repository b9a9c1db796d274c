package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/internal/atomicfile"
)

// The page is served over HTTPS when its listener is reachable from the
// network: the password and the session cookie (Secure then) do not cross
// the LAN in the clear. The certificate is self-signed, made at the first
// start that needs it and kept in the state folder; a browser warns about
// it once, and `boxagent status` on the console shows its SHA-256
// fingerprint to compare with what the browser shows (as Cockpit does).
// Loopback stays plain HTTP.

// pageCert loads the page's certificate, making it (ECDSA P-256, ten
// years) when there is none.
func pageCert(p paths.Paths) (tls.Certificate, error) {
	certFile, keyFile := p.HTTPCertFile(), p.HTTPKeyFile()
	certPEM, err := os.ReadFile(certFile)
	if err == nil {
		var keyPEM []byte
		if keyPEM, err = readPrivate(keyFile); err == nil {
			return tls.X509KeyPair(certPEM, keyPEM)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, err
	}
	certPEM, keyPEM, err := newCert()
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(p.StateDir(), 0o700); err != nil {
		return tls.Certificate{}, err
	}
	if err := atomicfile.Write(keyFile, keyPEM, 0o600, atomicfile.Options{}); err != nil {
		return tls.Certificate{}, err
	}
	if err := atomicfile.Write(certFile, certPEM, 0o644, atomicfile.Options{}); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func newCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h, h+".local")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "boxagent " + names[len(names)-1]},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// CertFingerprint is the SHA-256 of a certificate as browsers show it:
// upper-case hex bytes joined by colons.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hexes, ":")
}

// pageTLS is the TLS config of the page's listener: HTTP/1.1 only (the
// event stream's per-write deadlines are set on the connection), TLS 1.2
// at least.
func pageTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
}
