package firmware

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// benchPackage is a 64 MiB package (one stored entry of random bytes)
// signed in whole-file mode with RSA-2048 and the digest md.
func benchPackage(b *testing.B, md string) ([]byte, Policy) {
	b.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.CreateHeader(&zip.FileHeader{Name: "payload.bin", Method: zip.Store})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64<<20)
	rand.Read(payload)
	f.Write(payload)
	bin, _ := w.Create(AndroidUpdateBinary)
	bin.Write([]byte("#!/sbin/sh\n"))
	w.Close()
	k := key(b, "rsa2048")
	if md == "sha1" {
		k = key(b, "sha1cert") // recovery hashes with the certificate's algorithm
	}
	signed := signWholeFile(b, buf.Bytes(), k, md, true)
	return signed, Policy{Method: MethodSignApk, Certs: []*x509.Certificate{k.cert}, RequiredEntries: []string{AndroidUpdateBinary}}
}

func benchVerify(b *testing.B, md string) {
	data, p := benchPackage(b, md)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignApkSHA256_64MiB(b *testing.B) { benchVerify(b, "sha256") }

// BenchmarkVerifySignApkFile_64MiB reads the package from a file (warm page
// cache), as staging does.
func BenchmarkVerifySignApkFile_64MiB(b *testing.B) {
	data, p := benchPackage(b, "sha256")
	path := filepath.Join(b.TempDir(), "update.zip")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(context.Background(), f, int64(len(data)), p); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkVerifySignApkSHA1_64MiB(b *testing.B) { benchVerify(b, "sha1") }

// BenchmarkSHA256_64MiB is the floor: plain sha256 of the same bytes.
func BenchmarkSHA256_64MiB(b *testing.B) {
	data, _ := benchPackage(b, "sha256")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		sha256.Sum256(data)
	}
}
