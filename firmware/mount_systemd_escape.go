package firmware

import (
	"fmt"
	"strings"
)

// MountUnitName is the name systemd gives the mount unit of mount point
// dir: `systemd-escape --path --suffix=mount DIR`. PID 1 insists on it: a
// transient .mount unit whose name does not match its Where= is refused.
func MountUnitName(dir string) (string, error) {
	s, err := EscapePath(dir)
	if err != nil {
		return "", err
	}
	name := s + ".mount"
	// UNIT_NAME_MAX: systemd 252 refuses longer names (later versions
	// hash them, which a mount unit cannot use anyway).
	if len(name) > 255 {
		return "", fmt.Errorf("cannot name the mount unit of %q: %d characters, systemd allows 255", dir, len(name))
	}
	return name, nil
}

// EscapePath escapes a path the way `systemd-escape --path` does
// (unit_name_path_escape): duplicate slashes and "." components dropped,
// "/" itself is "-", leading and trailing slashes removed, each "/" a "-",
// and every byte but ASCII letters, digits, ":", "_" and "." (not first)
// written as \xNN in lower-case hex. A path with a ".." component is not
// normalized and is refused, as systemd refuses it.
func EscapePath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("cannot escape an empty path")
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", fmt.Errorf("cannot escape %q: it is not normalized (a .. component)", p)
		default:
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		return "-", nil
	}
	return escapeUnitName(strings.Join(parts, "/")), nil
}

// escapeUnitName is systemd's do_escape: a leading "." is escaped (no unit
// name starts with one), "/" becomes "-", and "-", "\" and anything outside
// [A-Za-z0-9:_.] becomes \xNN, byte by byte.
func escapeUnitName(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0, !unitNameChar(c):
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unitNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'
}
