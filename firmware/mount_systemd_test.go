package firmware

import (
	"errors"
	"os"
	"testing"
)

func TestMountInstance(t *testing.T) {
	for _, tt := range []struct {
		ro       bool
		dev      string
		instance string
	}{{false, "sda1", "rw-sda1"}, {true, "sdb", "ro-sdb"}, {false, "sdaa12", "rw-sdaa12"}} {
		if got := MountInstance(tt.ro, tt.dev); got != tt.instance {
			t.Errorf("MountInstance(%v, %s) = %s", tt.ro, tt.dev, got)
		}
		dev, ro, err := ParseMountInstance(tt.instance)
		if err != nil || dev != tt.dev || ro != tt.ro {
			t.Errorf("ParseMountInstance(%s) = %s %v %v", tt.instance, dev, ro, err)
		}
	}
	// The helper runs as root: only these names, nothing that reaches
	// another device or a path.
	for _, bad := range []string{"rw-sda1/../x", "rw-mmcblk0p1", "rw-loop0", "xx-sda1", "rw-sda1 ", "rw-", "ro-sda1,uid=0", "rw-nvme0n1", "rw-../../etc"} {
		if _, _, err := ParseMountInstance(bad); err == nil {
			t.Errorf("ParseMountInstance(%q) accepted", bad)
		}
	}
	if u := MountUnit(true, "sdc1"); u != "boxagent-mount@ro-sdc1.service" {
		t.Errorf("MountUnit = %s", u)
	}
}

func TestStickMountData(t *testing.T) {
	o := Owner{UID: 998, GID: 997}
	for fs, want := range map[string]string{
		"vfat":  "flush,utf8=1,shortname=mixed,errors=remount-ro,uid=998,gid=997,umask=0077",
		"exfat": "uid=998,gid=997,umask=0077",
		"ext4":  "errors=remount-ro",
	} {
		if got := stickMountData(fs, o); got != want {
			t.Errorf("%s: %q, want %q", fs, got, want)
		}
	}
}

func TestChooseMounter(t *testing.T) {
	if m, how, err := ChooseMounter("direct", HostPaths{}, nil); err != nil || how != MounterDirect {
		t.Errorf("direct: %T %q %v", m, how, err)
	} else if _, ok := m.(DirectMounter); !ok {
		t.Errorf("direct gave %T", m)
	}
	if m, how, err := ChooseMounter("systemd", HostPaths{}, nil); err != nil || how != MounterSystemd {
		t.Errorf("systemd: %T %q %v", m, how, err)
	} else if _, ok := m.(*SystemdMounter); !ok {
		t.Errorf("systemd gave %T", m)
	}
	// auto on this host: root, or no systemd as PID 1, mounts directly.
	if _, err := os.Stat("/run/systemd/system"); err != nil || os.Geteuid() == 0 {
		if _, how, err := ChooseMounter("", HostPaths{}, nil); err != nil || how != MounterDirect {
			t.Errorf("auto as root or without systemd: %q %v", how, err)
		}
	}
	if _, _, err := ChooseMounter("udisks", HostPaths{}, nil); err == nil {
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
