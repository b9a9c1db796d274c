package systemd

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/network"
)

func unit(t *testing.T, name string) Unit {
	t.Helper()
	data, ok := Units()[name]
	if !ok {
		t.Fatalf("%s is not embedded", name)
	}
	u, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return u
}

// TestAgentUnit guards what the field lessons put into boxagent.service:
// supervision by PID 1, limits in the unit, least privilege.
func TestAgentUnit(t *testing.T) {
	u := unit(t, "boxagent.service")
	for key, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30s", "Restart": "on-failure",
		"KillMode": "control-group", "User": "boxagent", "Group": "boxagent",
		"StateDirectory": "boxagent", "RuntimeDirectory": "boxagent", "ConfigurationDirectory": "boxagent",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"ProtectKernelModules": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
		"RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
		"ExecStart": "/usr/bin/boxagent serve",
		// Issue 17: a runaway agent (parallel logins took 1 GB) is stopped
		// by the cgroup, not the kernel's OOM killer picking the player.
		"MemoryMax": "256M", "TasksMax": "128",
	} {
		if got := u.Get("Service", key); got != want {
			t.Errorf("[Service] %s=%q, want %q", key, got, want)
		}
	}
	if n := u.Get("Service", "LimitNOFILE"); n == "" || strings.ContainsAny(n, ":") {
		t.Errorf("LimitNOFILE=%q: want one number (soft = hard), the doctor compares it", n)
	}
	sets := map[string][]string{
		// Not disk: USB disks alone are group boxagent (70-boxagent-sticks.rules).
		"SupplementaryGroups":     {"bluetooth", "netdev", "pulse-access"},
		"DeviceAllow":             {"/dev/rfkill", "rw", "block-sd", "r"},
		"AmbientCapabilities":     {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"},
		"CapabilityBoundingSet":   {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"},
		"RestrictAddressFamilies": {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6", "AF_PACKET", "AF_BLUETOOTH", "AF_ALG"},
		"ReadWritePaths":          {"/var/lib/boxagent", "/run/boxagent", "/etc/boxagent", "-/proc/sys/net/ipv6/conf"},
	}
	for key, want := range sets {
		got := u.Words("Service", key)
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("[Service] %s = %q, want exactly %q", key, got, want)
		}
	}
	if f := u.Words("Service", "SystemCallFilter"); !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter = %q, want @system-service", f)
	}
	if got := u.Get("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy=%q", got)
	}
	if !slices.Contains(u.Words("Unit", "After"), "boxagent-firstboot.service") {
		t.Errorf("the agent must start after first-boot provisioning")
	}
}

func TestFirstBootUnit(t *testing.T) {
	u := unit(t, "boxagent-firstboot.service")
	if got := u.Get("Service", "Type"); got != "oneshot" {
		t.Errorf("Type=%q, want oneshot", got)
	}
	if got := u.Get("Service", "ExecStart"); got != "/usr/bin/boxagent provision --first-boot" {
		t.Errorf("ExecStart=%q", got)
	}
	conds := u["Unit"]["ConditionPathExists"]
	if !slices.Contains(conds, "|/boot/firmware/provision.toml") || !slices.Contains(conds, "|/boot/provision.toml") {
		t.Errorf("ConditionPathExists = %q: want the boot partition's provision.toml, OR-ed", conds)
	}
	if !slices.Contains(u.Words("Unit", "Before"), "boxagent.service") {
		t.Errorf("first boot must run before boxagent.service")
	}
}

// TestTemplateUnits: the two templates the agent's user may start run the
// binary's helpers with the instance, are never enabled, and the mount
// template mounts where the agent sees it (no namespace of its own).
func TestTemplateUnits(t *testing.T) {
	for name, exec := range map[string]string{
		"boxagent-mount@.service": "/usr/bin/boxagent mount-helper mount %i",
		"boxagent-pppoe@.service": "/usr/bin/boxagent pppoe-helper %i",
	} {
		u := unit(t, name)
		if got := u.Get("Service", "ExecStart"); got != exec {
			t.Errorf("%s: ExecStart=%s, want %s", name, got, exec)
		}
		if _, ok := u["Install"]; ok {
			t.Errorf("%s has an [Install] section: a template the agent starts is never enabled", name)
		}
		if u.Get("Service", "Restart") != "" && u.Get("Service", "Restart") != "no" {
			t.Errorf("%s restarts by itself", name)
		}
	}
	if got := unit(t, "boxagent-pppoe@.service").Get("Unit", "CollectMode"); got != "inactive-or-failed" {
		t.Errorf("boxagent-pppoe@.service: [Unit] CollectMode=%q, want inactive-or-failed (ended sessions go away)", got)
	}
	m := unit(t, "boxagent-mount@.service")
	for _, key := range []string{"ProtectHome", "ProtectSystem", "PrivateTmp", "PrivateNetwork", "PrivateMounts", "ProtectKernelModules",
		"ProtectKernelTunables", "ProtectKernelLogs", "ProtectControlGroups", "ReadOnlyPaths", "PrivateDevices", "ProtectProc"} {
		if v := m.Get("Service", key); v != "" {
			t.Errorf("boxagent-mount@.service has %s=%s: a mount namespace of its own, the mount would not reach the agent", key, v)
		}
	}
	if got := m.Get("Service", "ExecStop"); got != "/usr/bin/boxagent mount-helper unmount %i" {
		t.Errorf("boxagent-mount@.service: ExecStop=%s", got)
	}
}

func TestParse(t *testing.T) {
	u, err := Parse([]byte("# c\n[Unit]\nAfter=a\nAfter=b \\\n c\n[Service]\nX=1\nX=\nX=2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Words("Unit", "After"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("After = %q", got)
	}
	if got := u["Service"]["X"]; !slices.Equal(got, []string{"2"}) {
		t.Errorf("X = %q: an empty assignment resets", got)
	}
	if _, err := Parse([]byte("X=1\n")); err == nil {
		t.Errorf("a key outside a section is an error")
	}
}

// TestPolkitRule: the rule's unit patterns (JavaScript regular
// expressions Go's regexp reads the same) take the agent's mount and
// PPPoE units and nothing else.
func TestPolkitRule(t *testing.T) {
	b, err := os.ReadFile("50-boxagent.rules")
	if err != nil {
		t.Fatal(err)
	}
	var res []*regexp.Regexp
	for _, m := range regexp.MustCompile(`/(\^[^ ]+\$)/\.test\(unit\)`).FindAllStringSubmatch(string(b), -1) {
		res = append(res, regexp.MustCompile(m[1]))
	}
	if len(res) != 2 {
		t.Fatalf("want the mount and PPPoE patterns in the rule, found %d", len(res))
	}
	allowed := func(unit string) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(unit) })
	}
	for _, u := range []string{firmware.MountUnit(false, "sda1"), firmware.MountUnit(true, "sdb"),
		network.PPPoEUnitName("wan"), network.PPPoEUnitName("eth0.35"), network.PPPoEUnitName("isp-wan")} {
		if !allowed(u) {
			t.Errorf("the rule refuses the agent's unit %s", u)
		}
	}
	for _, u := range []string{"boxagent.service", "sshd.service", "boxagent-pppoe@wan.socket", "run-media-usb.mount",
		"x-boxagent-pppoe@wan.service", "boxagent-pppoe@.service", "boxagent-mount@rw-mmcblk0p1.service",
		"boxagent-mount@rw-sda1.service.d", "boxagent-pppoe@a@b.service", "run-boxagent-usb-sda1.mount", "boxagent-pppoe-wan.service"} {
		if allowed(u) {
			t.Errorf("the rule lets the agent manage %s", u)
		}
	}
	// No grant without a unit name: StartTransientUnit on systemd < 256.
	if strings.Contains(string(b), "unit === undefined") {
		t.Errorf("the rule grants calls that name no unit: any transient unit, as root")
	}
	if strings.Contains(unit(t, "boxagent.service").Get("Service", "RestrictAddressFamilies"), "AF_PPPOX") {
		t.Errorf("the agent's own unit must not get AF_PPPOX: pppd runs in a unit of its own")
	}
}

// TestResolvconfUnits: the path unit follows the agent's own resolv.conf
// and its service hands that file to resolvconf, only where resolvconf is.
func TestResolvconfUnits(t *testing.T) {
	p := unit(t, "boxagent-resolvconf.path")
	if got := p.Get("Path", "PathChanged"); got != network.AgentResolvConf {
		t.Errorf("boxagent-resolvconf.path: PathChanged=%s, want %s", got, network.AgentResolvConf)
	}
	s := unit(t, "boxagent-resolvconf.service")
	if got, want := s.Get("Service", "ExecStart"), "exec /sbin/resolvconf -a boxagent <"+network.AgentResolvConf; !strings.Contains(got, want) {
		t.Errorf("boxagent-resolvconf.service: ExecStart=%s, want one with %q", got, want)
	}
	for _, u := range []Unit{p, s} {
		if u.Get("Unit", "ConditionFileIsExecutable") != "/sbin/resolvconf" {
			t.Errorf("a resolvconf unit runs where resolvconf is not")
		}
	}
	if s.Get("Service", "Type") != "oneshot" {
		t.Errorf("boxagent-resolvconf.service: Type=%s, want oneshot", s.Get("Service", "Type"))
	}
}
