package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// HTTP is the [http] table: the listener of the control page.
type HTTP struct {
	// Listen is host:port; the host is an IP address, "localhost", or
	// empty for every address; port 0 picks a free port.
	Listen string `toml:"listen" json:"listen"`
	// PasswordHash is an argon2id PHC string. Without it the agent listens
	// on loopback only.
	PasswordHash string `toml:"password_hash" json:"password_hash" secret:"true"`
	// Hosts are extra names the page is reached by (a DNS name of the
	// box); the Host header of every TCP request must be one of them,
	// localhost, the box's hostname or an IP address.
	Hosts []string `toml:"hosts,omitempty" json:"hosts,omitempty"`
}

// Validate checks the [http] table, including the daemon's rule that a
// listener reachable from the LAN needs a password, so `config check`
// reports it before the daemon refuses to start.
func (h HTTP) Validate() error {
	var errs []error
	loopback, err := parseListen(h.Listen)
	if err != nil {
		errs = append(errs, &FieldError{Key: "listen", Msg: err.Error()})
	} else if !loopback && h.PasswordHash == "" {
		errs = append(errs, FieldErrorf("listen", "refuse to listen on %q, reachable from the network, unless a password hash is configured (http.password_hash)", h.Listen))
	}
	if h.PasswordHash != "" {
		if err := checkPHC(h.PasswordHash); err != nil {
			errs = append(errs, &FieldError{Key: "password_hash", Msg: err.Error()})
		}
	}
	for i, h := range h.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ \t[]@") || strings.IndexFunc(h, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			errs = append(errs, FieldErrorf(fmt.Sprintf("hosts[%d]", i), "%q is not a host name (no port, scheme or spaces)", h))
		}
	}
	return errors.Join(errs...)
}

// ListenIsLoopback says whether http.listen is reachable only from this
// box. An empty host (every address) is not loopback.
func (c *Config) ListenIsLoopback() (bool, error) {
	return parseListen(c.HTTP.Listen)
}

// parseListen checks a listen address and says whether it is loopback.
func parseListen(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("cannot parse %q as host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return false, fmt.Errorf("cannot parse %q as host:port: port %q is not a number from 0 to 65535", addr, port)
	}
	switch host {
	case "":
		return false, nil
	case "localhost":
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, fmt.Errorf("cannot parse %q as host:port: host %q is not an IP address or localhost", addr, host)
	}
	return ip.IsLoopback(), nil
}

// Bounds of argon2id parameters we accept: enough to be a real hash,
// little enough that checking a password cannot exhaust a set-top box.
// The smallest boards in board/profiles (the EC6108V9C, the TV boxes)
// have 1 GiB of RAM, most of it the player's; the agent checks one
// password at a time, so a check costs at most 64 MiB (`boxagent config
// hash-password` makes m=65536,t=2,p=2) and, on a Cortex-A7, about a
// second of CPU.
const (
	MaxArgonMemoryKiB = 64 * 1024
	MaxArgonTime      = 8
	MaxArgonThreads   = 4
	minSaltLen        = 8
	minKeyLen         = 16
	maxKeyLen         = 64
)

// checkPHC checks an argon2id PHC string,
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<key> with unpadded base64, the
// form the daemon verifies. The message never repeats the value.
func checkPHC(s string) error {
	const form = "$argon2id$v=19$m=…,t=…,p=…$salt$hash"
	bad := func(why string) error {
		return fmt.Errorf("not an argon2id PHC string (%s): %s", form, why)
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
	case p < 1 || p > MaxArgonThreads:
		return bad(fmt.Sprintf("p=%d is out of range 1..%d", p, MaxArgonThreads))
	case m < 8*p || m > MaxArgonMemoryKiB:
		return bad(fmt.Sprintf("m=%d is out of range %d..%d (KiB: a check must fit a 1 GiB box)", m, 8*p, MaxArgonMemoryKiB))
	case t < 1 || t > MaxArgonTime:
		return bad(fmt.Sprintf("t=%d is out of range 1..%d", t, MaxArgonTime))
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen {
		return bad(fmt.Sprintf("the salt is not unpadded base64 of at least %d bytes", minSaltLen))
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return bad(fmt.Sprintf("the hash is not unpadded base64 of %d to %d bytes", minKeyLen, maxKeyLen))
	}
	return nil
}
