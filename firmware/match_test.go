package firmware

import (
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// splitMountInstanceSubmatch is splitMountInstance as FindStringSubmatch
// answers: the instance, the mode and the device.
func splitMountInstanceSubmatch(instance string) []string {
	if mode, dev, ok := splitMountInstance(instance); ok {
		return []string{instance, mode, dev}
	}
	return nil
}

// mountInstanceCheck is splitMountInstance against the expression it
// replaced.
var mountInstanceCheck = matchtest.Check{Expr: `^(ro|rw)-(sd[a-z]{1,3}[0-9]{0,3})$`, Submatch: splitMountInstanceSubmatch}

func TestSplitMountInstance(t *testing.T) {
	matchtest.Table(t, splitMountInstanceSubmatch, map[string][]string{
		"rw-sda1": {"rw-sda1", "rw", "sda1"}, "ro-sdb": {"ro-sdb", "ro", "sdb"},
		"rw-sdabc123": {"rw-sdabc123", "rw", "sdabc123"}, "ro-sdz0": {"ro-sdz0", "ro", "sdz0"},
		"rw-sd": nil, "rw-sdabcd1": nil, "rw-sda1234": nil, "rw-sdA1": nil, "rw-sda1\n": nil, "rw-sda1b": nil,
		"RW-sda1": nil, "rw_sda1": nil, "rw--sda1": nil, "rwx-sda1": nil, "ro-sdé": nil, "": nil,
	})
	mountInstanceCheck.Agree(t, matchtest.All("rwo-sda1", 5),
		matchtest.Near("rosdwaz09-A.\né\xff", matchtest.Near("az09-", "rw-sda1", "ro-sdb", "rw-sdabc123")...))
}

func FuzzSplitMountInstance(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "rw-sda1", "ro-sdb", "rw-sdabc123", "rw-sdabcd1", "rw-sda1234", "rw-sda1\n"}, mountInstanceCheck)
}
