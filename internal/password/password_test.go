package password

import (
	"strings"
	"testing"
)

// goodHash is a well-formed argon2id PHC string (salt "saltsalt", a
// made-up key).
const goodHash = "$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

func TestParse(t *testing.T) {
	tests := []struct {
		hash string
		want string // "" for valid
	}{
		{goodHash, ""},
		{"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ""},
		{"$argon2id$v=16$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", `version "v=16" is not v=19`},
		{"$argon2id$v=19$t=2,m=65536,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "want parameters m=…,t=…,p=…"},
		{"$argon2id$v=19$m=65536,t=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "want parameters m=…,t=…,p=…"},
		{"$argon2id$v=19$m=65536,t=2,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "p=0 is out of range 1..4"},
		{"$argon2id$v=19$m=65536,t=2,p=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "p=16 is out of range 1..4"},
		{"$argon2id$v=19$m=65536,t=64,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "t=64 is out of range 1..8"},
		{"$argon2id$v=19$m=8,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "m=8 is out of range 16..65536 (KiB: a check must fit a 1 GiB box)"},
		{"$argon2id$v=19$m=4194304,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "m=4194304 is out of range 16..65536 (KiB: a check must fit a 1 GiB box)"},
		// 1 GiB per check was accepted: 30 parallel logins killed a 1-2 GB box (issue 17).
		{"$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "m=1048576 is out of range 8..65536 (KiB: a check must fit a 1 GiB box)"},
		{"$argon2id$v=19$m=65536,t=2,p=2$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", "the salt is not unpadded base64 of at least 8 bytes"},
		{"$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA", "the salt is not unpadded base64 of at least 8 bytes"},
		{"$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaA", "the hash is not unpadded base64 of 16 to 64 bytes"},
		{"$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$", "want 5 fields, each after a '$'"},
		{"argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$", "want 5 fields, each after a '$'"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.hash)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Parse(%q) = %v", tt.hash, err)
			}
			continue
		}
		if err == nil || !strings.HasSuffix(err.Error(), "): "+tt.want) {
			t.Errorf("Parse(%q) = %v, want …%q", tt.hash, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.hash) {
			t.Errorf("Parse(%q) repeats the hash", tt.hash)
		}
	}
}

func TestVerifyAndSame(t *testing.T) {
	salt := []byte("saltsaltsalt")
	h := HashWith("correct horse", salt, 1024, 1, 1)
	tests := []struct {
		pass string
		want bool
	}{{"correct horse", true}, {"correct hors", false}, {"", false}}
	for _, tt := range tests {
		if got := Verify(h, tt.pass); got != tt.want {
			t.Errorf("Verify(%q) = %v", tt.pass, got)
		}
		if got := Same(h, tt.pass); got != tt.want {
			t.Errorf("Same(%q) = %v", tt.pass, got)
		}
	}
	// Over the caps: never computed, never true.
	big := HashWith("x", salt, MaxMemoryKiB*2, 1, 1)
	if Verify(big, "x") {
		t.Error("a hash over the memory cap verified")
	}
	if Hash("x", salt) == HashWith("x", salt, 1024, 1, 1) {
		t.Error("Hash uses the cheap parameters")
	}
}
