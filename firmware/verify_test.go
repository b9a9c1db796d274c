package firmware

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func verifyBytes(b []byte, p Policy, opts ...Option) (Report, error) {
	return Verify(context.Background(), bytes.NewReader(b), int64(len(b)), p, opts...)
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x01
	return c
}

// rezip reads a package and writes its entries into a new zip, as a user
// "repacking" an update would.
func rezip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var es []entry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{f.Name, data})
	}
	return buildZip(t, es, "")
}

func TestVerifySignApk(t *testing.T) {
	needTool(t, "openssl")
	rsa2048, ec256, other, sha1cert := key(t, "rsa2048"), key(t, "ec256"), key(t, "other"), key(t, "sha1cert")
	certs := []*x509.Certificate{rsa2048.cert, ec256.cert, sha1cert.cert}
	plain := buildZip(t, updateEntries(), "")
	good := signWholeFile(t, plain, rsa2048, "sha256", true)
	required := []string{AndroidUpdateBinary}

	// A zip that already had a comment: the signer kept the old comment and
	// signed the bytes up to the comment length, as signapk would: the old
	// comment is unsigned, like the rest of the comment, and that is fine.
	commented := buildZip(t, updateEntries(), "release 1.2")
	cPrefix := commented[:len(commented)-2-len("release 1.2")]
	keptComment := assembleWholeFile(cPrefix, "release 1.2"+signApkMessage, cmsSign(t, rsa2048, "sha256", cPrefix, true))
	// The same zip signed naively over all its bytes, comment included.
	naive := assembleWholeFile(cPrefix, signApkMessage, cmsSign(t, rsa2048, "sha256", commented, true))

	// An EOCD signature hidden in the (unsigned) comment.
	extraEOCD := assembleWholeFile(plain[:len(plain)-2], "signed by SignApk PK\x05\x06\x00",
		cmsSign(t, rsa2048, "sha256", plain[:len(plain)-2], true))

	tests := []struct {
		name    string
		data    []byte
		certs   []*x509.Certificate
		attrs   bool // Policy.AllowSignedAttributes
		wantErr error
		wantMsg string
		key     string
		digest  string
	}{
		{name: "rsa2048 sha256", data: good, key: "RSA-2048", digest: "SHA-256"},
		{name: "rsa2048 sha1", data: signWholeFile(t, plain, sha1cert, "sha1", true), key: "RSA-2048", digest: "SHA-1"},
		{name: "sha1 signature, sha256 certificate", data: signWholeFile(t, plain, rsa2048, "sha1", true),
			wantErr: ErrSignature, wantMsg: "recovery hashes with SHA-256"},
		{name: "sha256 signature, sha1 certificate", data: signWholeFile(t, plain, sha1cert, "sha256", true),
			wantErr: ErrSignature, wantMsg: "recovery hashes with SHA-1"},
		{name: "ecdsa p256 sha256", data: signWholeFile(t, plain, ec256, "sha256", true), key: "ECDSA-P-256", digest: "SHA-256"},
		{name: "with authenticated attributes", data: signWholeFile(t, plain, rsa2048, "sha256", false),
			wantErr: ErrSignature, wantMsg: "authenticated attributes"},
		{name: "with authenticated attributes allowed", data: signWholeFile(t, plain, rsa2048, "sha256", false), attrs: true, key: "RSA-2048", digest: "SHA-256"},
		{name: "ecdsa with authenticated attributes allowed", data: signWholeFile(t, plain, ec256, "sha256", false), attrs: true, key: "ECDSA-P-256", digest: "SHA-256"},
		{name: "old comment kept unsigned", data: keptComment, key: "RSA-2048", digest: "SHA-256"},
		{name: "flipped byte in entry data", data: flip(good, 100), wantErr: ErrSignature, wantMsg: "signature verification failed"},
		{name: "flipped byte in central directory", data: flip(good, len(plain)-40), wantErr: ErrStructure},
		{name: "flipped byte in signature", data: flip(good, len(good)-20), wantErr: ErrSignature},
		{name: "flipped byte with attributes", data: flip(signWholeFile(t, plain, rsa2048, "sha256", false), 100), attrs: true, wantErr: ErrSignature},
		{name: "unknown key with attributes", data: signWholeFile(t, plain, other, "sha256", false), attrs: true, wantErr: ErrUnknownSigner},
		{name: "flipped byte, sha1", data: flip(signWholeFile(t, plain, sha1cert, "sha1", true), 100), wantErr: ErrSignature},
		{name: "truncated", data: good[:len(good)-100], wantErr: ErrFooter, wantMsg: "footer is wrong"},
		{name: "truncated to half", data: good[:len(good)/2], wantErr: ErrFooter},
		{name: "extra EOCD in comment", data: extraEOCD, wantErr: ErrStructure, wantMsg: "EOCD marker occurs after start of EOCD"},
		{name: "signed over the old comment", data: naive, wantErr: ErrSignature},
		{name: "re-zipped", data: rezip(t, good), wantErr: ErrUnsigned, wantMsg: "no signature in file"},
		{name: "unsigned with comment", data: buildZip(t, updateEntries(), "hello"), wantErr: ErrFooter, wantMsg: "footer is wrong"},
		{name: "wrong key", data: signWholeFile(t, plain, other, "sha256", true), wantErr: ErrUnknownSigner, wantMsg: "boxagent test other"},
		{name: "configured cert missing", data: good, certs: []*x509.Certificate{ec256.cert}, wantErr: ErrUnknownSigner},
		{name: "missing update-binary", data: signWholeFile(t, buildZip(t, updateEntries()[1:], ""), rsa2048, "sha256", true), wantErr: ErrMissingEntry},
		{name: "not a zip", data: bytes.Repeat([]byte("not a zip "), 100), wantErr: ErrStructure},
		{name: "empty", data: nil, wantErr: ErrStructure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Method: MethodSignApk, Certs: certs, RequiredEntries: required, AllowSignedAttributes: tt.attrs}
			if tt.certs != nil {
				p.Certs = tt.certs
			}
			rep, err := verifyBytes(tt.data, p)
			// Precheck never refuses what Verify accepts, refuses only
			// for Verify's reason, and refuses from the footer what has
			// no valid one.
			pre := Precheck(bytes.NewReader(tt.data), int64(len(tt.data)), p)
			early := map[string]bool{"re-zipped": true, "unsigned with comment": true, "truncated": true,
				"truncated to half": true, "with authenticated attributes": true, "not a zip": true, "empty": true}
			switch {
			case pre != nil && (tt.wantErr == nil || !errors.Is(pre, tt.wantErr)):
				t.Errorf("Precheck = %v; Verify wants %v", pre, tt.wantErr)
			case pre == nil && early[tt.name]:
				t.Errorf("Precheck passed a package it can refuse from its footer (%v)", tt.wantErr)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %q, want it to say %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			sum := sha256.Sum256(tt.data)
			if rep.SHA256 != hex.EncodeToString(sum[:]) || rep.Size != int64(len(tt.data)) || rep.Entries != 3 {
				t.Errorf("report = %+v", rep)
			}
			if rep.Signer == nil || rep.Signer.Key != tt.key || rep.Signer.Digest != tt.digest ||
				!strings.HasPrefix(rep.Signer.Subject, "boxagent test ") || len(rep.Signer.Fingerprint) != 64 {
				t.Errorf("signer = %+v, want key %s digest %s", rep.Signer, tt.key, tt.digest)
			}
		})
	}
}

func TestVerifySignApkRSA4096(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-4096 key generation is slow; skipped with -short")
	}
	k := key(t, "rsa4096")
	b := signWholeFile(t, buildZip(t, updateEntries(), ""), k, "sha256", true)
	rep, err := verifyBytes(b, Policy{Method: MethodSignApk, Certs: []*x509.Certificate{k.cert}})
	if err != nil || rep.Signer.Key != "RSA-4096" {
		t.Fatalf("Verify = %+v, %v", rep.Signer, err)
	}
}

func TestVerifyDigestAndDetached(t *testing.T) {
	data := buildZip(t, updateEntries(), "")
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	bad := flip(data, 100)

	msPub, msPriv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := minisign.GenerateKey(rand.Reader)
	msSig := minisign.NewReader(bytes.NewReader(data))
	io.Copy(io.Discard, msSig)
	minisig := msSig.Sign(msPriv)
	legacySig := minisign.Sign(msPriv, data)

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	digest := sha512.Sum512(data)
	edSig, err := edPriv.Sign(nil, digest[:], &ed25519.Options{Hash: crypto.SHA512})
	if err != nil {
		t.Fatal(err)
	}
	otherEd, _, _ := ed25519.GenerateKey(rand.Reader)

	tests := []struct {
		name    string
		data    []byte
		p       Policy
		opts    []Option
		wantErr error
		signer  string
	}{
		{"sha256 ok", data, Policy{Method: MethodSHA256}, []Option{WithSHA256(strings.ToUpper(hexSum))}, nil, ""},
		{"sha256 mismatch", bad, Policy{Method: MethodSHA256}, []Option{WithSHA256(hexSum)}, ErrDigest, ""},
		{"sha256 missing", data, Policy{Method: MethodSHA256}, nil, ErrPolicy, ""},
		{"sha256 malformed", data, Policy{Method: MethodSHA256}, []Option{WithSHA256("abc")}, ErrPolicy, ""},
		{"none", data, Policy{Method: MethodNone}, nil, nil, ""},
		{"none with sha256 mismatch", bad, Policy{Method: MethodNone}, []Option{WithSHA256(hexSum)}, ErrDigest, ""},
		{"unknown method", data, Policy{Method: "md5"}, nil, ErrPolicy, ""},
		{"signapk without certs", data, Policy{Method: MethodSignApk}, nil, ErrPolicy, ""},
		{"signapk with a cert recovery refuses", data, Policy{Method: MethodSignApk, Certs: []*x509.Certificate{key(t, "ec384").cert}}, nil, ErrPolicy, ""},
		{"minisign ok", data, Policy{Method: MethodMinisign, MinisignKeys: []minisign.PublicKey{otherPub, msPub}}, []Option{WithSignature(minisig)}, nil, "minisign:"},
		{"minisign tampered", bad, Policy{Method: MethodMinisign, MinisignKeys: []minisign.PublicKey{msPub}}, []Option{WithSignature(minisig)}, ErrSignature, ""},
		{"minisign unknown key", data, Policy{Method: MethodMinisign, MinisignKeys: []minisign.PublicKey{otherPub}}, []Option{WithSignature(minisig)}, ErrUnknownSigner, ""},
		{"minisign legacy", data, Policy{Method: MethodMinisign, MinisignKeys: []minisign.PublicKey{msPub}}, []Option{WithSignature(legacySig)}, ErrSignature, ""},
		{"minisign no signature", data, Policy{Method: MethodMinisign, MinisignKeys: []minisign.PublicKey{msPub}}, nil, ErrUnsigned, ""},
		{"ed25519ph ok", data, Policy{Method: MethodEd25519, Ed25519Keys: []ed25519.PublicKey{otherEd, edPub}}, []Option{WithSignature(edSig)}, nil, "Ed25519"},
		{"ed25519ph tampered", bad, Policy{Method: MethodEd25519, Ed25519Keys: []ed25519.PublicKey{edPub}}, []Option{WithSignature(edSig)}, ErrSignature, ""},
		{"ed25519ph wrong key", data, Policy{Method: MethodEd25519, Ed25519Keys: []ed25519.PublicKey{otherEd}}, []Option{WithSignature(edSig)}, ErrSignature, ""},
		{"ed25519 short signature", data, Policy{Method: MethodEd25519, Ed25519Keys: []ed25519.PublicKey{edPub}}, []Option{WithSignature(edSig[:10])}, ErrUnsigned, ""},
		{"required entry missing", data, Policy{Method: MethodNone, RequiredEntries: []string{"payload.bin"}}, nil, ErrMissingEntry, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := verifyBytes(tt.data, tt.p, tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if rep.SHA256 != hexSum {
				t.Errorf("sha256 = %s, want %s", rep.SHA256, hexSum)
			}
			if tt.signer == "" && rep.Signer != nil || tt.signer != "" && (rep.Signer == nil || !strings.HasPrefix(rep.Signer.Key, tt.signer)) {
				t.Errorf("signer = %+v, want %q", rep.Signer, tt.signer)
			}
		})
	}
}

func TestVerifyShrunkFile(t *testing.T) {
	// The size was taken, then the file shrank (or the stick went away):
	// every read must notice, none may hash stale buffer bytes.
	random := make([]byte, 2*readBlock)
	rand.Read(random)
	data := buildZip(t, updateEntries(entry{"big.bin", random}), "")
	for _, keep := range []int{0, 100, passBuf, len(data) - 1} {
		_, err := Verify(context.Background(), bytes.NewReader(data[:keep]), int64(len(data)), Policy{Method: MethodNone})
		if err == nil {
			t.Errorf("Verify of %d of %d bytes succeeded", keep, len(data))
		}
	}
}

// shortReader returns a short read, without an error, for reads that start
// at hole: a reader breaking the io.ReaderAt contract, or a device whose
// bytes went away between the size and the read.
type shortReader struct {
	*bytes.Reader
	hole int64
}

func (r shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off == r.hole && len(p) > 1 {
		return r.Reader.ReadAt(p[:len(p)/2], off)
	}
	return r.Reader.ReadAt(p, off)
}

func TestVerifyShortRead(t *testing.T) {
	random := make([]byte, 2*readBlock)
	rand.Read(random)
	data := buildZip(t, updateEntries(entry{"big.bin", random}), "")
	r := shortReader{bytes.NewReader(data), readBlock}
	if _, err := Verify(context.Background(), r, int64(len(data)), Policy{Method: MethodNone}); err == nil || !strings.Contains(err.Error(), "cannot read package at") {
		t.Fatalf("Verify with a short read = %v", err)
	}
	r.hole = -1
	if _, err := Verify(context.Background(), r, int64(len(data)), Policy{Method: MethodNone}); err != nil {
		t.Fatalf("Verify without a short read = %v", err)
	}
}

func TestVerifyProgressAndCancel(t *testing.T) {
	data := buildZip(t, updateEntries(entry{"big.bin", bytes.Repeat([]byte{1}, 3*passBuf)}), "")
	var last, calls int64
	_, err := verifyBytes(data, Policy{Method: MethodNone}, WithProgress(func(phase string, done, total int64) {
		if phase != "verify" || total != int64(len(data)) || done < last {
			t.Errorf("progress(%q, %d, %d) after %d", phase, done, total, last)
		}
		last = done
		calls++
	}))
	if err != nil || last != int64(len(data)) || calls < 1 {
		t.Fatalf("err %v, last %d of %d, %d calls", err, last, len(data), calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, bytes.NewReader(data), int64(len(data)), Policy{Method: MethodNone}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Verify: %v", err)
	}
}

func TestLoadCerts(t *testing.T) {
	rsa2048, ec256 := key(t, "rsa2048"), key(t, "ec256")
	dir := t.TempDir()
	ecPEM, _ := os.ReadFile(ec256.certPath)
	rsaPEM, _ := os.ReadFile(rsa2048.certPath)
	both := filepath.Join(dir, "both.pem")
	os.WriteFile(both, append(append([]byte("# comment\n"), rsaPEM...), ecPEM...), 0o600)
	der := filepath.Join(dir, "ec.der")
	os.WriteFile(der, ec256.cert.Raw, 0o600)
	otacerts := filepath.Join(dir, "otacerts.zip")
	os.WriteFile(otacerts, buildZip(t, []entry{{"releasekey.x509.pem", rsaPEM}, {"ec.x509.der", ec256.cert.Raw}, {"README", []byte("hi")}}, ""), 0o600)
	rsa1024, _ := os.ReadFile(key(t, "rsa1024").certPath)
	badOta := filepath.Join(dir, "bad-otacerts.zip")
	os.WriteFile(badOta, buildZip(t, []entry{{"releasekey.x509.pem", rsaPEM}, {"odd.x509.pem", rsa1024}}, ""), 0o600)
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n"), 0o600)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("garbage"), 0o600)

	tests := []struct {
		name    string
		paths   []string
		want    int
		wantErr error
	}{
		{"pem", []string{rsa2048.certPath}, 1, nil},
		{"pem bundle", []string{both}, 2, nil},
		{"der", []string{der}, 1, nil},
		{"otacerts.zip", []string{otacerts}, 2, nil},
		{"several", []string{otacerts, both}, 4, nil},
		{"no certificate", []string{empty}, 0, ErrNoCerts},
		{"missing file", []string{filepath.Join(dir, "nope")}, 0, os.ErrNotExist},
		{"garbage", []string{garbage}, 0, nil},
		{"ec p-384 refused", []string{key(t, "ec384").certPath}, 0, nil},
		{"rsa-1024 in otacerts refused", []string{badOta}, 0, nil},
		{"sha1 certificate", []string{key(t, "sha1cert").certPath}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := LoadCerts(tt.paths...)
			if tt.want == 0 {
				if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(certs) != tt.want {
				t.Fatalf("got %d certs, %v; want %d", len(certs), err, tt.want)
			}
		})
	}
}

func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	data := buildZip(t, updateEntries(), "")
	path := filepath.Join(dir, "update.zip")
	os.WriteFile(path, data, 0o600)
	rep, err := VerifyFile(context.Background(), path, Policy{Method: MethodSHA256}, WithSHA256(shaHex(data)))
	if err != nil || rep.Size != int64(len(data)) {
		t.Fatalf("VerifyFile = %+v, %v", rep, err)
	}
	if _, err := VerifyFile(context.Background(), dir, Policy{Method: MethodNone}); !errors.Is(err, ErrStructure) {
		t.Errorf("VerifyFile(dir) = %v", err)
	}
	if _, err := VerifyFile(context.Background(), filepath.Join(dir, "nope"), Policy{Method: MethodNone}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VerifyFile(missing) = %v", err)
	}
}
