package board

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/boxagent/boxagent/internal/errlist"
)

func TestFirmwareValidate(t *testing.T) {
	stick := Firmware{
		Method: FirmwareUSBStick, Package: "update.zip", ExtraFiles: []string{"aml_autoscript"}, Filesystem: "vfat",
		Verify: "signapk", Keys: []string{"/etc/boxagent/keys/release.x509.pem"},
		RequiredEntries: []string{"META-INF/com/google/android/update-binary"}, WaitSeconds: 2, Instructions: "hold reset",
	}
	tests := []struct {
		name   string
		change func(f *Firmware)
		want   []string
	}{
		{"good", func(f *Firmware) {}, nil},
		{"absent table", func(f *Firmware) { *f = Firmware{} }, nil},
		{"none", func(f *Firmware) { *f = Firmware{Method: FirmwareNone, Instructions: "use apt", Rollback: "re-flash"} }, nil},
		{"none with a package", func(f *Firmware) { f.Method = FirmwareNone }, []string{
			`firmware.method: "none" takes no package, extra_files, filesystem, verify, keys, required_entries or wait_seconds`}},
		{"no method", func(f *Firmware) { f.Method = "" }, []string{`firmware.method: "" is not "usb-stick" or "none"`}},
		{"package in a folder", func(f *Firmware) { f.Package = "dir/update.zip" }, []string{`firmware.package: "dir/update.zip" is not a file name for the root of a stick`}},
		{"extra file twice", func(f *Firmware) { f.ExtraFiles = []string{"update.zip"} }, []string{`firmware.extra_files[0]: "update.zip" is not another file name for the root of a stick`}},
		{"extra content of no extra file", func(f *Firmware) {
			f.ExtraText, f.ExtraUBootScript = map[string]string{"x.aml": "a"}, map[string]string{"y": "b"}
		}, []string{`firmware.extra_text: "x.aml" is not one of extra_files, or is given twice`, `firmware.extra_uboot_script: "y" is not one of extra_files`}},
		{"extra content twice", func(f *Firmware) {
			f.ExtraText, f.ExtraUBootScript = map[string]string{"aml_autoscript": "a"}, map[string]string{"aml_autoscript": "b"}
		}, []string{`firmware.extra_text: "aml_autoscript" is not one of extra_files, or is given twice`}},
		{"fat32 is not a mount type", func(f *Firmware) { f.Filesystem = "fat32" }, []string{`firmware.filesystem: "fat32" is not one of vfat, exfat, ext4`}},
		{"verify", func(f *Firmware) { f.Verify = "md5" }, []string{`firmware.verify: "md5" is not one of signapk, sha256, minisign, ed25519, none`}},
		{"relative key", func(f *Firmware) { f.Keys = []string{"keys/a.pem"} }, []string{`firmware.keys[0]: "keys/a.pem" is not a clean absolute path`}},
		{"absolute entry", func(f *Firmware) { f.RequiredEntries = []string{"/META-INF"} }, []string{`firmware.required_entries[0]: "/META-INF" is not a relative zip entry name`}},
		{"wait", func(f *Firmware) { f.WaitSeconds = -1 }, []string{`firmware.wait_seconds: -1 is out of range 0..600`}},
		{"instructions", func(f *Firmware) { f.Instructions = " \n" }, []string{`firmware.instructions: missing: say what the user does at the box`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Profile{ID: "acme", Name: "ACME", Arch: "arm", Firmware: stick}
			tt.change(&p.Firmware)
			var got []string
			for _, e := range errlist.Flatten(p.Validate()) {
				ie, ok := errors.AsType[*InvalidError](e)
				if !ok {
					t.Fatalf("%v is %T", e, e)
				}
				got = append(got, ie.Field+": "+ie.Msg)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFirmwareLine: a bad [firmware] key in a file is reported at its line.
func TestFirmwareLine(t *testing.T) {
	doc := "id = \"acme\"\nname = \"ACME\"\narch = \"arm\"\n\n[firmware]\nmethod = \"usb-stick\"\npackage = \"update.zip\"\nfilesystem = \"fat\"\nverify = \"none\"\ninstructions = \"x\"\n"
	_, err := parse("acme.toml", "acme", []byte(doc))
	if err == nil || !strings.HasPrefix(err.Error(), "acme.toml:8: ") {
		t.Errorf("parse = %v, want an error at line 8", err)
	}
}

func TestRealBoards(t *testing.T) {
	ps, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model, compatible, arch, want string
	}{
		{"Huawei EC6108V9C\x00", "hisilicon,hi3798mv100\x00", "arm", "huawei-ec6108v9c"},
		{"", "hisilicon,hi3798mv100-ec6108v9c\x00hisilicon,hi3798mv100\x00", "arm", "huawei-ec6108v9c"},
		{"Raspberry Pi 4 Model B Rev 1.5\x00", "raspberrypi,4-model-b\x00brcm,bcm2711\x00", "arm64", "raspberrypi-4"},
		{"Raspberry Pi Compute Module 4 Rev 1.0\x00", "", "arm64", "raspberrypi-4"},
		{"Raspberry Pi 5 Model B Rev 1.0\x00", "raspberrypi,5-model-b\x00brcm,bcm2712\x00", "arm64", "raspberrypi-5"},
		{"Amlogic Meson GXL (S905X) P212 Development Board\x00", "amlogic,p212\x00amlogic,s905x\x00amlogic,meson-gxl\x00", "arm64", "amlogic-tvbox"},
		{"Rockchip RK3328 box\x00", "rockchip,rk3328-box\x00rockchip,rk3328\x00", "arm64", "rockchip-tvbox"},
		{"Raspberry Pi 3 Model B Plus Rev 1.3\x00", "raspberrypi,3-model-b-plus\x00brcm,bcm2837\x00", "arm64", "generic-arm64"},
	}
	for _, tt := range tests {
		host := fstest.MapFS{}
		if tt.model != "" {
			host["proc/device-tree/model"] = &fstest.MapFile{Data: []byte(tt.model)}
		}
		if tt.compatible != "" {
			host["proc/device-tree/compatible"] = &fstest.MapFile{Data: []byte(tt.compatible)}
		}
		d, err := Detect(host, ps, "", tt.arch)
		if err != nil || d.Profile.ID != tt.want {
			t.Errorf("Detect(%q, %q) = %s (%s), %v; want %s", tt.model, tt.compatible, d.Profile.ID, d.Reason, err, tt.want)
		}
	}
	for _, p := range ps {
		f := p.Firmware
		switch {
		case p.Generic():
			if !f.IsZero() {
				t.Errorf("%s: a generic profile says nothing of recovery", p.ID)
			}
		case f.IsZero():
			t.Errorf("%s: no [firmware] table", p.ID)
		case f.Method == FirmwareUSBStick && f.WaitSeconds > 0 && !strings.Contains(f.Instructions, "BEFORE powering on"):
			t.Errorf("%s: recovery waits %d s only, the instructions must say to insert the stick first", p.ID, f.WaitSeconds)
		}
	}
}
