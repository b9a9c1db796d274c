package firmware

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"aead.dev/minisign"
)

// NewPolicy builds the policy a board profile describes: its verify method
// ("signapk", "sha256", "minisign", "ed25519", "none"), the key files for
// that method, and the zip entries a package must hold. Key files are
// certificates for signapk (LoadCerts), minisign public keys for minisign,
// and Ed25519 public keys for ed25519 (LoadEd25519Keys).
func NewPolicy(method string, keyPaths, required []string) (Policy, error) {
	p := Policy{Method: Method(method), RequiredEntries: required}
	var err error
	switch p.Method {
	case MethodSignApk:
		p.Certs, err = LoadCerts(keyPaths...)
	case MethodMinisign:
		p.MinisignKeys, err = LoadMinisignKeys(keyPaths...)
	case MethodEd25519:
		p.Ed25519Keys, err = LoadEd25519Keys(keyPaths...)
	case MethodSHA256, MethodNone:
		if len(keyPaths) > 0 {
			err = fmt.Errorf("%w: method %s takes no keys", ErrPolicy, method)
		}
	default:
		err = fmt.Errorf("%w: unknown method %q", ErrPolicy, method)
	}
	if err != nil {
		return Policy{}, err
	}
	return p, p.check(&options{sha256: make([]byte, 32), signature: make([]byte, ed25519.SignatureSize)})
}

// LoadMinisignKeys reads minisign public key files (minisign.pub).
func LoadMinisignKeys(paths ...string) ([]minisign.PublicKey, error) {
	var keys []minisign.PublicKey
	for _, path := range paths {
		data, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		var k minisign.PublicKey
		if err := k.UnmarshalText(data); err != nil {
			return nil, fmt.Errorf("cannot load minisign key from %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// LoadEd25519Keys reads Ed25519 public keys: PEM "PUBLIC KEY" (what
// openssl pkey -pubout writes), 32 raw bytes, or those 32 bytes in base64.
func LoadEd25519Keys(paths ...string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, path := range paths {
		data, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		k, err := parseEd25519(data)
		if err != nil {
			return nil, fmt.Errorf("cannot load ed25519 key from %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseEd25519(data []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("not an ed25519 key (%T)", pub)
		}
		return k, nil
	}
	if len(data) == ed25519.PublicKeySize {
		return ed25519.PublicKey(data), nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("neither PEM, nor %d raw or base64 bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}
