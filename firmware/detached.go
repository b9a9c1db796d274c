package firmware

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"aead.dev/minisign"
)

// minisignChecker checks a detached minisign signature. Only prehashed
// signatures (minisign -H, the default since minisign 0.10) can be checked
// without holding the whole file in memory.
type minisignChecker struct {
	keys []minisign.PublicKey
	text []byte
	sig  minisign.Signature
	w    *minisignWriter
}

func newMinisignChecker(keys []minisign.PublicKey, text []byte) (*minisignChecker, error) {
	c := &minisignChecker{keys: keys, text: text}
	if err := c.sig.UnmarshalText(text); err != nil {
		return nil, fmt.Errorf("%w: cannot parse minisign signature: %v", ErrSignature, err)
	}
	if c.sig.Algorithm != minisign.HashEdDSA {
		return nil, fmt.Errorf("%w: legacy (not prehashed) minisign signature; sign with minisign -H", ErrSignature)
	}
	return c, nil
}

func (c *minisignChecker) plan(hp *hashPass) {
	c.w = newMinisignWriter()
	hp.whole = append(hp.whole, c.w)
}

func (c *minisignChecker) verdict(*hashPass) (*Signer, error) {
	for _, k := range c.keys {
		if k.ID() != c.sig.KeyID {
			continue
		}
		if !c.w.r.Verify(k, c.text) {
			return nil, fmt.Errorf("%w: minisign signature does not match", ErrSignature)
		}
		kb, _ := k.MarshalText()
		fp := sha256.Sum256(kb[bytes.LastIndexByte(kb, '\n')+1:]) // the key line, not its comment
		return &Signer{Subject: c.sig.TrustedComment, Fingerprint: hex.EncodeToString(fp[:]),
			Key: fmt.Sprintf("minisign:%X", k.ID())}, nil
	}
	return nil, fmt.Errorf("%w: minisign key id %X is not configured", ErrUnknownSigner, c.sig.KeyID)
}

// ed25519Checker checks a detached Ed25519ph signature (RFC 8032: Ed25519
// over the SHA-512 of the file), which, unlike pure Ed25519, can be checked
// while streaming.
type ed25519Checker struct {
	keys []ed25519.PublicKey
	sig  []byte
	h    hash.Hash
}

func (c *ed25519Checker) plan(hp *hashPass) {
	c.h = sha512.New()
	hp.whole = append(hp.whole, c.h)
}

func (c *ed25519Checker) verdict(*hashPass) (*Signer, error) {
	digest := c.h.Sum(nil)
	for _, k := range c.keys {
		if ed25519.VerifyWithOptions(k, digest, c.sig, &ed25519.Options{Hash: crypto.SHA512}) == nil {
			fp := sha256.Sum256(k)
			return &Signer{Fingerprint: hex.EncodeToString(fp[:]), Key: "Ed25519"}, nil
		}
	}
	return nil, fmt.Errorf("%w: no configured ed25519 key verifies the signature", ErrSignature)
}

// minisignWriter adapts minisign's hashing Reader (the only streaming API
// the package has) to a hash.Hash sink of the pass.
type minisignWriter struct {
	src chunk
	r   *minisign.Reader
	tmp []byte
}

type chunk struct{ b []byte }

func (c *chunk) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.b)
	c.b = c.b[n:]
	return n, nil
}

func newMinisignWriter() *minisignWriter {
	w := &minisignWriter{tmp: make([]byte, 64<<10)}
	w.r = minisign.NewReader(&w.src)
	return w
}

func (w *minisignWriter) Write(p []byte) (int, error) {
	w.src.b = p
	for len(w.src.b) > 0 {
		if _, err := w.r.Read(w.tmp); err != nil {
			break
		}
	}
	return len(p), nil
}

// The rest of hash.Hash is never used on this sink.
func (w *minisignWriter) Sum(b []byte) []byte { return b }
func (w *minisignWriter) Reset()              {}
func (w *minisignWriter) Size() int           { return 0 }
func (w *minisignWriter) BlockSize() int      { return 1 }
