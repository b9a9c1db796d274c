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
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/internal/errlist"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
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

var sshKeyTypes = []string{"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"}

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
	if f.Board != "" && f.Board != "auto" && !board.ValidID(f.Board) {
		bad("board", "%q is neither \"auto\" nor a profile id", f.Board)
	}
	if f.Timezone != "" && (!validZone(f.Timezone) || strings.Contains(f.Timezone, "..")) {
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
	f.Bluetooth.validate(bad)
	for i, k := range f.Firmware.Keys {
		if err := checkKey(k); err != nil {
			bad(fmt.Sprintf("firmware.keys[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}

// validate checks the Wi-Fi networks and uplinks by the network domain's
// own rules (those the agent applies to config.toml), naming provision.toml's
// keys; only the method "none" and the [pppoe] table are provision.toml's.
func (n Network) validate(bad func(key, format string, args ...any)) {
	var section wifi.Config
	for _, w := range n.WiFi {
		section.Networks = append(section.Networks, w.config())
	}
	domainProblems(section.ValidateAll(), "network[", "network.wifi[", nil, bad)
	var uplinks network.Config
	for i, u := range n.Uplink {
		switch u.IPv4.Method {
		case "", "dhcp", "static", "pppoe", "none":
		default:
			bad(fmt.Sprintf("network.uplink[%d].ipv4.method", i), "%q is not dhcp, static, pppoe or none", u.IPv4.Method)
		}
		uplinks.Uplinks = append(uplinks.Uplinks, u.config())
	}
	domainProblems(uplinks.Validate(), "uplink[", "network.uplink[", func(i int, field string) (string, bool) {
		u := n.Uplink[i]
		switch {
		case field == "ipv4.method" && !slices.Contains([]string{"", "dhcp", "static", "pppoe", "none"}, u.IPv4.Method):
			return "", false // said above, in provision.toml's words
		case field == "ipv4.user":
			return "pppoe.username", true
		case field == "ipv4.password":
			return "pppoe.password", true
		case field == "parent" && (u.Parent == "" || u.Parent == u.Name):
			return "name", true // config() made the name the parent
		}
		return field, true
	}, bad)
}

// validate checks the headsets by the bluetooth domain's rules.
func (b Bluetooth) validate(bad func(key, format string, args ...any)) {
	var c bluetooth.Config
	for _, h := range b.Headset {
		c.Headsets = append(c.Headsets, h.config())
	}
	domainProblems(c.Validate(), "headset[", "bluetooth.headset[", nil, bad)
}

// domainProblems reports a domain's joined field errors (keys such as
// "uplink[2].vlan") under provision.toml's names: from is the domain's key
// prefix, to provision.toml's; rename, when given, renames the field of
// element i (false drops the problem).
func domainProblems(err error, from, to string, rename func(i int, field string) (string, bool), bad func(key, format string, args ...any)) {
	for _, e := range errlist.Flatten(err) {
		var keyed interface{ ConfigKey() string }
		if !errors.As(e, &keyed) {
			bad(strings.TrimSuffix(to, "["), "%v", e)
			continue
		}
		key := keyed.ConfigKey()
		var i int
		var field string
		if rest, ok := strings.CutPrefix(key, from); ok {
			if n, tail, ok := strings.Cut(rest, "]"); ok {
				i, _ = strconv.Atoi(n)
				field = strings.TrimPrefix(tail, ".")
			}
		}
		if rename != nil && field != "" {
			var keep bool
			if field, keep = rename(i, field); !keep {
				continue
			}
		}
		if field == "" {
			bad(strings.TrimSuffix(to, "[")+"."+key, "%v", e)
			continue
		}
		bad(fmt.Sprintf("%s%d].%s", to, i, field), "%v", e)
	}
}

// config is the [[wifi.network]] of w.
func (w WiFi) config() wifi.Network {
	return wifi.Network{SSID: w.SSID, PSK: w.PSK, Hidden: w.Hidden, Priority: w.Priority}
}

// config is the [[bluetooth.headset]] of h.
func (h Headset) config() bluetooth.Headset {
	return bluetooth.Headset{Address: strings.ToUpper(h.Address), Name: h.Name, AutoConnect: h.AutoConnect, Mode: h.Mode}
}

// config is the [[network.uplink]] of u: an uplink without a parent is
// its link, "none" is "off" and "" is "dhcp".
func (u Uplink) config() network.Uplink {
	n := network.Uplink{Name: u.Name, Parent: u.Parent, MAC: strings.ToLower(u.MAC)}
	if n.Parent == "" || n.Parent == n.Name {
		n.Parent, n.Name = u.Name, ""
	}
	if u.VLAN != 0 {
		n.VLAN = new(u.VLAN)
	}
	if u.Priority != 0 {
		n.Priority = new(u.Priority)
	}
	v := u.IPv4
	n.IPv4 = network.IPv4{Method: v.Method, VendorClass: v.VendorClass, ClientID: v.ClientID,
		Address: v.Address, Gateway: v.Gateway, DNS: v.DNS, User: u.PPPoE.Username, Password: u.PPPoE.Password,
		RouteMetric: v.RouteMetric, DefaultRoute: v.DefaultRoute}
	switch v.Method {
	case "":
		n.IPv4.Method = network.MethodDHCP
	case "none":
		n.IPv4.Method = network.MethodOff
	}
	return n
}

// validLabel reports whether s can be a label of a host name: 1 to 63
// ASCII letters, digits and '-', the first and the last a letter or a
// digit.
func validLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		inner := i > 0 && i < len(s)-1
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || inner && c == '-') {
			return false
		}
	}
	return len(s) >= 1 && len(s) <= 63
}

// validZone reports whether s is shaped like a zone name: parts of at
// least one ASCII letter, digit, '_', '+' or '-', joined by '/'
// ("Europe/Berlin", "Etc/GMT+1").
func validZone(s string) bool {
	for _, part := range strings.Split(s, "/") {
		if part == "" || strings.ContainsFunc(part, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '+' || r == '-')
		}) {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
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
