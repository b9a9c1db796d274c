package daemon

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime/debug"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
)

// verifyPassword checks pass against an argon2id hash in PHC form:
// $argon2id$v=19$m=65536,t=3,p=2$<salt b64>$<key b64>. A hash whose
// parameters exceed config's caps is never computed. The check's memory
// (m KiB) is handed back to the system right after, so a login does not
// leave the agent that much bigger.
func verifyPassword(phc, pass string) bool {
	p, err := parsePHC(phc)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(pass), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	ok := subtle.ConstantTimeCompare(key, p.key) == 1
	debug.FreeOSMemory()
	return ok
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
	if p.memory > config.MaxArgonMemoryKiB || p.time > config.MaxArgonTime || p.threads > config.MaxArgonThreads || p.time < 1 || p.threads < 1 {
		return p, fmt.Errorf("argon2id parameters %q exceed the caps", parts[3])
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("cannot decode the salt: %w", err)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return p, fmt.Errorf("cannot decode the key")
	}
	return p, nil
}

// HashPassword makes an argon2id PHC string for pass with the given salt;
// `boxagent` uses it to print a hash for the config file.
func HashPassword(pass string, salt []byte) string {
	return hashPasswordWith(pass, salt, 64*1024, 2, 2)
}

func hashPasswordWith(pass string, salt []byte, memory, time uint32, threads uint8) string {
	key := argon2.IDKey([]byte(pass), salt, time, memory, threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, time, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
