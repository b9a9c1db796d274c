package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EAP methods of Dot1X.EAP.
const (
	EAPMD5  = "md5"
	EAPPEAP = "peap"
)

// Dot1X is the [network.uplink.dot1x] table: 802.1X (EAPOL) on the
// wired uplink before any addressing, through wpa_supplicant's wired
// driver. Some IPTV networks authenticate the box so on their VLAN.
type Dot1X struct {
	// EAP is the method: "md5" or "peap" (PEAPv0 with MSCHAPv2 inside).
	EAP      string `toml:"eap" json:"eap"`
	Identity string `toml:"identity" json:"identity"`
	// AnonymousIdentity is PEAP's outer identity; "" sends Identity.
	AnonymousIdentity string `toml:"anonymous_identity,omitempty" json:"anonymous_identity,omitempty"`
	// Password, or PasswordFile (an absolute path, read at each apply;
	// one line, its newline dropped): exactly one of them.
	Password     string `toml:"password,omitempty" json:"password,omitempty" secret:"true"`
	PasswordFile string `toml:"password_file,omitempty" json:"password_file,omitempty"`
	// CACert is the PEAP server's CA (PEM file); without it the server's
	// certificate is not checked.
	CACert string `toml:"ca_cert,omitempty" json:"ca_cert,omitempty"`
	// ClientCert and ClientKey (PEM files, both or neither) are the box's
	// own certificate in PEAP's TLS tunnel, for networks that ask for it.
	ClientCert string `toml:"client_cert,omitempty" json:"client_cert,omitempty"`
	ClientKey  string `toml:"client_key,omitempty" json:"client_key,omitempty"`
	// Phase2 is PEAP's inner method: "mschapv2" (also when absent).
	Phase2 string `toml:"phase2,omitempty" json:"phase2,omitempty"`
}

// check reports the table's problems at keys relative to it.
func (d Dot1X) check(add addFunc) {
	switch d.EAP {
	case EAPMD5, EAPPEAP:
	case "":
		add("eap", `missing: want "md5" or "peap"`)
	default:
		add("eap", `%q is not one of "md5", "peap"`, d.EAP)
	}
	if d.Identity == "" {
		add("identity", "missing: the user name the authenticator knows the box by")
	}
	for _, f := range []struct{ key, v string }{{"identity", d.Identity}, {"anonymous_identity", d.AnonymousIdentity}, {"password", d.Password}} {
		if strings.ContainsAny(f.v, "\x00\n\r") {
			add(f.key, "holds a NUL or a line break")
		}
	}
	switch {
	case d.Password != "" && d.PasswordFile != "":
		add("password_file", "set password or password_file, not both")
	case d.Password == "" && d.PasswordFile == "":
		add("password", "missing: set password or password_file")
	}
	files := []struct{ key, path string }{
		{"password_file", d.PasswordFile}, {"ca_cert", d.CACert}, {"client_cert", d.ClientCert}, {"client_key", d.ClientKey},
	}
	for _, f := range files {
		if f.path != "" && !filepath.IsAbs(f.path) {
			add(f.key, "%q is not an absolute path", f.path)
		}
	}
	if d.EAP == EAPMD5 {
		// MD5 has no tunnel: nothing of TLS applies.
		for _, f := range []struct{ key, v string }{
			{"ca_cert", d.CACert}, {"client_cert", d.ClientCert}, {"client_key", d.ClientKey},
			{"phase2", d.Phase2}, {"anonymous_identity", d.AnonymousIdentity},
		} {
			if f.v != "" {
				add(f.key, `only for eap "peap"`)
			}
		}
	}
	if (d.ClientCert == "") != (d.ClientKey == "") {
		add("client_key", "client_cert and client_key go together")
	}
	if d.EAP == EAPPEAP && d.Phase2 != "" && d.Phase2 != "mschapv2" {
		add("phase2", `%q is not "mschapv2"`, d.Phase2)
	}
}

// password is the configured password, or password_file's first line.
func (d Dot1X) password() (string, error) {
	if d.PasswordFile == "" {
		return d.Password, nil
	}
	b, err := os.ReadFile(d.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("cannot read the 802.1X password: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", errors.New("cannot use the 802.1X password file: its first line is empty")
	}
	return pw, nil
}
