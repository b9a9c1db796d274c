package board

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/boxagent/boxagent/internal/errlist"
)

func TestBuiltin(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	want := []string{"amlogic-tvbox", "generic-arm64", "generic-armv7", "generic-mipsle", "generic-riscv64", "generic-x86_64",
		"huawei-ec6108v9c", "raspberrypi-4", "raspberrypi-5", "rockchip-tvbox", "virtual-board", "virtual-board-armhf"}
	if got := IDs(ps); !slices.Equal(got, want) {
		t.Errorf("builtin ids = %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			t.Errorf("builtin %s: %v", p.ID, err)
		}
		if seen[p.ID] {
			t.Errorf("builtin id %s twice", p.ID)
		}
		seen[p.ID] = true
		if p.Source != SourceBuiltin {
			t.Errorf("builtin %s has source %q", p.ID, p.Source)
		}
	}
	for _, arch := range []string{"arm", "arm64", "amd64"} {
		if d, err := Detect(fstest.MapFS{}, ps, "", arch); err != nil || !d.Profile.Generic() {
			t.Errorf("no generic builtin for %s: %+v, %v", arch, d.Profile, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Profile{ID: "acme-stb", Name: "ACME STB", Arch: "arm", Match: Match{Model: []string{"ACME"}}, Uplink: "eth0", WiFi: "wlan0", BluetoothAdapter: "hci0"}
	tests := []struct {
		name   string
		change func(p *Profile)
		want   []string
	}{
		{"good", func(p *Profile) {}, nil},
		{"no interfaces is fine", func(p *Profile) { p.Uplink, p.WiFi, p.BluetoothAdapter = "", "", "" }, nil},
		{"no rules is fine (override only)", func(p *Profile) { p.Match = Match{} }, nil},
		{"bad id", func(p *Profile) { p.ID = "ACME_stb" }, []string{`board profile "ACME_stb": id: "ACME_stb" is not lowercase letters, digits, '-' and '_'`}},
		{"trailing dash", func(p *Profile) { p.ID = "acme-" }, []string{`board profile "acme-": id: "acme-" is not lowercase letters, digits, '-' and '_'`}},
		{"empty name", func(p *Profile) { p.Name = " " }, []string{`board profile "acme-stb": name: missing`}},
		{"unknown arch", func(p *Profile) { p.Arch = "armv7" }, []string{`board profile "acme-stb": arch: "armv7" is not one of arm, arm64, amd64, riscv64, mipsle`}},
		{"generic with rules", func(p *Profile) { p.ID = "generic-acme" }, []string{`board profile "generic-acme": match: a generic profile has no match rules`}},
		{"empty rule entry", func(p *Profile) { p.Match.Compatible = []string{"acme,stb", ""} }, []string{`board profile "acme-stb": match.compatible[1]: "" is empty or has surrounding spaces`}},
		{"bad interface", func(p *Profile) { p.Uplink = "eth0/1" }, []string{`board profile "acme-stb": uplink: "eth0/1" is not a network interface name`}},
		{"long interface", func(p *Profile) { p.WiFi = "wlan0123456789012" }, []string{`board profile "acme-stb": wifi: "wlan0123456789012" is not a network interface name`}},
		{"bad adapter", func(p *Profile) { p.BluetoothAdapter = "bt0" }, []string{`board profile "acme-stb": bluetooth_adapter: "bt0" is not an adapter name like hci0`}},
		{"several", func(p *Profile) { p.Name, p.Arch = "", "" }, []string{
			`board profile "acme-stb": name: missing`,
			`board profile "acme-stb": arch: "" is not one of arm, arm64, amd64, riscv64, mipsle`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.change(&p)
			err := p.Validate()
			var got []string
			for _, e := range errlist.Flatten(err) {
				got = append(got, e.Error())
				if _, ok := errors.AsType[*InvalidError](e); !ok {
					t.Errorf("%v is %T, want *InvalidError", e, e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// rpi is an extra profile in the shape an integrator writes.
const rpi = `id = "raspberrypi-4"
name = "Raspberry Pi 4"
arch = "arm64"
uplink = "eth0"
wifi = "wlan0"
bluetooth_adapter = "hci0"

[match]
model = ["Raspberry Pi 4"]
compatible = ["raspberrypi,4-model-b"]
`

const rpiAny = `id = "raspberrypi"
name = "Raspberry Pi (any)"
arch = "arm"
[match]
model = ["Raspberry Pi"]
compatible = ["brcm,bcm2835"]
`

const acmeDMI = `id = "acme-box"
name = "ACME x86 box"
arch = "amd64"
[match]
dmi_product = ["ACME Box"]
dmi_board = ["ACME-MB1"]
`

func testProfiles(t *testing.T) []Profile {
	t.Helper()
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	acmeBoard := "id = \"acme-mb2\"\nname = \"ACME board\"\narch = \"amd64\"\n[match]\ndmi_board = [\"ACME-MB2\"]\n"
	for name, doc := range map[string]string{"raspberrypi-4": rpi, "raspberrypi": rpiAny, "acme-box": acmeDMI, "acme-mb2": acmeBoard} {
		p, err := parse(name+".toml", name, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		p.Source = "/etc/boxagent/boards/" + name + ".toml"
		if i := slices.IndexFunc(ps, func(b Profile) bool { return b.ID == p.ID }); i >= 0 {
			ps[i] = p // an integrator's file replaces the builtin
		} else {
			ps = append(ps, p)
		}
	}
	sortByID(ps)
	if err := checkSet(ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestDetect(t *testing.T) {
	ps := testProfiles(t)
	q35 := fstest.MapFS{
		"sys/class/dmi/id/product_name": {Data: []byte("Standard PC (Q35 + ICH9, 2009)\n")},
		"sys/class/dmi/id/board_name":   {Data: []byte("\n")},
	}
	rpi4 := fstest.MapFS{
		"proc/device-tree/model":      {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")},
		"proc/device-tree/compatible": {Data: []byte("raspberrypi,4-model-b\x00brcm,bcm2711\x00")},
	}
	tests := []struct {
		name     string
		host     fstest.MapFS
		override string
		arch     string
		wantID   string
		reason   string
		err      error
	}{
		{
			name: "device-tree model, most specific rule wins", host: rpi4, arch: "arm64",
			wantID: "raspberrypi-4", reason: `device-tree model "Raspberry Pi 4 Model B Rev 1.4" matched raspberrypi-4`,
		},
		{
			name: "device-tree model, less specific", arch: "arm",
			host:   fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 3 Model B Plus Rev 1.3\x00")}},
			wantID: "raspberrypi", reason: `device-tree model "Raspberry Pi 3 Model B Plus Rev 1.3" matched raspberrypi`,
		},
		{
			name: "device-tree compatible, in the box's order", arch: "arm",
			host: fstest.MapFS{
				"proc/device-tree/model":      {Data: []byte("Some vendor board\x00")},
				"proc/device-tree/compatible": {Data: []byte("vendor,board\x00raspberrypi,4-model-b\x00brcm,bcm2835\x00")},
			},
			wantID: "raspberrypi-4", reason: `device-tree compatible "raspberrypi,4-model-b" matched raspberrypi-4`,
		},
		{
			name: "DMI of the QEMU lab guest", host: q35, arch: "amd64",
			wantID: "virtual-board", reason: `DMI product "Standard PC (Q35 + ICH9, 2009)" matched virtual-board`,
		},
		{
			name: "DMI product and board", arch: "amd64",
			host: fstest.MapFS{
				"sys/class/dmi/id/product_name": {Data: []byte("ACME Box\n")},
				"sys/class/dmi/id/board_name":   {Data: []byte("ACME-MB1\n")},
			},
			wantID: "acme-box", reason: `DMI product "ACME Box" and board "ACME-MB1" matched acme-box`,
		},
		{
			name: "DMI product without the board does not match", arch: "amd64",
			host:   fstest.MapFS{"sys/class/dmi/id/product_name": {Data: []byte("ACME Box\n")}},
			wantID: "generic-x86_64", reason: "no match: generic profile for amd64",
		},
		{
			name: "device tree before DMI", arch: "arm64",
			host: fstest.MapFS{
				"proc/device-tree/model":        rpi4["proc/device-tree/model"],
				"sys/class/dmi/id/product_name": q35["sys/class/dmi/id/product_name"],
			},
			wantID: "raspberrypi-4", reason: `device-tree model "Raspberry Pi 4 Model B Rev 1.4" matched raspberrypi-4`,
		},
		{
			name: "DMI board alone", arch: "amd64",
			host:   fstest.MapFS{"sys/class/dmi/id/board_name": {Data: []byte("ACME-MB2\n")}},
			wantID: "acme-mb2", reason: `DMI board "ACME-MB2" matched acme-mb2`,
		},
		{name: "nothing, arm64", host: fstest.MapFS{}, arch: "arm64", wantID: "generic-arm64", reason: "no match: generic profile for arm64"},
		{name: "nothing, arm", host: fstest.MapFS{}, arch: "arm", wantID: "generic-armv7", reason: "no match: generic profile for arm"},
		{name: "nothing, amd64", host: fstest.MapFS{}, arch: "amd64", wantID: "generic-x86_64", reason: "no match: generic profile for amd64"},
		{
			name: "unmatched device tree", arch: "arm64",
			host:   fstest.MapFS{"proc/device-tree/model": {Data: []byte("Hi3798MV200\x00")}},
			wantID: "generic-arm64", reason: "no match: generic profile for arm64",
		},
		{name: "nothing and no generic", host: fstest.MapFS{}, arch: "s390x", err: ErrNoProfile},
		{
			name: "override beats detection", host: rpi4, override: "virtual-board", arch: "arm64",
			wantID: "virtual-board", reason: `set in config: board = "virtual-board"`,
		},
		{name: "override auto detects", host: q35, override: "auto", arch: "amd64", wantID: "virtual-board", reason: `DMI product "Standard PC (Q35 + ICH9, 2009)" matched virtual-board`},
		{name: "unknown override", host: q35, override: "huawei-ec6108v9", arch: "amd64", err: ErrUnknownBoard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Detect(tt.host, ps, tt.override, tt.arch)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Detect error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if d.Profile.ID != tt.wantID || d.Reason != tt.reason {
				t.Errorf("Detect = %s, %q; want %s, %q", d.Profile.ID, d.Reason, tt.wantID, tt.reason)
			}
		})
	}
}

func TestDetectFacts(t *testing.T) {
	host := fstest.MapFS{
		"proc/device-tree/model":        {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")},
		"proc/device-tree/compatible":   {Data: []byte("raspberrypi,4-model-b\x00brcm,bcm2711\x00")},
		"sys/class/dmi/id/product_name": {Data: []byte("P\n")},
		"sys/class/dmi/id/board_name":   {Data: []byte("B\n")},
	}
	d, err := Detect(host, testProfiles(t), "virtual-board", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if d.Model != "Raspberry Pi 4 Model B Rev 1.4" || !slices.Equal(d.Compatible, []string{"raspberrypi,4-model-b", "brcm,bcm2711"}) || d.DMIProduct != "P" || d.DMIBoard != "B" {
		t.Errorf("facts = %q %q %q %q", d.Model, d.Compatible, d.DMIProduct, d.DMIBoard)
	}
}

func TestUnknownBoardError(t *testing.T) {
	_, err := Detect(fstest.MapFS{}, testProfiles(t), "nope", "arm64")
	want := `unknown board "nope"; known boards: acme-box, acme-mb2, amlogic-tvbox, generic-arm64, generic-armv7, generic-mipsle, generic-riscv64, generic-x86_64, huawei-ec6108v9c, raspberrypi, raspberrypi-4, raspberrypi-5, rockchip-tvbox, virtual-board, virtual-board-armhf`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	if ube, ok := errors.AsType[*UnknownBoardError](err); !ok || ube.ID != "nope" {
		t.Errorf("error %T is not *UnknownBoardError", err)
	}
}

func TestDetectUnreadable(t *testing.T) {
	host := fstest.MapFS{"proc/device-tree/model": {Mode: 0o755 | 1<<31}} // a directory where a file should be
	if _, err := Detect(host, testProfiles(t), "", "arm64"); err == nil || !strings.Contains(err.Error(), "cannot read /proc/device-tree/model") {
		t.Errorf("Detect on an unreadable file = %v, want an error", err)
	}
}

func TestFind(t *testing.T) {
	ps := testProfiles(t)
	if p, ok := Find(ps, "virtual-board"); !ok || p.Arch != "amd64" {
		t.Errorf("Find(virtual-board) = %+v, %v", p, ok)
	}
	if _, ok := Find(ps, "nope"); ok {
		t.Errorf("Find(nope) found something")
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadAll(t *testing.T) {
	t.Run("no extra dir", func(t *testing.T) {
		for _, dir := range []string{"", filepath.Join(t.TempDir(), "missing")} {
			ps, err := LoadAll(dir)
			builtin, _ := Builtin()
			if err != nil || len(ps) != len(builtin) {
				t.Errorf("LoadAll(%q) = %d profiles, %v", dir, len(ps), err)
			}
		}
	})
	t.Run("extras added and replacing a builtin", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"raspberrypi-4.toml": rpi,
			"virtual-board.toml": "id = \"virtual-board\"\nname = \"Our lab VM\"\narch = \"arm64\"\n[match]\ndmi_product = [\"QEMU virt\"]\n",
			"README":             "not a profile",
			".hidden.toml":       "ignored",
		})
		ps, err := LoadAll(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"amlogic-tvbox", "generic-arm64", "generic-armv7", "generic-mipsle", "generic-riscv64", "generic-x86_64",
			"huawei-ec6108v9c", "raspberrypi-4", "raspberrypi-5", "rockchip-tvbox", "virtual-board", "virtual-board-armhf"}
		if !slices.Equal(IDs(ps), want) {
			t.Errorf("ids = %q, want %q", IDs(ps), want)
		}
		vb, _ := Find(ps, "virtual-board")
		if vb.Name != "Our lab VM" || vb.Source != filepath.Join(dir, "virtual-board.toml") {
			t.Errorf("virtual-board not replaced: %+v", vb)
		}
		r, _ := Find(ps, "raspberrypi-4")
		if r.Source != filepath.Join(dir, "raspberrypi-4.toml") || !slices.Equal(r.Match.Model, []string{"Raspberry Pi 4"}) {
			t.Errorf("raspberrypi-4 = %+v", r)
		}
		d, err := Detect(fstest.MapFS{"sys/class/dmi/id/product_name": {Data: []byte("QEMU virt\n")}}, ps, "", "arm64")
		if err != nil || d.Profile.Name != "Our lab VM" {
			t.Errorf("Detect with the replaced profile = %+v, %v", d.Profile, err)
		}
	})

	tests := []struct {
		name  string
		files map[string]string
		want  []string // error lines, %s is the dir
	}{
		{
			name:  "syntax error",
			files: map[string]string{"acme.toml": "id = \"acme\"\nname = \"ACME\"\narch = \"arm\n"},
			want:  []string{"%s/acme.toml:3: cannot parse TOML: basic strings cannot have new lines"},
		},
		{
			name:  "unknown key",
			files: map[string]string{"acme.toml": "id = \"acme\"\nname = \"ACME\"\narch = \"arm\"\n[match]\nmodle = [\"ACME\"]\n"},
			want:  []string{"%s/acme.toml:5: match.modle: unknown key"},
		},
		{
			name:  "invalid field, at its line",
			files: map[string]string{"acme.toml": "id = \"acme\"\nname = \"ACME\"\narch = \"armhf\"\n"},
			want:  []string{`%s/acme.toml:3: board profile "acme": arch: "armhf" is not one of arm, arm64, amd64, riscv64, mipsle`},
		},
		{
			name:  "invalid rule entry",
			files: map[string]string{"acme.toml": "id = \"acme\"\nname = \"ACME\"\narch = \"arm\"\n\n[match]\ncompatible = [\n  \"acme,stb\",\n  \" \",\n]\n"},
			want:  []string{`%s/acme.toml:6: board profile "acme": match.compatible[1]: " " is empty or has surrounding spaces`},
		},
		{
			name:  "id not the file name",
			files: map[string]string{"acme.toml": "name = \"ACME\"\narch = \"arm\"\nid = \"acme-2\"\n"},
			want:  []string{`%s/acme.toml:3: board profile "acme-2": id: does not match the file name acme.toml`},
		},
		{
			name: "a second generic for an arch",
			files: map[string]string{
				"generic-arm64-2.toml": "id = \"generic-arm64-2\"\nname = \"Other generic\"\narch = \"arm64\"\n",
			},
			want: []string{`%s/generic-arm64-2.toml: board profile "generic-arm64-2": arch: arm64 already has a generic profile, generic-arm64 (replace it by giving a file its id)`},
		},
		{
			name: "every bad file is named",
			files: map[string]string{
				"a.toml": "id = \"a\"\nname = \"\"\narch = \"arm\"\n",
				"b.toml": "id = \"b\"\n[match\n",
				"c.toml": rpiAny, // good, but the id is not c
			},
			want: []string{
				`%s/a.toml:2: board profile "a": name: missing`,
				`%s/b.toml:2: cannot parse TOML: expected ']' to close table name`,
				`%s/c.toml:1: board profile "raspberrypi": id: does not match the file name c.toml`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			ps, err := LoadAll(dir)
			if err == nil {
				t.Fatalf("LoadAll = %q, want an error", IDs(ps))
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "%s", dir))
			}
			if err.Error() != strings.Join(want, "\n") {
				t.Errorf("LoadAll error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
			}
			if _, ok := errors.AsType[*FileError](err); !ok {
				t.Errorf("error %T holds no *FileError", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{rpi, rpiAny, acmeDMI, "id = \"a\"\n[match\n", "[match]\nmodel = [\"\", 1]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse("fuzz.toml", "fuzz", data)
		if err == nil && p.Validate() != nil {
			t.Errorf("parse accepted an invalid profile: %+v", p)
		}
		keyLines(data).find("match.model[0]")
	})
}
