package firmware

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mib = 1 << 20

// image is a sparse disk image file under construction.
type image struct {
	t    *testing.T
	path string
}

func newImage(t *testing.T, size int64) *image {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return &image{t, p}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	needTool(t, name)
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (im *image) writeAt(b []byte, off int64) {
	f, err := os.OpenFile(im.path, os.O_WRONLY, 0)
	if err != nil {
		im.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		im.t.Fatal(err)
	}
}

// mbrEntry is one slot of a hand-written MBR (start and size in sectors).
type mbrEntry struct {
	typ         byte
	start, size uint32
}

func (im *image) mbr(ents ...mbrEntry) {
	s := make([]byte, sector)
	putMBR(s, ents)
	im.writeAt(s, 0)
}

func putMBR(s []byte, ents []mbrEntry) {
	for i, e := range ents {
		p := s[446+16*i:]
		p[4] = e.typ
		binary.LittleEndian.PutUint32(p[8:], e.start)
		binary.LittleEndian.PutUint32(p[12:], e.size)
	}
	s[510], s[511] = 0x55, 0xaa
}

// mkfsAt builds a filesystem in its own file with the given mkfs command
// (the file path is the last argument) and copies it into the image.
func (im *image) mkfsAt(off, size int64, tool string, args ...string) {
	im.t.Helper()
	needTool(im.t, tool)
	p := filepath.Join(im.t.TempDir(), "fs.img")
	os.WriteFile(p, nil, 0o600)
	os.Truncate(p, size)
	run(im.t, tool, append(args, p)...)
	b, err := os.ReadFile(p)
	if err != nil {
		im.t.Fatal(err)
	}
	im.writeAt(b, off)
}

func (im *image) inspect() (Disk, error) {
	f, err := os.Open(im.path)
	if err != nil {
		im.t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	return Inspect(f, fi.Size())
}

func TestInspect(t *testing.T) {
	type want struct {
		scheme string
		parts  []Partition // Index, Start, FS, Label, Type are compared
		pick   string      // message of Pick's refusal; "" = Pick succeeds
	}
	tests := []struct {
		name  string
		build func(t *testing.T) *image
		want  want
	}{
		{"mbr fat32", func(t *testing.T) *image {
			im := newImage(t, 48*mib)
			im.mbr(mbrEntry{0x0c, 2048, 47 * 2048})
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "UPDATES", "--offset=2048", im.path, "48128")
			return im
		}, want{"mbr", []Partition{{Index: 1, Start: mib, FS: "fat32", Label: "UPDATES", Type: "0x0c"}}, ""}},
		{"superfloppy fat32", func(t *testing.T) *image {
			im := newImage(t, 40*mib)
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "STICK", im.path)
			return im
		}, want{"superfloppy", []Partition{{Index: 0, FS: "fat32", Label: "STICK"}}, ""}},
		{"superfloppy fat16", func(t *testing.T) *image {
			im := newImage(t, 16*mib)
			run(t, "mkfs.vfat", "-F", "16", im.path)
			return im
		}, want{"superfloppy", []Partition{{Index: 0, FS: "fat16"}}, "FAT16 is not readable by this board's recovery; format the stick FAT32"}},
		{"superfloppy fat12", func(t *testing.T) *image {
			im := newImage(t, 1*mib)
			run(t, "mkfs.vfat", "-F", "12", "-n", "TINY", im.path)
			return im
		}, want{"superfloppy", []Partition{{Index: 0, FS: "fat12", Label: "TINY"}}, "FAT12 is not readable"}},
		{"mbr exfat", func(t *testing.T) *image {
			im := newImage(t, 24*mib)
			im.mbr(mbrEntry{0x07, 2048, 23 * 2048})
			im.mkfsAt(mib, 23*mib, "mkfs.exfat", "-L", "EX")
			return im
		}, want{"mbr", []Partition{{Index: 1, Start: mib, FS: "exfat", Type: "0x07"}},
			"exFAT is not readable by this board's recovery; format the stick FAT32"}},
		{"superfloppy exfat", func(t *testing.T) *image {
			im := newImage(t, 16*mib)
			run(t, "mkfs.exfat", im.path)
			return im
		}, want{"superfloppy", []Partition{{Index: 0, FS: "exfat"}}, "exFAT is not readable"}},
		{"mbr ntfs boot sector", func(t *testing.T) *image {
			im := newImage(t, 8*mib)
			im.mbr(mbrEntry{0x07, 2048, 6 * 2048})
			bs := make([]byte, sector)
			copy(bs, "\xeb\x52\x90NTFS    ")
			bs[510], bs[511] = 0x55, 0xaa
			im.writeAt(bs, mib)
			return im
		}, want{"mbr", []Partition{{Index: 1, Start: mib, FS: "ntfs", Type: "0x07"}},
			"NTFS is not readable by this board's recovery; format the stick FAT32"}},
		{"mbr ext4 and fat32", func(t *testing.T) *image {
			im := newImage(t, 64*mib)
			im.mbr(mbrEntry{0x83, 2048, 8 * 2048}, mbrEntry{0x0b, 10 * 2048, 50 * 2048})
			im.mkfsAt(mib, 8*mib, "mkfs.ext4", "-q", "-F", "-L", "rootfs")
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "--offset=20480", im.path, "51200")
			return im
		}, want{"mbr", []Partition{{Index: 1, Start: mib, FS: "ext4", Label: "rootfs", Type: "0x83"},
			{Index: 2, Start: 10 * mib, FS: "fat32", Type: "0x0b"}}, ""}},
		{"mbr logical fat32", func(t *testing.T) *image {
			im := newImage(t, 48*mib)
			im.mbr(mbrEntry{0x0f, 2048, 46 * 2048})
			ebr := make([]byte, sector)
			putMBR(ebr, []mbrEntry{{0x0c, 2048, 44 * 2048}})
			im.writeAt(ebr, mib)
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "--offset=4096", im.path, "45056")
			return im
		}, want{"mbr", []Partition{{Index: 5, Start: 2 * mib, FS: "fat32", Type: "0x0c"}}, ""}},
		{"gpt fat32", func(t *testing.T) *image {
			im := newImage(t, 48*mib)
			run(t, "sgdisk", "-n", "1:2048:+40M", "-t", "1:0700", "-c", "1:UPDATES", im.path)
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "GPTSTICK", "--offset=2048", im.path, "40960")
			return im
		}, want{"gpt", []Partition{{Index: 1, Start: mib, FS: "fat32", Label: "GPTSTICK", Type: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"}}, ""}},
		{"gpt fat32 with damaged primary header", func(t *testing.T) *image {
			im := newImage(t, 48*mib)
			run(t, "sgdisk", "-n", "1:2048:+40M", "-t", "1:0700", im.path)
			run(t, "mkfs.vfat", "-F", "32", "-s", "1", "--offset=2048", im.path, "40960")
			im.writeAt([]byte("garbage!"), sector+24)
			return im
		}, want{"gpt", []Partition{{Index: 1, Start: mib, FS: "fat32", Type: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"}}, ""}},
		{"gpt without fat", func(t *testing.T) *image {
			im := newImage(t, 16*mib)
			run(t, "sgdisk", "-n", "2:2048:+8M", "-t", "2:8300", im.path)
			return im
		}, want{"gpt", []Partition{{Index: 2, Start: mib, Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}},
			"GPT stick without a FAT32 partition"}},
		{"blank", func(t *testing.T) *image { return newImage(t, 4*mib) },
			want{"none", nil, "the stick has no partition table and no filesystem; format it FAT32"}},
		{"empty mbr", func(t *testing.T) *image {
			im := newImage(t, 4*mib)
			im.mbr()
			return im
		}, want{"mbr", nil, "MBR partition table has no partitions"}},
		{"superfloppy ext4", func(t *testing.T) *image {
			im := newImage(t, 8*mib)
			run(t, "mkfs.ext4", "-q", "-F", im.path)
			return im
		}, want{"superfloppy", []Partition{{Index: 0, FS: "ext4"}}, "ext4 is not readable"}},
		{"tiny", func(t *testing.T) *image { return newImage(t, 100) }, want{"none", nil, "no partition table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.build(t).inspect()
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if d.Scheme != tt.want.scheme || len(d.Partitions) != len(tt.want.parts) {
				t.Fatalf("Inspect = %+v, want scheme %s with %d partitions", d, tt.want.scheme, len(tt.want.parts))
			}
			for i, w := range tt.want.parts {
				g := d.Partitions[i]
				if g.Index != w.Index || g.Start != w.Start || g.FS != w.FS || g.Label != w.Label || g.Type != w.Type || g.Size <= 0 {
					t.Errorf("partition %d = %+v, want %+v", i, g, w)
				}
			}
			p, err := d.Pick()
			if tt.want.pick == "" {
				if err != nil || p.FS != "fat32" {
					t.Fatalf("Pick = %+v, %v", p, err)
				}
				return
			}
			var se *StickError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want.pick) {
				t.Fatalf("Pick err = %v, want %q", err, tt.want.pick)
			}
			if !errors.Is(err, ErrUnsupportedFS) && !errors.Is(err, ErrNoFilesystem) {
				t.Errorf("Pick err %v is not typed", err)
			}
		})
	}
}

func TestPickAllowed(t *testing.T) {
	d := Disk{Scheme: "mbr", Partitions: []Partition{{Index: 1, FS: "exfat"}, {Index: 2, FS: "fat16"}}}
	if p, err := d.Pick("fat32", "fat16"); err != nil || p.Index != 2 {
		t.Fatalf("Pick(fat32, fat16) = %+v, %v", p, err)
	}
	if _, err := d.Pick("fat32"); err == nil || err.Error() != "exFAT is not readable by this board's recovery; format the stick FAT32" {
		t.Fatalf("Pick(fat32) = %v", err)
	}
	tests := []struct {
		allowed []string
		want    int    // partition index, 0 = refused
		msg     string // refusal
	}{
		{[]string{"vfat"}, 2, ""},
		{[]string{"exfat"}, 1, ""},
		{[]string{"ext4"}, 0, "exFAT is not readable by this board's recovery; format the stick ext4"},
		{nil, 0, "format the stick FAT32"},
	}
	for _, tt := range tests {
		p, err := d.Pick(tt.allowed...)
		if tt.want != 0 && (err != nil || p.Index != tt.want) || tt.want == 0 && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("Pick(%v) = %+v, %v; want partition %d or %q", tt.allowed, p, err, tt.want, tt.msg)
		}
	}
	for fs, mt := range map[string]string{"fat12": "vfat", "fat32": "vfat", "exfat": "exfat", "ext3": "ext4", "ntfs": "ntfs3", "": ""} {
		if got := (Partition{FS: fs}).MountType(); got != mt {
			t.Errorf("MountType(%q) = %q, want %q", fs, got, mt)
		}
	}
}
