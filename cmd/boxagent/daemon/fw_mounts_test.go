package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/firmware"
)

// TestStickMounts reads a host root's mount table: a stick whose first
// partition is mounted (free space from statfs of the mount), a stick not
// mounted at all (an empty list, "not mounted"), and no mount table (no
// answer, "not known").
func TestStickMounts(t *testing.T) {
	host := t.TempDir()
	dir := t.TempDir() // the mount point: statfs answers for it
	for rel, body := range map[string]string{
		"sys/block/sda/dev":      "8:0\n",
		"sys/block/sda/sda1/dev": "8:1\n",
		"sys/block/sdb/dev":      "8:16\n",
		"sys/block/sdb/sdb1/dev": "8:17\n",
		"proc/self/mountinfo": "22 1 0:21 / / rw - ext4 /dev/root rw\n" +
			"36 22 8:1 / " + dir + " rw,nosuid,nodev - vfat /dev/sda1 rw,flush\n",
	} {
		p := filepath.Join(host, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := &firmwareDomain{a: &agent{paths: paths.Paths{HostRoot: host}}, log: slog.New(slog.DiscardHandler)}
	part := firmware.Disk{Scheme: "mbr", Partitions: []firmware.Partition{{Index: 1, FS: "fat32"}}}
	got := d.stickMounts([]firmware.Stick{{Name: "sda", Disk: part}, {Name: "sdb", Disk: part}})
	if m := got["sda"]; len(m) != 1 || m[0].Device != "sda1" || m[0].Dir != dir || m[0].ReadOnly || m[0].Free == nil || *m[0].Free <= 0 {
		t.Errorf("sda: %+v", m)
	}
	if m, ok := got["sdb"]; !ok || len(m) != 0 {
		t.Errorf("sdb: %+v %v, want an empty list", m, ok)
	}
	os.Remove(filepath.Join(host, "proc/self/mountinfo"))
	if got := d.stickMounts([]firmware.Stick{{Name: "sda", Disk: part}}); got != nil {
		t.Errorf("without a mount table: %+v", got)
	}
}
