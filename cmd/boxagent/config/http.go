package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/internal/password"
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
		if _, err := password.Parse(h.PasswordHash); err != nil {
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
