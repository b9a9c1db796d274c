// Package password makes and checks the page's password hashes: argon2id
// in PHC form, $argon2id$v=19$m=65536,t=2,p=2$<salt>$<key> with unpadded
// base64. The config checks a hash with Parse, the daemon checks a login
// with Verify, and `boxagent config hash-password` and provisioning make
// one with Hash: one parser, one set of caps.
package password

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Bounds of argon2id parameters we accept: enough to be a real hash,
// little enough that checking a password cannot exhaust a set-top box.
// The smallest boards in board/profiles (the EC6108V9C, the TV boxes)
// have 1 GiB of RAM, most of it the player's; the agent checks one
// password at a time, so a check costs at most 64 MiB (Hash makes
// m=65536,t=2,p=2) and, on a Cortex-A7, about a second of CPU.
const (
	MaxMemoryKiB = 64 * 1024
	MaxTime      = 8
	MaxThreads   = 4
	minSaltLen   = 8
	minKeyLen    = 16
	maxKeyLen    = 64
)

// Hashed is a parsed PHC string.
type Hashed struct {
	Memory, Time uint32
	Threads      uint8
	Salt, Key    []byte
}

// Hash makes an argon2id PHC string for pass with the given salt, with
// the parameters the agent recommends.
func Hash(pass string, salt []byte) string {
	return HashWith(pass, salt, 64*1024, 2, 2)
}

// HashWith makes an argon2id PHC string with the given parameters (memory
// in KiB): the daemon's generated password uses a cheap one, its value
// being random.
func HashWith(pass string, salt []byte, memory, time uint32, threads uint8) string {
	key := argon2.IDKey([]byte(pass), salt, time, memory, threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, time, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Parse checks an argon2id PHC string and its parameters against the
// caps. The error says what is wrong and never repeats the value.
func Parse(s string) (Hashed, error) {
	const form = "$argon2id$v=19$m=…,t=…,p=…$salt$hash"
	var h Hashed
	bad := func(why string) (Hashed, error) {
		return h, fmt.Errorf("not an argon2id PHC string (%s): %s", form, why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want 5 fields, each after a '$'")
	}
	if parts[1] != "argon2id" {
		return bad(fmt.Sprintf("algorithm %q is not argon2id", parts[1]))
	}
	if parts[2] != "v=19" {
		return bad(fmt.Sprintf("version %q is not v=19", parts[2]))
	}
	params := strings.Split(parts[3], ",")
	var m, t, p uint64
	want := []struct {
		name string
		v    *uint64
	}{{"m", &m}, {"t", &t}, {"p", &p}}
	if len(params) != len(want) {
		return bad("want parameters m=…,t=…,p=…")
	}
	for i, w := range want {
		val, ok := strings.CutPrefix(params[i], w.name+"=")
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || err != nil {
			return bad("want parameters m=…,t=…,p=…")
		}
		*w.v = n
	}
	switch {
	case p < 1 || p > MaxThreads:
		return bad(fmt.Sprintf("p=%d is out of range 1..%d", p, MaxThreads))
	case m < 8*p || m > MaxMemoryKiB:
		return bad(fmt.Sprintf("m=%d is out of range %d..%d (KiB: a check must fit a 1 GiB box)", m, 8*p, MaxMemoryKiB))
	case t < 1 || t > MaxTime:
		return bad(fmt.Sprintf("t=%d is out of range 1..%d", t, MaxTime))
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen {
		return bad(fmt.Sprintf("the salt is not unpadded base64 of at least %d bytes", minSaltLen))
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return bad(fmt.Sprintf("the hash is not unpadded base64 of %d to %d bytes", minKeyLen, maxKeyLen))
	}
	return Hashed{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), Salt: salt, Key: key}, nil
}

// Verify checks pass against a PHC string. A hash Parse refuses is never
// computed. The check's memory (m KiB) is handed back to the system right
// after, so a login does not leave the agent that much bigger.
func Verify(phc, pass string) bool {
	h, err := Parse(phc)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(pass), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
	ok := subtle.ConstantTimeCompare(key, h.Key) == 1
	debug.FreeOSMemory()
	return ok
}

// Same says whether phc is pass hashed with phc's own salt and
// parameters: provisioning keeps a hash when run twice with the same
// password.
func Same(phc, pass string) bool {
	h, err := Parse(phc)
	return err == nil && HashWith(pass, h.Salt, h.Memory, h.Time, h.Threads) == phc
}
