package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFingerprintResistsGuessing: a fingerprint was "sha256:" and 48 bits
// of the unsalted SHA-256 of the secret, so a 6-digit PIN fell to a search
// of its million values in 0.4 s. The search is run here as an attacker
// with the journal but not the box's key would run it, and finds nothing.
func TestFingerprintResistsGuessing(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadFingerprintKey(filepath.Join(dir, FingerprintKeyFile), true)
	if err != nil {
		t.Fatal(err)
	}
	SetFingerprintKey(key)
	fp := Fingerprint("493817")
	if !strings.HasPrefix(fp, "hmac-sha256:") || len(fp) != len("hmac-sha256:")+16 {
		t.Fatalf("Fingerprint = %q, want hmac-sha256: and 16 hex digits", fp)
	}
	_, digest, _ := strings.Cut(fp, ":")
	for pin := 0; pin < 1_000_000; pin++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "%06d", pin))
		if strings.HasPrefix(hex.EncodeToString(sum[:]), digest[:12]) {
			t.Fatalf("the PIN %06d found from its fingerprint %s without the key", pin, fp)
		}
	}

	// The key is the box's: 0600, made once, the same fingerprint after.
	fi, err := os.Stat(filepath.Join(dir, FingerprintKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := LoadFingerprintKey(filepath.Join(dir, FingerprintKeyFile), true)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("the key changed on the second load: %v", err)
	}
	SetFingerprintKey(again)
	if Fingerprint("493817") != fp {
		t.Error("the fingerprint changed with the same key")
	}
	other, _ := NewFingerprintKey()
	SetFingerprintKey(other)
	if Fingerprint("493817") == fp {
		t.Error("another box's key gives the same fingerprint")
	}
	if _, err := LoadFingerprintKey(filepath.Join(t.TempDir(), FingerprintKeyFile), false); !os.IsNotExist(err) {
		t.Errorf("loading a missing key without create: %v, want not exist", err)
	}
}
