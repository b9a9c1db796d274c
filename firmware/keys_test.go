package firmware

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"hash"
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
)

func TestNewPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	msPub, _, _ := minisign.GenerateKey(rand.Reader)
	msText, _ := msPub.MarshalText()
	msFile := write("minisign.pub", append(msText, '\n'))
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(edPub)
	edPEM := write("ed.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	edRaw := write("ed.raw", edPub)
	edB64 := write("ed.b64", []byte(base64.StdEncoding.EncodeToString(edPub)+"\n"))
	ecPub := key(t, "ec256").certPath
	ecKeyDER, _ := x509.MarshalPKIXPublicKey(key(t, "ec256").cert.PublicKey)
	notEd := write("ec.pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecKeyDER}))
	junk := write("junk", []byte("junk"))

	tests := []struct {
		name     string
		method   string
		keys     []string
		wantKeys int
		wantErr  bool
	}{
		{"signapk", "signapk", []string{ecPub}, 1, false},
		{"signapk without keys", "signapk", nil, 0, true},
		{"signapk with a minisign key", "signapk", []string{msFile}, 0, true},
		{"minisign", "minisign", []string{msFile}, 1, false},
		{"minisign junk", "minisign", []string{junk}, 0, true},
		{"ed25519 pem, raw, base64", "ed25519", []string{edPEM, edRaw, edB64}, 3, false},
		{"ed25519 with an ec key", "ed25519", []string{notEd}, 0, true},
		{"ed25519 junk", "ed25519", []string{junk}, 0, true},
		{"sha256", "sha256", nil, 0, false},
		{"sha256 with keys", "sha256", []string{ecPub}, 0, true},
		{"none", "none", nil, 0, false},
		{"unknown", "crc32", nil, 0, true},
		{"missing file", "minisign", []string{filepath.Join(dir, "nope")}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.method, tt.keys, []string{AndroidUpdateBinary})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewPolicy = %+v, want an error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(p.Certs) + len(p.MinisignKeys) + len(p.Ed25519Keys); n != tt.wantKeys || string(p.Method) != tt.method {
				t.Errorf("policy %+v has %d keys, want %d", p, n, tt.wantKeys)
			}
		})
	}
	if _, err := NewPolicy("crc32", nil, nil); !errors.Is(err, ErrPolicy) {
		t.Errorf("unknown method: %v", err)
	}
}

// TestHashPassBoundary checks the signed-prefix digests wherever the
// prefix ends relative to the read buffer.
func TestHashPassBoundary(t *testing.T) {
	data := make([]byte, 2*passBuf+100)
	rand.Read(data)
	size := int64(len(data))
	for _, prefix := range []int64{0, 1, passBuf - 1, passBuf, passBuf + 1, 2 * passBuf, size - 1, size} {
		whole := sha256.New()
		hp := hashPass{whole: []hash.Hash{whole}, prefixLen: prefix, prefix: sha1.New()}
		var calls int
		if err := hp.run(context.Background(), bytes.NewReader(data), size, func(string, int64, int64) { calls++ }); err != nil {
			t.Fatal(err)
		}
		want256 := sha256.Sum256(data[:prefix])
		want1 := sha1.Sum(data[:prefix])
		all := sha256.Sum256(data)
		if !bytes.Equal(hp.prefixSum(crypto.SHA256), want256[:]) || !bytes.Equal(hp.prefixSum(crypto.SHA1), want1[:]) ||
			!bytes.Equal(whole.Sum(nil), all[:]) || hp.prefixSum(crypto.SHA512) != nil || calls == 0 {
			t.Errorf("prefix %d: wrong digests (%d progress calls)", prefix, calls)
		}
	}
}
