package provision

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzNetworkConfig: any network-config on the boot partition (anyone's at
// flash time) converts or is refused with an error; never a panic.
func FuzzNetworkConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", NetworkConfigName)); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"))
	f.Add([]byte(`{"network": {"version": 2, "ethernets": {"e": {"dhcp4": false}}}}`))
	f.Add([]byte("network:\n  version: 2\n  vlans:\n    v:\n      id: 45\n      link: eth0\n      routes: [{to: default, via: 10.0.0.1, metric: 5}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nc, err := ParseNetworkConfig(b)
		if err == nil && nc == nil {
			t.Fatal("no config and no error")
		}
	})
}
