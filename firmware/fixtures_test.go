package firmware

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/firmware/fwtest"
)

// testKey is a signing key with its self-signed certificate, written as PEM
// files for openssl.
type testKey struct {
	cert     *x509.Certificate
	certPath string
	keyPath  string
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]*testKey{}
	keyDir   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "firmware-keys-")
	if err != nil {
		panic(err)
	}
	keyDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// key returns the named test key, generated once per test binary: "rsa2048",
// "rsa4096", "ec256", "other" (RSA-2048), "sha1cert" (RSA-2048 in a
// sha1WithRSA certificate), "rsa1024" and "ec384" (keys recovery refuses).
func key(t testing.TB, name string) *testKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[name]; ok {
		return k
	}
	var priv crypto.Signer
	var err error
	switch name {
	case "ec256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa4096":
		priv, err = rsa.GenerateKey(rand.Reader, 4096)
	case "rsa1024":
		priv, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "boxagent test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	if name == "sha1cert" {
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKey{cert: cert, certPath: filepath.Join(keyDir, name+".x509.pem"), keyPath: filepath.Join(keyDir, name+".key.pem")}
	writePEM(t, k.certPath, "CERTIFICATE", der)
	writePEM(t, k.keyPath, "PRIVATE KEY", pk)
	keyCache[name] = k
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// needTool skips a test that runs an outside tool when the tool is missing,
// or with -short (the repository's rule for tests that start processes).
func needTool(t testing.TB, name string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs %s; skipped with -short", name)
	}
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (%v); CI installs it", name, err)
	}
}

type entry struct {
	name string
	data []byte
}

// updateEntries is a minimal recovery package.
func updateEntries(extra ...entry) []entry {
	return append([]entry{
		{AndroidUpdateBinary, []byte("#!/sbin/sh\necho hello from update-binary\n")},
		{"META-INF/com/google/android/updater-script", []byte("ui_print(\"test\");\n")},
		{"system/build.prop", bytes.Repeat([]byte("ro.build.fingerprint=test\n"), 50)},
	}, extra...)
}

// buildZip writes entries with archive/zip (deflate), with an optional
// archive comment.
func buildZip(t testing.TB, entries []entry, comment string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if comment != "" {
		if err := w.SetComment(comment); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cmsSign returns a detached PKCS#7 (DER) over data made by openssl cms.
func cmsSign(t testing.TB, k *testKey, md string, data []byte, noattr bool) []byte {
	t.Helper()
	needTool(t, "openssl")
	sig, err := fwtest.CMSSign(data, k.certPath, k.keyPath, md, noattr)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

const signApkMessage = fwtest.SignApkMessage

// assembleWholeFile: see fwtest.AssembleWholeFile.
var assembleWholeFile = fwtest.AssembleWholeFile

// signWholeFile signs an uncommented zip the way signapk -w does.
func signWholeFile(t testing.TB, zipData []byte, k *testKey, md string, noattr bool) []byte {
	t.Helper()
	prefix := zipData[:len(zipData)-2]
	return assembleWholeFile(prefix, signApkMessage, cmsSign(t, k, md, prefix, noattr))
}
