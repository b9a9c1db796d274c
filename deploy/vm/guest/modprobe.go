package guest

import (
	"os/exec"
	"strings"
	"testing"
)

// Modprobe loads kernel modules (from the Debian kernel bound onto
// /lib/modules); it fails t when one cannot be loaded.
func Modprobe(t testing.TB, modules ...string) {
	t.Helper()
	if len(modules) == 0 {
		return
	}
	if out, err := exec.Command("modprobe", append([]string{"-a"}, modules...)...).CombinedOutput(); err != nil {
		t.Fatalf("cannot load %s: %v: %s", strings.Join(modules, " "), err, out)
	}
}

// ModprobeWith loads one module with parameters, e.g.
// ModprobeWith(t, "mac80211_hwsim", "radios=2").
func ModprobeWith(t testing.TB, module string, params ...string) {
	t.Helper()
	if out, err := exec.Command("modprobe", append([]string{module}, params...)...).CombinedOutput(); err != nil {
		t.Fatalf("cannot load %s %s: %v: %s", module, strings.Join(params, " "), err, out)
	}
}

// Modules needed for features.
var (
	USBStorageModules = []string{"xhci_pci", "usb_storage", "sd_mod", "vfat", "nls_cp437", "nls_iso8859_1"}
	VLANModules       = []string{"8021q", "veth", "dummy"}
)
