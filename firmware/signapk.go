package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"github.com/boxagent/boxagent/internal/kernelhash"
	"github.com/smallstep/pkcs7"
)

// footerLen is the size of signapk's whole-file footer:
// [signature start u16le][0xFF 0xFF][comment size u16le].
const footerLen = 6

// wholeFile is a parsed signapk -w signature block.
type wholeFile struct {
	SignedLen   int64  // bytes [0, SignedLen) are signed
	CommentSize int    // the zip comment, footer included
	PKCS7       []byte // DER (or BER) PKCS#7 SignedData, detached
}

// parseFooter reads the whole-file signature block from tail, the last bytes
// of a file of the given size, with the checks recovery's verifier makes and
// in the same order, so that a truncated copy reads "footer is wrong" here
// as it will on the box.
func parseFooter(tail []byte, size int64) (wholeFile, error) {
	var wf wholeFile
	if len(tail) < footerLen {
		return wf, fmt.Errorf("%w: file too short", ErrFooter)
	}
	f := tail[len(tail)-footerLen:]
	if f[2] != 0xff || f[3] != 0xff {
		if n := len(tail); n >= eocdLen && bytes.Equal(tail[n-eocdLen:n-eocdLen+4], eocdMagic) && f[4] == 0 && f[5] == 0 {
			return wf, fmt.Errorf("%w: the zip has no comment (never signed, or re-zipped after signing)", ErrUnsigned)
		}
		return wf, fmt.Errorf("%w: no signapk footer (0xFFFF marker missing; unsigned or truncated)", ErrFooter)
	}
	sigStart := int(binary.LittleEndian.Uint16(f[0:]))
	wf.CommentSize = int(binary.LittleEndian.Uint16(f[4:]))
	if sigStart > wf.CommentSize {
		return wf, fmt.Errorf("%w: signature start %d is larger than comment size %d", ErrFooter, sigStart, wf.CommentSize)
	}
	if sigStart <= footerLen {
		return wf, fmt.Errorf("%w: signature start is in the footer", ErrFooter)
	}
	eocdSize := wf.CommentSize + eocdLen
	if eocdSize > len(tail) || int64(eocdSize) > size {
		return wf, fmt.Errorf("%w: comment size %d is larger than the file", ErrFooter, wf.CommentSize)
	}
	eocd := tail[len(tail)-eocdSize:]
	if !bytes.Equal(eocd[:4], eocdMagic) {
		return wf, fmt.Errorf("%w: signature length doesn't match EOCD marker", ErrFooter)
	}
	if bytes.Contains(eocd[4:], eocdMagic) {
		return wf, structErr("EOCD marker occurs after start of EOCD")
	}
	wf.SignedLen = size - int64(wf.CommentSize) - 2
	wf.PKCS7 = eocd[eocdSize-sigStart : eocdSize-footerLen]
	return wf, nil
}

// signerSig is SignerInfos[0] of a whole-file signature.
type signerSig struct {
	hash     crypto.Hash
	attrs    []byte // DER SET OF authenticated attributes, nil with -noattr
	msgDig   []byte // the messageDigest attribute, when attrs is set
	sig      []byte
	embedded *x509.Certificate // the signer's certificate carried in the PKCS#7, if any
}

var oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}

type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

func parseSigner(der []byte) (*signerSig, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse PKCS#7: %v", ErrSignature, err)
	}
	if len(p7.Signers) == 0 {
		return nil, fmt.Errorf("%w: PKCS#7 has no signer", ErrUnsigned)
	}
	si := p7.Signers[0]
	s := &signerSig{sig: si.EncryptedDigest, embedded: p7.GetOnlySigner()}
	switch alg := si.DigestAlgorithm.Algorithm; {
	case alg.Equal(pkcs7.OIDDigestAlgorithmSHA1):
		s.hash = crypto.SHA1
	case alg.Equal(pkcs7.OIDDigestAlgorithmSHA256):
		s.hash = crypto.SHA256
	default:
		return nil, fmt.Errorf("%w: unsupported digest algorithm %v (recovery takes SHA-1 and SHA-256)", ErrSignature, alg)
	}
	if len(si.AuthenticatedAttributes) > 0 {
		attrs := make([]attribute, len(si.AuthenticatedAttributes))
		for i, a := range si.AuthenticatedAttributes {
			attrs[i] = attribute{Type: a.Type, Value: a.Value}
			if a.Type.Equal(oidMessageDigest) {
				if _, err := asn1.Unmarshal(a.Value.Bytes, &s.msgDig); err != nil {
					return nil, fmt.Errorf("%w: bad messageDigest attribute: %v", ErrSignature, err)
				}
			}
		}
		if s.msgDig == nil {
			return nil, fmt.Errorf("%w: authenticated attributes without messageDigest", ErrSignature)
		}
		if s.attrs, err = asn1.MarshalWithParams(attrs, "set"); err != nil {
			return nil, fmt.Errorf("%w: cannot encode authenticated attributes: %v", ErrSignature, err)
		}
	}
	return s, nil
}

// signedDigest returns what the signature is over for a content digest
// made with hash h: the digest itself with -noattr, else the digest of the
// authenticated attributes, whose messageDigest must match.
func (s *signerSig) signedDigest(h crypto.Hash, digest []byte) ([]byte, error) {
	if s.attrs == nil {
		return digest, nil
	}
	if h != s.hash || subtle.ConstantTimeCompare(s.msgDig, digest) != 1 {
		return nil, fmt.Errorf("%w: failed to verify whole-file signature (message digest mismatch)", ErrSignature)
	}
	hh := h.New()
	hh.Write(s.attrs)
	return hh.Sum(nil), nil
}

// checkKey verifies the signature over signed with one public key.
func (s *signerSig) checkKey(pub crypto.PublicKey, h crypto.Hash, signed []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, h, signed, s.sig) == nil
	case *ecdsa.PublicKey:
		return h == crypto.SHA256 && ecdsa.VerifyASN1(k, signed, s.sig)
	}
	return false
}

// verify checks the signature against the configured certificates as
// recovery does: each certificate's own signature algorithm decides the
// digest (SHA-1 or SHA-256) of the signed bytes, whatever the PKCS#7 says,
// and the certificate inside the PKCS#7 is not trusted. That one is only
// used to tell a bad signature from a good signature by an unknown key.
// digest returns the digest of the signed bytes for a hash.
func (s *signerSig) verify(digest func(crypto.Hash) []byte, certs []*x509.Certificate) (*x509.Certificate, crypto.Hash, error) {
	var mismatch *x509.Certificate
	for _, c := range certs {
		h, err := certHash(c)
		if err != nil || digest(h) == nil {
			continue
		}
		signed, err := s.signedDigest(h, digest(h))
		if err != nil {
			continue
		}
		if s.checkKey(c.PublicKey, h, signed) {
			return c, h, nil
		}
		if h != s.hash && s.embedded != nil && sameKey(c, s.embedded) {
			mismatch = c
		}
	}
	if mismatch != nil {
		h, _ := certHash(mismatch)
		return nil, 0, fmt.Errorf("%w: failed to verify whole-file signature: the package was signed with %v, but recovery hashes with %v for certificate %q (its own signature algorithm)",
			ErrSignature, s.hash, h, mismatch.Subject.CommonName)
	}
	if e := s.embedded; e != nil && !slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return sameKey(c, e) }) {
		if d := digest(s.hash); d != nil {
			if signed, err := s.signedDigest(s.hash, d); err == nil && s.checkKey(e.PublicKey, s.hash, signed) {
				return nil, 0, fmt.Errorf("%w: %q (certificate SHA-256 %s) is not among the %d configured certificates",
					ErrUnknownSigner, e.Subject.CommonName, fingerprint(e), len(certs))
			}
		}
	}
	return nil, 0, fmt.Errorf("%w: failed to verify whole-file signature", ErrSignature)
}

// certHash is the digest recovery uses with a certificate, from the
// certificate's own signature algorithm (LoadCertificateFromBuffer in
// AOSP's verifier).
func certHash(c *x509.Certificate) (crypto.Hash, error) {
	switch c.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA:
		return crypto.SHA1, nil
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256:
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("certificate %q is signed with %v; recovery takes only sha1WithRSA, sha256WithRSA and ecdsa-with-SHA256 certificates",
		c.Subject.CommonName, c.SignatureAlgorithm)
}

// checkRecoveryCert refuses a certificate recovery would refuse to load:
// it would then verify nothing at all.
func checkRecoveryCert(c *x509.Certificate) error {
	if _, err := certHash(c); err != nil {
		return err
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits != 2048 && bits != 4096 {
			return fmt.Errorf("certificate %q has an RSA-%d key; recovery takes RSA-2048 and RSA-4096", c.Subject.CommonName, bits)
		}
		if k.E != 3 && k.E != 65537 {
			return fmt.Errorf("certificate %q has RSA exponent %d; recovery takes 3 and 65537", c.Subject.CommonName, k.E)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("certificate %q has an EC key on %s; recovery takes P-256", c.Subject.CommonName, k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("certificate %q has a %v key; recovery takes RSA and ECDSA P-256", c.Subject.CommonName, c.PublicKeyAlgorithm)
	}
	return nil
}

func sameKey(a, b *x509.Certificate) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.PublicKey.(equaler)
	return ok && e.Equal(b.PublicKey)
}

// fingerprint is the lowercase hex SHA-256 of a certificate's DER bytes.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// keyName describes a certificate's key for reports: "RSA-2048", "ECDSA-P256".
func keyName(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + k.Curve.Params().Name
	}
	return c.PublicKeyAlgorithm.String()
}

// signApkChecker checks an Android whole-file signature.
type signApkChecker struct {
	wf       wholeFile
	signer   *signerSig
	certs    []*x509.Certificate
	needSHA1 bool
}

// newSignApkChecker reads the footer and the PKCS#7 before anything else,
// in recovery's order, so that a truncated copy reads "footer is wrong"
// here as it will on the box.
func newSignApkChecker(r io.ReaderAt, size int64, p Policy) (*signApkChecker, error) {
	if err := checkHead(r, size); err != nil {
		return nil, err
	}
	tail, err := readTail(r, size, eocdLen+maxComment)
	if err != nil {
		return nil, err
	}
	c := &signApkChecker{certs: p.Certs}
	if c.wf, err = parseFooter(tail, size); err != nil {
		return nil, err
	}
	if c.signer, err = parseSigner(c.wf.PKCS7); err != nil {
		return nil, err
	}
	if c.signer.attrs != nil && !p.AllowSignedAttributes {
		return nil, fmt.Errorf("%w: the PKCS#7 has authenticated attributes, which recovery does not verify (sign with signapk -w, or openssl cms -noattr)", ErrSignature)
	}
	c.needSHA1 = c.signer.hash == crypto.SHA1 || slices.ContainsFunc(p.Certs, func(c *x509.Certificate) bool {
		h, _ := certHash(c)
		return h == crypto.SHA1
	})
	return c, nil
}

func (c *signApkChecker) plan(hp *hashPass) {
	hp.prefixLen = c.wf.SignedLen
	if c.needSHA1 {
		hp.prefix = kernelhash.New(crypto.SHA1)
	}
}

func (c *signApkChecker) verdict(hp *hashPass) (*Signer, error) {
	cert, h, err := c.signer.verify(hp.prefixSum, c.certs)
	if err != nil {
		return nil, err
	}
	return &Signer{Subject: cert.Subject.CommonName, Fingerprint: fingerprint(cert), Key: keyName(cert), Digest: h.String()}, nil
}
