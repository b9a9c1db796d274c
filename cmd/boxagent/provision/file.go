// Package provision applies provision.toml, the one file that prepares a
// box: hostname, board, timezone, the page's password, SSH keys, Wi-Fi
// networks, uplinks, headsets and firmware keys. It runs in-process, with
// no daemon, two ways: offline at flash time into a mounted root
// filesystem (`boxagent provision --root DIR`), and at first boot from the
// FAT boot partition (`boxagent provision --first-boot`), where a
// cloud-init NoCloud network-config is read too.
//
// The file is validated whole before anything is written. Everything the
// agent reads (board, [http], Wi-Fi networks as [[wifi.network]], uplinks
// with their MACs as [[network.uplink]], headsets as [[bluetooth.headset]],
// firmware keys as [firmware] keys) goes into /etc/boxagent/config.toml and
// is checked there by the domains' own rules, so a provisioned box
// auto-connects its headset and trusts its release keys from its first
// start.
//
// Every file below the target root is reached through an os.Root, so a
// symlink in the image (absolute ones point at the host at flash time)
// never makes provisioning write outside it.
package provision

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// File is provision.toml.
type File struct {
	Hostname string `toml:"hostname,omitempty" json:"hostname,omitempty"`
	// Board is "auto" or a board profile id; "" means auto.
	Board    string `toml:"board,omitempty" json:"board,omitempty"`
	Timezone string `toml:"timezone,omitempty" json:"timezone,omitempty"` // "Europe/Berlin"
	// SSHAuthorizedKeys go to root's authorized_keys (the agent's own
	// user has no shell).
	SSHAuthorizedKeys []string  `toml:"ssh_authorized_keys,omitempty" json:"ssh_authorized_keys,omitempty"`
	HTTP              HTTP      `toml:"http,omitempty" json:"http,omitzero"`
	Network           Network   `toml:"network,omitempty" json:"network,omitzero"`
	Bluetooth         Bluetooth `toml:"bluetooth,omitempty" json:"bluetooth,omitzero"`
	Firmware          Firmware  `toml:"firmware,omitempty" json:"firmware,omitzero"`
}

// HTTP is the page's listener and password. Password, in clear, is hashed
// with argon2id when applied and never written; give it or PasswordHash.
type HTTP struct {
	Listen       string `toml:"listen,omitempty" json:"listen,omitempty"`
	PasswordHash string `toml:"password_hash,omitempty" json:"password_hash,omitempty" secret:"true"`
	Password     string `toml:"password,omitempty" json:"password,omitempty" secret:"true"`
}

// Network holds the [[network.wifi]] and [[network.uplink]] tables.
type Network struct {
	WiFi   []WiFi   `toml:"wifi,omitempty" json:"wifi,omitempty"`
	Uplink []Uplink `toml:"uplink,omitempty" json:"uplink,omitempty"`
}

// WiFi is one network to join. An empty PSK is an open network.
type WiFi struct {
	SSID     string `toml:"ssid" json:"ssid"`
	PSK      string `toml:"psk,omitempty" json:"psk,omitempty" secret:"true"`
	Priority int    `toml:"priority,omitempty" json:"priority,omitempty"`
	Hidden   bool   `toml:"hidden,omitempty" json:"hidden,omitempty"`
}

// Uplink is one wired uplink: a link, or a VLAN on a parent link.
type Uplink struct {
	Name     string `toml:"name" json:"name"`
	Parent   string `toml:"parent,omitempty" json:"parent,omitempty"`
	VLAN     int    `toml:"vlan,omitempty" json:"vlan,omitempty"` // 0: untagged
	Priority int    `toml:"priority,omitempty" json:"priority,omitempty"`
	MAC      string `toml:"mac,omitempty" json:"mac,omitempty"` // address to set on the link
	IPv4     IPv4   `toml:"ipv4,omitempty" json:"ipv4,omitzero"`
	PPPoE    PPPoE  `toml:"pppoe,omitempty" json:"pppoe,omitzero"`
}

// IPv4 is an uplink's addressing.
type IPv4 struct {
	Method      string   `toml:"method,omitempty" json:"method,omitempty"`   // dhcp (default), static, pppoe, none
	Address     string   `toml:"address,omitempty" json:"address,omitempty"` // static: 192.0.2.10/24
	Gateway     string   `toml:"gateway,omitempty" json:"gateway,omitempty"`
	DNS         []string `toml:"dns,omitempty" json:"dns,omitempty"`
	VendorClass string   `toml:"vendor_class,omitempty" json:"vendor_class,omitempty"` // DHCP option 60
	ClientID    string   `toml:"client_id,omitempty" json:"client_id,omitempty"`       // option 61: "mac" or a string
	// RouteMetric and DefaultRoute are [network.uplink.ipv4]'s: two
	// uplinks with a default route need two metrics.
	RouteMetric  int   `toml:"route_metric,omitempty" json:"route_metric,omitempty"`
	DefaultRoute *bool `toml:"default_route,omitempty" json:"default_route,omitempty"`
}

// PPPoE are the credentials of method = "pppoe".
type PPPoE struct {
	Username string `toml:"username,omitempty" json:"username,omitempty"`
	Password string `toml:"password,omitempty" json:"password,omitempty" secret:"true"`
}

// Bluetooth holds the [[bluetooth.headset]] tables.
type Bluetooth struct {
	Headset []Headset `toml:"headset,omitempty" json:"headset,omitempty"`
}

// Headset is a known headset.
type Headset struct {
	Address     string `toml:"address" json:"address"`
	Name        string `toml:"name,omitempty" json:"name,omitempty"`
	AutoConnect bool   `toml:"auto_connect,omitempty" json:"auto_connect,omitempty"`
	Mode        string `toml:"mode,omitempty" json:"mode,omitempty"` // music (A2DP) | call (HFP/HSP)
}

// Firmware is [firmware]: Keys are absolute paths of certificates on the
// box, or PEM certificates inline, which are installed under
// /etc/boxagent/keys/.
type Firmware struct {
	Keys []string `toml:"keys,omitempty" json:"keys,omitempty"`
}

// MinPassword is the shortest page password accepted in clear.
const MinPassword = 8

// Error is one problem of a provision file, at a key.
type Error struct {
	File string
	Line int
	Key  string // "network.wifi[0].psk"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrInvalid is matched by errors.Is for any problem of the file.
var ErrInvalid = errors.New("invalid provision file")

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Parse decodes and validates provision.toml; every problem is reported,
// each an *Error, joined.
func Parse(name string, data []byte) (*File, error) {
	var f File
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if sme, ok := errors.AsType[*toml.StrictMissingError](err); ok {
			var errs []error
			for _, de := range sme.Errors {
				line, _ := de.Position()
				errs = append(errs, &Error{File: name, Line: line, Key: strings.Join(de.Key(), "."), Msg: "unknown key"})
			}
			return nil, errors.Join(errs...)
		}
		if de, ok := errors.AsType[*toml.DecodeError](err); ok {
			line, _ := de.Position()
			return nil, &Error{File: name, Line: line, Key: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
		}
		return nil, &Error{File: name, Msg: err.Error()}
	}
	if err := f.Validate(name); err != nil {
		return nil, err
	}
	return &f, nil
}

var (
	hostLabel   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
	profileID   = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)
	zoneName    = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)
	sshKeyTypes = []string{"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"}
)

// Validate checks every field that needs no target root; name is used in
// errors. Board ids and timezones are checked against the root by Apply.
func (f *File) Validate(name string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: name, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if f.Hostname != "" && !validHostname(f.Hostname) {
		bad("hostname", "%q is not a host name (letters, digits and '-', labels of 1 to 63, 253 in all)", f.Hostname)
	}
	if f.Board != "" && f.Board != "auto" && !profileID.MatchString(f.Board) {
		bad("board", "%q is neither \"auto\" nor a profile id", f.Board)
	}
	if f.Timezone != "" && (!zoneName.MatchString(f.Timezone) || strings.Contains(f.Timezone, "..")) {
		bad("timezone", "%q is not a zone name like Europe/Berlin", f.Timezone)
	}
	for i, k := range f.SSHAuthorizedKeys {
		if err := checkSSHKey(k); err != nil {
			bad(fmt.Sprintf("ssh_authorized_keys[%d]", i), "%v", err)
		}
	}
	switch {
	case f.HTTP.Password != "" && f.HTTP.PasswordHash != "":
		bad("http.password", "give password or password_hash, not both")
	case f.HTTP.Password != "" && len([]rune(f.HTTP.Password)) < MinPassword:
		bad("http.password", "too short: at least %d characters", MinPassword)
	}
	f.Network.validate(bad)
	for i, h := range f.Bluetooth.Headset {
		key := fmt.Sprintf("bluetooth.headset[%d]", i)
		if !validMAC(h.Address) {
			bad(key+".address", "%q is not a Bluetooth address like 00:1B:66:AA:BB:CC", h.Address)
		}
		if h.Mode != "" && h.Mode != "music" && h.Mode != "call" {
			bad(key+".mode", "%q is not music (A2DP) or call (HFP/HSP)", h.Mode)
		}
		for _, o := range f.Bluetooth.Headset[:i] {
			if strings.EqualFold(o.Address, h.Address) {
				bad(key+".address", "%s is listed twice", h.Address)
			}
		}
	}
	for i, k := range f.Firmware.Keys {
		if err := checkKey(k); err != nil {
			bad(fmt.Sprintf("firmware.keys[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

func (n Network) validate(bad func(key, format string, args ...any)) {
	for i, w := range n.WiFi {
		key := fmt.Sprintf("network.wifi[%d]", i)
		if len(w.SSID) == 0 || len(w.SSID) > 32 {
			bad(key+".ssid", "%d bytes: an SSID has 1 to 32", len(w.SSID))
		}
		if w.PSK != "" && !validPSK(w.PSK) {
			bad(key+".psk", "a WPA passphrase has 8 to 63 printable ASCII characters, or is 64 hex digits")
		}
		for _, o := range n.WiFi[:i] {
			if o.SSID == w.SSID {
				bad(key+".ssid", "%q is listed twice", w.SSID)
			}
		}
	}
	for i, u := range n.Uplink {
		key := fmt.Sprintf("network.uplink[%d]", i)
		if !validIfname(u.Name) {
			bad(key+".name", "%q is not an interface name (1 to 15 bytes, no '/', ':' or spaces)", u.Name)
		}
		if u.Parent != "" && !validIfname(u.Parent) {
			bad(key+".parent", "%q is not an interface name", u.Parent)
		}
		if u.VLAN != 0 && (u.VLAN < 1 || u.VLAN > 4094) {
			bad(key+".vlan", "%d is out of range 1..4094", u.VLAN)
		}
		if u.VLAN != 0 && u.Parent == "" {
			bad(key+".parent", "a VLAN needs the parent link it is tagged on")
		}
		if u.MAC != "" && !validMAC(u.MAC) {
			bad(key+".mac", "%q is not a MAC address like 02:00:00:aa:bb:cc", u.MAC)
		}
		for _, o := range n.Uplink[:i] {
			if o.Name == u.Name {
				bad(key+".name", "%q is listed twice", u.Name)
			}
		}
		v4 := u.IPv4
		switch v4.Method {
		case "", "dhcp", "none":
		case "static":
			if p, err := netip.ParsePrefix(v4.Address); err != nil || !p.Addr().Is4() {
				bad(key+".ipv4.address", "%q is not an IPv4 address with a prefix length, like 192.0.2.10/24", v4.Address)
			}
		case "pppoe":
			if u.PPPoE.Username == "" {
				bad(key+".pppoe.username", "missing: method pppoe needs it")
			}
		default:
			bad(key+".ipv4.method", "%q is not dhcp, static, pppoe or none", v4.Method)
		}
		if v4.Method != "static" && v4.Address != "" {
			bad(key+".ipv4.address", "only method static takes an address")
		}
		if v4.Gateway != "" {
			if a, err := netip.ParseAddr(v4.Gateway); err != nil || !a.Is4() {
				bad(key+".ipv4.gateway", "%q is not an IPv4 address", v4.Gateway)
			}
		}
		for j, d := range v4.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				bad(fmt.Sprintf("%s.ipv4.dns[%d]", key, j), "%q is not an IP address", d)
			}
		}
		if len(v4.VendorClass) > 255 || len(v4.ClientID) > 255 {
			bad(key+".ipv4", "vendor_class and client_id are DHCP options of at most 255 bytes")
		}
		if (u.PPPoE.Username != "" || u.PPPoE.Password != "") && v4.Method != "pppoe" {
			bad(key+".pppoe", "only method pppoe takes credentials")
		}
	}
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// validIfname follows the kernel's dev_valid_name.
func validIfname(s string) bool {
	if len(s) == 0 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\r\v\f")
}

// validMAC accepts a 48-bit address written aa:bb:cc:dd:ee:ff.
func validMAC(s string) bool {
	hw, err := net.ParseMAC(s)
	return err == nil && len(hw) == 6 && len(s) == 17 && s[2] == ':'
}

// validPSK is a WPA passphrase (8 to 63 printable ASCII characters) or a
// raw 256-bit key in hex.
func validPSK(s string) bool {
	if len(s) == 64 {
		_, err := hex.DecodeString(s)
		return err == nil
	}
	if len(s) < 8 || len(s) > 63 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// checkSSHKey checks an authorized_keys line: a known key type, base64 of
// a blob that names the same type, an optional comment. Options before
// the type are refused: they belong to whoever edits the file by hand.
func checkSSHKey(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || !slices.Contains(sshKeyTypes, f[0]) {
		return fmt.Errorf("not a public key line starting with a key type (%s)", strings.Join(sshKeyTypes[:3], ", "))
	}
	if strings.ContainsAny(line, "\n\r") {
		return errors.New("one key per entry")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return fmt.Errorf("the %s key is not base64", f[0])
	}
	n := int(blob[0])<<24 | int(blob[1])<<16 | int(blob[2])<<8 | int(blob[3])
	if n != len(f[0]) || len(blob) < 4+n || string(blob[4:4+n]) != f[0] {
		return fmt.Errorf("the key's data is not a %s key", f[0])
	}
	return nil
}

// checkKey checks a firmware key: an absolute path, or inline PEM
// certificates.
func checkKey(k string) error {
	if strings.HasPrefix(k, "/") {
		if strings.ContainsAny(k, "\n\x00") || k != path.Clean(k) {
			return fmt.Errorf("%q is not a clean absolute path", k)
		}
		return nil
	}
	if !strings.Contains(k, "-----BEGIN CERTIFICATE-----") {
		return errors.New("neither an absolute path nor an inline PEM certificate")
	}
	rest := []byte(k)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q is not a CERTIFICATE", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("cannot parse the certificate: %v", err)
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(rest)) != "" {
		return errors.New("the inline PEM is not only certificates")
	}
	return nil
}
