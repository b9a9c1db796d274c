package wifi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHotspotCredentialsKept: the password printed once stays across
// restarts, and is made anew for another board name or a file that
// holds no usable one.
func TestHotspotCredentialsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "wifi-setup.json")
	c1, err := LoadHotspotCredentials(path, "boxagent-0001")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file %v, %v", fi, err)
	}
	if c2, _ := LoadHotspotCredentials(path, "boxagent-0001"); c2 != c1 {
		t.Errorf("the password changed across calls: %+v %+v", c1, c2)
	}
	for _, c := range []struct {
		name, ssid, file string
	}{
		{"another board name", "boxagent-0002", ""},
		{"not JSON", "boxagent-0001", "boxagent-0001 abcdefghjkmn"},
		{"a short password", "boxagent-0001", `{"ssid":"boxagent-0001","password":"abcdefgh"}`},
		{"no WPA2 passphrase", "boxagent-0001", `{"ssid":"boxagent-0001","password":"abcdefghjkmn\u00e9"}`},
		{"too large", "boxagent-0001", `{"ssid":"boxagent-0001","password":"abcdefghjkmn","x":"` + strings.Repeat("x", 5000) + `"}`},
	} {
		if c.file != "" {
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, err := LoadHotspotCredentials(path, c.ssid)
		if err != nil || got.SSID != c.ssid || got.Password == c1.Password || len(got.Password) != HotspotPasswordLength {
			t.Errorf("%s: %+v, %v: want a new password for %s", c.name, got, err, c.ssid)
		}
		if again, _ := LoadHotspotCredentials(path, c.ssid); again != got {
			t.Errorf("%s: the new password was not kept: %+v, then %+v", c.name, got, again)
		}
	}
}
