package board

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Firmware is a profile's [firmware] table: what the board's recovery
// expects on a USB stick, how a package is verified before it is staged,
// and what the user must do at the box. Staging (the firmware package and
// the daemon) reads it; the profile only states the facts.
type Firmware struct {
	// Method is "usb-stick" (recovery reads a package from a USB stick)
	// or "none" (the board has no such recovery: Instructions say what
	// applies instead). Empty means the profile says nothing of recovery.
	Method string `toml:"method" json:"method,omitempty"`
	// Package is the file name recovery looks for at the stick's root.
	Package string `toml:"package" json:"package,omitempty"`
	// ExtraFiles are other files that must sit next to it at the root
	// (Amlogic's aml_autoscript, factory_update_param.aml).
	ExtraFiles []string `toml:"extra_files" json:"extra_files,omitempty"`
	// ExtraText and ExtraUBootScript give the bytes of extra files, by
	// name, for packages that do not carry them at their root (a
	// package's own file wins): a text as it is, or a U-Boot script that
	// staging wraps as `mkimage -T script` does.
	ExtraText        map[string]string `toml:"extra_text" json:"extra_text,omitempty"`
	ExtraUBootScript map[string]string `toml:"extra_uboot_script" json:"extra_uboot_script,omitempty"`
	// Filesystem is the mount type of the stick's partition recovery can
	// read: "vfat" (FAT16/FAT32), "exfat" or "ext4".
	Filesystem string `toml:"filesystem" json:"filesystem,omitempty"`
	// Verify is how a package is checked before and after it is written:
	// "signapk", "sha256", "minisign", "ed25519" or "none".
	Verify string `toml:"verify" json:"verify,omitempty"`
	// Keys are absolute paths, on the box, of the certificates or public
	// keys packages must be signed with. Empty means the box's own keys
	// are not known: they come from the config's [firmware] keys.
	Keys []string `toml:"keys" json:"keys,omitempty"`
	// RequiredEntries are zip entries a package must hold for recovery to
	// run it.
	RequiredEntries []string `toml:"required_entries" json:"required_entries,omitempty"`
	// WaitSeconds is how long recovery looks for the stick before it
	// gives up; 0 means it waits for the user (a menu).
	WaitSeconds int `toml:"wait_seconds" json:"wait_seconds,omitempty"`
	// Instructions are shown to the user once the package is staged: the
	// key sequence and menu entries of the board's recovery.
	Instructions string `toml:"instructions" json:"instructions,omitempty"`
	// Rollback says how to go back to the previous firmware.
	Rollback string `toml:"rollback" json:"rollback,omitempty"`
}

// Firmware methods.
const (
	FirmwareUSBStick = "usb-stick"
	FirmwareNone     = "none"
)

// Values the [firmware] table accepts.
var (
	FirmwareFilesystems = []string{"vfat", "exfat", "ext4"}
	FirmwareVerify      = []string{"signapk", "sha256", "minisign", "ed25519", "none"}
)

// MaxWaitSeconds bounds wait_seconds: a recovery that waits longer waits
// for the user.
const MaxWaitSeconds = 600

// IsZero reports a profile without a [firmware] table.
func (f Firmware) IsZero() bool {
	return f.Method == "" && f.Package == "" && len(f.ExtraFiles) == 0 && len(f.ExtraText) == 0 && len(f.ExtraUBootScript) == 0 && f.Filesystem == "" && f.Verify == "" &&
		len(f.Keys) == 0 && len(f.RequiredEntries) == 0 && f.WaitSeconds == 0 && f.Instructions == "" && f.Rollback == ""
}

// validate reports the problems of the [firmware] table through bad.
func (f Firmware) validate(bad func(field, format string, args ...any)) {
	if f.IsZero() {
		return
	}
	switch f.Method {
	case FirmwareUSBStick:
		if !stickName(f.Package) {
			bad("firmware.package", "%q is not a file name for the root of a stick", f.Package)
		}
		for i, x := range f.ExtraFiles {
			if !stickName(x) || x == f.Package {
				bad(fmt.Sprintf("firmware.extra_files[%d]", i), "%q is not another file name for the root of a stick", x)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(f.ExtraText)) {
			if _, twice := f.ExtraUBootScript[name]; twice || !slices.Contains(f.ExtraFiles, name) {
				bad("firmware.extra_text", "%q is not one of extra_files, or is given twice", name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(f.ExtraUBootScript)) {
			if !slices.Contains(f.ExtraFiles, name) {
				bad("firmware.extra_uboot_script", "%q is not one of extra_files", name)
			}
		}
		if !slices.Contains(FirmwareFilesystems, f.Filesystem) {
			bad("firmware.filesystem", "%q is not one of %s", f.Filesystem, strings.Join(FirmwareFilesystems, ", "))
		}
		if !slices.Contains(FirmwareVerify, f.Verify) {
			bad("firmware.verify", "%q is not one of %s", f.Verify, strings.Join(FirmwareVerify, ", "))
		}
		for i, k := range f.Keys {
			if !path.IsAbs(k) || path.Clean(k) != k {
				bad(fmt.Sprintf("firmware.keys[%d]", i), "%q is not a clean absolute path", k)
			}
		}
		for i, e := range f.RequiredEntries {
			if e == "" || path.IsAbs(e) || path.Clean(e) != e || strings.HasPrefix(e, "../") {
				bad(fmt.Sprintf("firmware.required_entries[%d]", i), "%q is not a relative zip entry name", e)
			}
		}
		if f.WaitSeconds < 0 || f.WaitSeconds > MaxWaitSeconds {
			bad("firmware.wait_seconds", "%d is out of range 0..%d", f.WaitSeconds, MaxWaitSeconds)
		}
	case FirmwareNone:
		if f.Package != "" || len(f.ExtraFiles) > 0 || len(f.ExtraText) > 0 || len(f.ExtraUBootScript) > 0 || f.Filesystem != "" || f.Verify != "" ||
			len(f.Keys) > 0 || len(f.RequiredEntries) > 0 || f.WaitSeconds != 0 {
			bad("firmware.method", "%q takes no package, extra_files, filesystem, verify, keys, required_entries or wait_seconds", f.Method)
		}
	default:
		bad("firmware.method", "%q is not %q or %q", f.Method, FirmwareUSBStick, FirmwareNone)
	}
	if strings.TrimSpace(f.Instructions) == "" {
		bad("firmware.instructions", "missing: say what the user does at the box")
	}
}

// stickName is a plain file name, as recovery looks for it at the root of
// a FAT stick: no directory, no characters FAT refuses.
func stickName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	return !strings.ContainsAny(s, "/\\:*?\"<>|\x00") && strings.TrimSpace(s) == s
}
