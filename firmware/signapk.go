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
// of a file of the given size, with the checks recovery's verifier makes.
// zipComment is the comment length of the zip's EOCD record (0 when the
// package has no comment at all, the sign of a re-zipped package).
func parseFooter(tail []byte, size int64, zipComment int) (wholeFile, error) {
	var wf wholeFile
	if zipComment == 0 {
		return wf, fmt.Errorf("%w: the zip has no comment (never signed, or re-zipped after signing)", ErrUnsigned)
	}
	if len(tail) < footerLen {
		return wf, fmt.Errorf("%w: file too short", ErrFooter)
	}
	f := tail[len(tail)-footerLen:]
	if f[2] != 0xff || f[3] != 0xff {
		return wf, fmt.Errorf("%w: no signapk footer (0xFFFF marker missing)", ErrFooter)
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

// signedDigest returns what the signature is over for a content digest:
// the digest itself with -noattr, else the digest of the attributes.
func (s *signerSig) signedDigest(digest []byte) ([]byte, error) {
	if s.attrs == nil {
		return digest, nil
	}
	if subtle.ConstantTimeCompare(s.msgDig, digest) != 1 {
		return nil, fmt.Errorf("%w: failed to verify whole-file signature (message digest mismatch)", ErrSignature)
	}
	h := s.hash.New()
	h.Write(s.attrs)
	return h.Sum(nil), nil
}

// checkKey verifies the signature over signed with one public key.
func (s *signerSig) checkKey(pub crypto.PublicKey, signed []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048 && rsa.VerifyPKCS1v15(k, s.hash, signed, s.sig) == nil
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() && ecdsa.VerifyASN1(k, signed, s.sig)
	}
	return false
}

// verify checks the signature against the configured certificates, as
// recovery does: the certificate inside the PKCS#7 is not trusted, only
// used to tell a bad signature from a good signature by an unknown key.
func (s *signerSig) verify(digest []byte, certs []*x509.Certificate) (*x509.Certificate, error) {
	signed, err := s.signedDigest(digest)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if s.checkKey(c.PublicKey, signed) {
			return c, nil
		}
	}
	if e := s.embedded; e != nil && !configured(e, certs) && s.checkKey(e.PublicKey, signed) {
		return nil, fmt.Errorf("%w: signed by %q (certificate SHA-256 %s), which is not among the %d configured certificates",
			ErrUnknownSigner, e.Subject.CommonName, fingerprint(e), len(certs))
	}
	return nil, fmt.Errorf("%w: failed to verify whole-file signature", ErrSignature)
}

func configured(c *x509.Certificate, certs []*x509.Certificate) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, k := range certs {
		if e, ok := k.PublicKey.(equaler); ok && e.Equal(c.PublicKey) {
			return true
		}
	}
	return false
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
