package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// FingerprintKeyFile is the box's fingerprint key in its state folder
// (/var/lib/boxagent): 32 random bytes, mode 0600, made at first use.
const FingerprintKeyFile = "fingerprint.key"

// fingerprintKeySize is the key's length in bytes.
const fingerprintKeySize = 32

var fpKey struct {
	sync.RWMutex
	key       []byte
	ephemeral sync.Once
}

// SetFingerprintKey sets the key Fingerprint uses from now on, in this
// process: the box's, so that a fingerprint stays the same across restarts
// and tells nothing to whoever lacks the key.
func SetFingerprintKey(key []byte) {
	fpKey.Lock()
	defer fpKey.Unlock()
	fpKey.key = append([]byte(nil), key...)
}

func fingerprintKey() []byte {
	fpKey.ephemeral.Do(func() {
		fpKey.Lock()
		defer fpKey.Unlock()
		if fpKey.key == nil {
			// No box key (config check as a user, a dry run): a key of
			// this process only. Fingerprints then differ from the
			// agent's, but are never an unkeyed hash of the secret.
			k := make([]byte, fingerprintKeySize)
			if _, err := rand.Read(k); err != nil {
				panic("config: no randomness for the fingerprint key: " + err.Error())
			}
			fpKey.key = k
		}
	})
	fpKey.RLock()
	defer fpKey.RUnlock()
	return fpKey.key
}

// Fingerprint stands for a secret in snapshots, the journal and the
// history: "hmac-sha256:" and the first 16 hex digits of the HMAC-SHA-256
// of the secret under the box's key (SetFingerprintKey), enough to tell
// that it changed and, without the key, no way to test guesses against it
// (an unsalted SHA-256 cut to 48 bits gave a 6-digit PIN away in 0.4 s).
// Journals written before keep their "sha256:" fingerprints. "" stays "".
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	mac := hmac.New(sha256.New, fingerprintKey())
	mac.Write([]byte(secret))
	return "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))[:16]
}

// ParseFingerprintKey checks a key file's content.
func ParseFingerprintKey(data []byte) ([]byte, error) {
	if len(data) != fingerprintKeySize {
		return nil, fmt.Errorf("the fingerprint key is %d bytes, want %d", len(data), fingerprintKeySize)
	}
	return data, nil
}

// NewFingerprintKey makes a random key.
func NewFingerprintKey() ([]byte, error) {
	k := make([]byte, fingerprintKeySize)
	_, err := rand.Read(k)
	return k, err
}

// LoadFingerprintKey reads the key at path, making it first (0600,
// atomically: never a half-written key) when create is set and it is
// missing. Without create, a missing key is fs.ErrNotExist.
func LoadFingerprintKey(path string, create bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return ParseFingerprintKey(data)
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return nil, err
	}
	k, err := NewFingerprintKey()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, k, 0o600, atomicfile.Options{}); err != nil {
		return nil, fmt.Errorf("cannot make the fingerprint key: %w", err)
	}
	return k, nil
}
