// Package systemd holds boxagent's systemd units, embedded so that
// `boxagent provision --install-binary` can install them into an image
// that has no package, and a small reader of unit files for the tests
// that guard their must-have directives.
package systemd

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.service *.path
var units embed.FS

//go:embed 50-boxagent.rules boxagent-modules.conf 70-boxagent-sticks.rules
var systemFiles embed.FS

// SystemFiles are the files beside the units that the agent's user needs
// to work as the units promise, by their path in an image (no leading /):
// the polkit rule for the template units, the modules-load.d file for
// sd_mod and the udev rule that makes USB sticks readable by the agent.
// The .deb installs the same files at the same paths.
func SystemFiles() map[string][]byte {
	at := map[string]string{
		"50-boxagent.rules":        "usr/share/polkit-1/rules.d/50-boxagent.rules",
		"boxagent-modules.conf":    "usr/lib/modules-load.d/boxagent.conf",
		"70-boxagent-sticks.rules": "usr/lib/udev/rules.d/70-boxagent-sticks.rules",
	}
	m := map[string][]byte{}
	for name, path := range at {
		data, err := systemFiles.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		m[path] = data
	}
	return m
}

// Units are the unit files by name: boxagent.service,
// boxagent-firstboot.service, the templates and boxagent-resolvconf.path
// with its service.
func Units() map[string][]byte {
	m := map[string][]byte{}
	entries, _ := fs.ReadDir(units, ".")
	for _, e := range entries {
		data, err := fs.ReadFile(units, e.Name())
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		m[e.Name()] = data
	}
	return m
}

// UnitDirs are the folders systemd's system manager reads unit files
// from, the administrator's first: a unit found in an earlier one is the
// one that counts. They are absolute paths on the box; in an image they
// stand under its root.
func UnitDirs() []string {
	return []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
}

// Unit is a parsed unit file: section → key → values, in file order. A
// key given several times has several values; an empty assignment resets
// the list, as systemd does for list settings.
type Unit map[string]map[string][]string

// Parse reads a unit file. It knows comments, sections, key=value and
// backslash continuation lines; that is all boxagent's units use.
func Parse(data []byte) (Unit, error) {
	u := Unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	n, pending := 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSuffix(line, "\\")
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: not a key=value in a section: %q", n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				u[section][k] = nil
				continue
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u, sc.Err()
}

// Get is the last value of a key, "" when absent.
func (u Unit) Get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// Words are all values of a list key (SupplementaryGroups=,
// RestrictAddressFamilies=), split on white space.
func (u Unit) Words(section, key string) []string {
	var w []string
	for _, v := range u[section][key] {
		w = append(w, strings.Fields(v)...)
	}
	return w
}
