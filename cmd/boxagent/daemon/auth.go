package daemon

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// verifyPassword checks pass against an argon2id hash in PHC form:
// $argon2id$v=19$m=65536,t=3,p=2$<salt b64>$<key b64>.
func verifyPassword(phc, pass string) bool {
	p, err := parsePHC(phc)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(pass), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(s string) (phc, error) {
	var p phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return p, fmt.Errorf("not an argon2id v=19 hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, fmt.Errorf("cannot parse argon2id parameters %q", parts[3])
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("cannot decode the salt: %w", err)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 {
		return p, fmt.Errorf("cannot decode the key")
	}
	return p, nil
}

// HashPassword makes an argon2id PHC string for pass with the given salt;
// `boxagent` uses it to print a hash for the config file.
func HashPassword(pass string, salt []byte) string {
	const memory, time, threads = 64 * 1024, 2, 2
	key := argon2.IDKey([]byte(pass), salt, time, memory, threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, time, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
