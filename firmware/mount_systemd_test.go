package firmware

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Paths whose escaping differs in every rule systemd has: dashes, a
// leading dot, spaces, backslashes, UTF-8, duplicate and trailing
// slashes, "." components, the root.
var escapeCases = []string{
	"/run/boxagent/usb/0781-5583-4C530001",
	"/run/boxagent/usb/usb-1.2_SanDisk",
	"/.hidden/dir",
	"/a/.b/c.",
	"/with space/and\\back",
	"/ünïcode/Stick",
	"//double//slash/",
	"/./dot/./x",
	"/",
	"/a:b_c",
	"/tab\there",
	"relative/path",
	"/-",
}

func TestEscapePathMatchesSystemdEscape(t *testing.T) {
	needTool(t, "systemd-escape")
	for _, p := range escapeCases {
		want, err := exec.Command("systemd-escape", "--path", "--suffix=mount", p).Output()
		if err != nil {
			t.Fatalf("systemd-escape --path %q: %v", p, err)
		}
		got, err := MountUnitName(p)
		if err != nil {
			t.Errorf("MountUnitName(%q): %v", p, err)
			continue
		}
		if w := strings.TrimSpace(string(want)); got != w {
			t.Errorf("MountUnitName(%q) = %q, systemd-escape says %q", p, got, w)
		}
	}
}

func TestEscapePath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/run/boxagent/usb/0781-5583", `run-boxagent-usb-0781\x2d5583.mount`},
		{"/.x", `\x2ex.mount`},
		{"/", "-.mount"},
	} {
		if got, err := MountUnitName(c.in); err != nil || got != c.want {
			t.Errorf("MountUnitName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "/a/../b", "/" + strings.Repeat("x", 260)} {
		if got, err := MountUnitName(bad); err == nil {
			t.Errorf("MountUnitName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestEscapePathRefusesWhatSystemdRefuses(t *testing.T) {
	needTool(t, "systemd-escape")
	if err := exec.Command("systemd-escape", "--path", "/a/../b").Run(); err == nil {
		t.Fatal("systemd-escape accepted /a/../b; the rule this test guards has changed")
	}
}

func TestSystemdMountOptions(t *testing.T) {
	m := &SystemdMounter{UID: 998, GID: 997}
	got := m.mountOptions(MountRequest{FSType: "vfat", ReadOnly: true})
	want := "ro,nosuid,nodev,noexec,flush,utf8=1,shortname=mixed,errors=remount-ro,uid=998,gid=997,umask=0077"
	if got != want {
		t.Errorf("options %q, want %q", got, want)
	}
	if got := m.mountOptions(MountRequest{FSType: "ext4"}); got != "rw,nosuid,nodev,noexec,errors=remount-ro" {
		t.Errorf("ext4 options %q", got)
	}
}

func TestChooseMounter(t *testing.T) {
	if m, how, err := ChooseMounter("direct", nil); err != nil || how != MounterDirect {
		t.Errorf("direct: %T %q %v", m, how, err)
	} else if _, ok := m.(DirectMounter); !ok {
		t.Errorf("direct gave %T", m)
	}
	if m, how, err := ChooseMounter("systemd", nil); err != nil || how != MounterSystemd {
		t.Errorf("systemd: %T %q %v", m, how, err)
	} else if _, ok := m.(*SystemdMounter); !ok {
		t.Errorf("systemd gave %T", m)
	}
	// auto on this host: root, or no systemd as PID 1, mounts directly.
	if _, err := os.Stat("/run/systemd/system"); err != nil || os.Geteuid() == 0 {
		if _, how, err := ChooseMounter("", nil); err != nil || how != MounterDirect {
			t.Errorf("auto as root or without systemd: %q %v", how, err)
		}
	}
	if _, _, err := ChooseMounter("udisks", nil); err == nil {
		t.Error("an unknown mounter was accepted")
	}
}

func TestConfigMounterValidated(t *testing.T) {
	for _, ok := range []string{"", "auto", "systemd", "direct"} {
		if err := (Config{Mounter: ok}).Validate(); err != nil {
			t.Errorf("mounter %q: %v", ok, err)
		}
	}
	err := Config{Mounter: "Systemd"}.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.ConfigKey() != "mounter" {
		t.Errorf("mounter \"Systemd\": %v, want a ConfigError at mounter", err)
	}
}
