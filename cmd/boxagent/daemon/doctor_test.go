package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

func TestOrphanedCgroup(t *testing.T) {
	cases := []struct {
		cgroup string
		want   bool
	}{
		{"0::/system.slice/wpa_supplicant.service\n", false},
		{"0::/system.slice/boxagent.service\n", true},
		{"0::/user.slice/user-0.slice/session-3.scope\n", true},
		{"0::/\n", true},
		{"", true},
	}
	for _, c := range cases {
		if got := orphanedCgroup(c.cgroup); got != c.want {
			t.Errorf("orphanedCgroup(%q) = %v, want %v", c.cgroup, got, c.want)
		}
	}
}

func TestReadStat(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		stat, comm string
		ppid       int
		err        bool
	}{
		{"1234 (pppd) S 1 1234 1234 0 -1", "pppd", 1, false},
		{"77 (odd name) with) R 42 77 77", "odd name) with", 42, false},
		{"garbage", "", 0, true},
	}
	for i, c := range cases {
		p := filepath.Join(dir, "stat")
		os.WriteFile(p, []byte(c.stat), 0o644)
		comm, ppid, err := readStat(p)
		if (err != nil) != c.err || comm != c.comm || ppid != c.ppid {
			t.Errorf("%d: readStat(%q) = %q %d %v", i, c.stat, comm, ppid, err)
		}
	}
}

func TestLimitsAgainstTheUnit(t *testing.T) {
	host := t.TempDir()
	unitDir := filepath.Join(host, "etc/systemd/system")
	os.MkdirAll(unitDir, 0o755)
	a := &agent{paths: paths.Paths{HostRoot: host}}
	// No unit: the process's own limit decides.
	if c := a.checkLimits(); c.Result == "" || c.Detail == "" {
		t.Fatalf("limits without a unit: %+v", c)
	}
	soft, _, err := readNoFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	// Limit /proc to the real one: HostRoot moved it, so link it back.
	os.Symlink("/proc", filepath.Join(host, "proc"))
	os.WriteFile(filepath.Join(unitDir, "boxagent.service"), []byte("[Service]\nLimitNOFILE="+soft+"\n"), 0o644)
	if c := a.checkLimits(); c.Result != "OK" {
		t.Errorf("unit matches the process: %+v", c)
	}
	os.WriteFile(filepath.Join(unitDir, "boxagent.service"), []byte("[Service]\nLimitNOFILE=3\n"), 0o644)
	if c := a.checkLimits(); c.Result != "WARN" || c.Fix == "" {
		t.Errorf("unit differs from the process: %+v", c)
	}
}

func TestHashCheck(t *testing.T) {
	cases := []struct {
		name   string
		why    error
		result string
		detail string
		fix    bool
	}{
		{"kernel sha256-ce", nil, apitype.CheckOK, "kernel sha256-ce", false},
		{"go", errors.New("AF_ALG socket: address family not supported by protocol"), apitype.CheckOK, "Go's SHA-256 (the kernel's: AF_ALG socket", false},
		{"go", fmt.Errorf("%w: SHA-256 of 3 bytes", kernelhash.ErrWrongSum), apitype.CheckWarn, "differ from Go's", true},
	}
	for _, c := range cases {
		got := hashCheck(c.name, c.why)
		if got.Name != "package hashing" || got.Result != c.result || !strings.Contains(got.Detail, c.detail) || (got.Fix != "") != c.fix {
			t.Errorf("hashCheck(%q, %v) = %+v", c.name, c.why, got)
		}
	}
}
