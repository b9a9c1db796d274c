package provision

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var now = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// image makes a small Debian-like root filesystem.
func image(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/passwd":                         "root:x:0:0:root:/root:/bin/bash\nmessagebus:x:100:107::/nonexistent:/usr/sbin/nologin\n",
		"etc/group":                          "root:x:0:\nshadow:x:42:\nmessagebus:x:107:\nbluetooth:x:108:\n",
		"etc/shadow":                         "root:*:19000:0:99999:7:::\nmessagebus:!:19000::::::\n",
		"etc/gshadow":                        "root:*::\nshadow:*::\nmessagebus:!::\nbluetooth:!::\n",
		"etc/hosts":                          "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost\n",
		"etc/hostname":                       "debian\n",
		"usr/share/zoneinfo/Europe/Berlin":   "TZif2 (a stand-in)\n",
		"usr/share/zoneinfo/Etc/UTC":         "TZif2 (a stand-in)\n",
		"usr/lib/systemd/systemd":            "(a stand-in for systemd)\n",
		"usr/sbin/nologin":                   "(a stand-in)\n",
		"etc/boxagent/keys/release.x509.pem": "(a stand-in for the release certificate)\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "etc/shadow"), 0o640)
	os.Chmod(filepath.Join(root, "etc/gshadow"), 0o640)
	os.Symlink("/usr/share/zoneinfo/Etc/UTC", filepath.Join(root, "etc/localtime"))
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	return root
}

// fakeELF writes the header of an ELF executable for machine.
func fakeELF(t *testing.T, machine uint16) string {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine)
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64)
	p := filepath.Join(t.TempDir(), "boxagent")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const emX86_64, emAArch64 = 62, 183

// salt makes password hashes repeatable in tests.
type salt struct{}

func (salt) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func options(t *testing.T, root string) Options {
	return Options{Root: root, Source: "testdata/provision.toml", Now: func() time.Time { return now }, Rand: salt{},
		InstallBinary: fakeELF(t, emX86_64)}
}

func load(t *testing.T, name string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("testdata/"+name, data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// tree lists a root: kind, mode, owner (as root only), path, and the
// contents of small text files with secrets fingerprinted.
func tree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, _ := os.Lstat(p)
		own := ""
		if os.Geteuid() == 0 {
			uid, gid := owner(fi)
			own = fmt.Sprintf(" %d:%d", uid, gid)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, "l %s -> %s\n", rel, l)
		case fi.IsDir():
			fmt.Fprintf(&b, "d %04o%s %s/\n", fi.Mode().Perm(), own, rel)
		default:
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "f %04o%s %s", fi.Mode().Perm(), own, rel)
			switch {
			case strings.HasSuffix(rel, "journal.db"):
				b.WriteString(" (bbolt)\n")
			case strings.HasSuffix(rel, config.FingerprintKeyFile):
				fmt.Fprintf(&b, " (%d random bytes)\n", len(data))
			case bytes.HasPrefix(data, []byte("\x7fELF")):
				fmt.Fprintf(&b, " (ELF, sha256 %x)\n", sha256.Sum256(data))
			case strings.Contains(rel, "systemd/system/boxagent"):
				b.WriteString(" (the embedded unit)\n")
			default:
				b.WriteString("\n")
				for _, l := range strings.Split(strings.TrimSuffix(hideSecrets(string(data)), "\n"), "\n") {
					fmt.Fprintf(&b, "    %s\n", l)
				}
			}
		}
		return nil
	})
	return b.String()
}

var fingerprints = regexp.MustCompile(`hmac-sha256:[0-9a-f]{16}`)

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		got = fingerprints.ReplaceAllString(got, "hmac-sha256:FINGERPRINT")
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Fingerprints are keyed by the image's random key.
	got = fingerprints.ReplaceAllString(got, "hmac-sha256:FINGERPRINT")
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestApplyGolden(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the golden tree records owners: needs root (CI runs as root)")
	}
	root := image(t)
	f := load(t, "provision.toml")
	before := tree(t, root)

	o := options(t, root)
	o.DryRun = true
	res, err := Apply(f, o)
	if err != nil {
		t.Fatal(err)
	}
	if tree(t, root) != before {
		t.Fatalf("--dry-run wrote to the image")
	}
	var diff bytes.Buffer
	res.WriteDiff(&diff)
	golden(t, "dry-run.diff", diff.String())
	for _, secret := range []string{"correct horse", "home-wifi-secret"} {
		if strings.Contains(diff.String(), secret) {
			t.Errorf("the diff shows the secret %q", secret)
		}
	}

	o.DryRun = false
	res, err = Apply(f, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Operation != 1 || len(res.Changes) == 0 {
		t.Errorf("operation %d, %d changes", res.Operation, len(res.Changes))
	}
	golden(t, "tree.golden", tree(t, root))

	j, err := journal.Open(filepath.Join(root, "var/lib/boxagent/journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	op, err := j.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if op.Kind != "provision.apply" || op.Origin != journal.OriginProvision || op.State != journal.StateDone || op.Snapshot.Board != "virtual-board" {
		t.Errorf("journalled %s %s %s board %q", op.Kind, op.Origin, op.State, op.Snapshot.Board)
	}
	all := string(op.Request) + string(op.Snapshot.Config) + string(op.Result)
	for _, secret := range []string{"correct horse", "home-wifi-secret", "$argon2id"} {
		if strings.Contains(all, secret) {
			t.Errorf("the journal holds %q in clear", secret)
		}
	}
	// The page password's plaintext is not fingerprinted beside its hash:
	// one more thing to test guesses against.
	if fp := config.Fingerprint("correct horse battery"); strings.Contains(all, fp) {
		t.Errorf("the journal holds a fingerprint of the plaintext page password (%s)", fp)
	}
	if !strings.Contains(string(op.Snapshot.Config), `"password_hash":"hmac-sha256:`) {
		t.Errorf("snapshot config = %s, want the hash fingerprinted", op.Snapshot.Config)
	}
}

func TestIdempotent(t *testing.T) {
	root := image(t)
	f := load(t, "provision.toml")
	o := options(t, root)
	o.Rand = nil // real salts: the second run must keep the first hash
	if _, err := Apply(f, o); err != nil {
		t.Fatal(err)
	}
	first := tree(t, root)
	cfg1, _ := os.ReadFile(filepath.Join(root, configFile))
	res, err := Apply(f, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 || res.Operation != 0 {
		var b bytes.Buffer
		res.WriteDiff(&b)
		t.Errorf("second run: %d changes, operation %d:\n%s", len(res.Changes), res.Operation, b.String())
	}
	if second := tree(t, root); second != first {
		t.Errorf("the second run changed the image")
	}
	cfg2, _ := os.ReadFile(filepath.Join(root, configFile))
	if !bytes.Equal(cfg1, cfg2) || !bytes.Contains(cfg1, []byte("$argon2id$")) {
		t.Errorf("config.toml changed or lacks the hash:\n%s", cfg2)
	}
	// A changed input changes only what it names.
	f.Hostname = "kitchen"
	if res, err = Apply(f, o); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range res.Changes {
		paths = append(paths, c.Path)
	}
	if got := strings.Join(paths, " "); got != "/etc/hostname /etc/hosts" || res.Operation != 2 {
		t.Errorf("after a new hostname: changes %s, operation %d", got, res.Operation)
	}
}

func TestRefusals(t *testing.T) {
	good, err := os.ReadFile("testdata/provision.toml")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	tests := []struct {
		name string
		doc  string
		opts func(o *Options)
		want string
	}{
		{"running system", string(good), func(o *Options) { o.Root = "/" }, "refusing to provision the running system: --root / is this machine's own root; pass --yes"},
		{"malformed", edit(`hostname = "living-room"`, `hostname = "living-room`), nil, "testdata/provision.toml:2: "},
		{"unknown key", edit(`timezone =`, `timzone =`), nil, "testdata/provision.toml:4: timzone: unknown key"},
		{"unknown board", edit(`"virtual-board"`, `"huawei-ec6108"`), nil, `board: unknown board "huawei-ec6108"; known boards: amlogic-tvbox,`},
		{"short password", edit(`"correct horse battery"`, `"1234567"`), nil, "http.password: too short: at least 8 characters"},
		{"password and hash", edit(`password = "correct horse battery"`, "password = \"correct horse battery\"\npassword_hash = \"$argon2id$x\""), nil, "give password or password_hash, not both"},
		{"LAN without password", edit(`password = "correct horse battery"`, ``), nil, "refuse to listen on \"0.0.0.0:8080\""},
		{"bad hash", edit(`password = "correct horse battery"`, `password_hash = "plain"`), nil, "not an argon2id PHC string"},
		{"short psk", edit(`"home-wifi-secret"`, `"short"`), nil, "network.wifi[0].psk: 5 characters is too short: a passphrase has 8 to 63"},
		{"long ssid", edit(`ssid = "home"`, `ssid = "`+strings.Repeat("x", 33)+`"`), nil, "network.wifi[0].ssid: \"" + strings.Repeat("x", 33) + "\" is 33 bytes long; an SSID is 1 to 32 bytes"},
		{"vlan", edit(`vlan = 45`, `vlan = 4095`), nil, "network.uplink[0].vlan: 4095 is out of range 1..4094"},
		{"uplink mac", edit(`mac = "02:00:00:45:00:01"`, `mac = "01:00:5e:00:00:01"`), nil, "network.uplink[0].mac: 01:00:5e:00:00:01 is a multicast address"},
		{"uplink method", edit(`method = "dhcp"`, `method = "slaac"`), nil, `network.uplink[0].ipv4.method: "slaac" is not dhcp, static, pppoe or none`},
		{"pppoe credentials", edit(`default_route = false`, "default_route = false\n[network.uplink.pppoe]\nusername = \"alice\""), nil, "network.uplink[0].pppoe.username: "},
		{"mac", edit(`"00:1B:66:AA:BB:CC"`, `"00:1B:66:AA:BB"`), nil, "bluetooth.headset[0].address: \"00:1B:66:AA:BB\" is not a Bluetooth address"},
		{"ssh key", edit(`"ssh-ed25519 AAAAC3`, `"ssh-ed25519 BBBBC3`), nil, "ssh_authorized_keys[0]: the key's data is not a ssh-ed25519 key"},
		{"timezone", edit(`Europe/Berlin`, `Europe/Atlantis`), nil, `timezone: "Europe/Atlantis" is not in the image's /usr/share/zoneinfo`},
		{"binary arch", string(good), func(o *Options) { o.InstallBinary = fakeELF(t, emAArch64) }, "is built for arm64, but board virtual-board is amd64"},
		{"no binary", string(good), func(o *Options) { o.InstallBinary = "" }, "the image has no /usr/bin/boxagent: pass --install-binary"},
		{"not a root", string(good), func(o *Options) {
			o.Root = t.TempDir()
			os.MkdirAll(filepath.Join(o.Root, "etc/boxagent/keys"), 0o755)
			os.WriteFile(filepath.Join(o.Root, "etc/boxagent/keys/release.x509.pem"), nil, 0o644)
		}, "the root has no /etc/passwd"},
		{"key not in the image", edit(`"/etc/boxagent/keys/release.x509.pem"`, `"/etc/boxagent/keys/gone.pem"`), nil,
			"firmware.keys[0]: /etc/boxagent/keys/gone.pem is not a file in the image: install it first, or give the certificate inline"},
		{"invalid config in the image", string(good), func(o *Options) {
			os.MkdirAll(filepath.Join(o.Root, "etc/boxagent"), 0o700)
			os.WriteFile(filepath.Join(o.Root, configFile), []byte("[journal]\nkeep = 1\n"), 0o600)
		}, "the image's config is invalid; fix or remove it first:\n/etc/boxagent/config.toml:2: journal.keep: 1 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := image(t)
			o := options(t, root)
			if tt.opts != nil {
				tt.opts(&o)
			}
			before := tree(t, root)
			f, err := Parse("testdata/provision.toml", []byte(tt.doc))
			if err == nil {
				_, err = Apply(f, o)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
			if tt.name == "running system" && !errors.Is(err, ErrRunningSystem) {
				t.Errorf("%v is not ErrRunningSystem", err)
			}
			if tree(t, root) != before {
				t.Errorf("a refused provisioning wrote to the image")
			}
		})
	}
}

// TestSymlinkInImage: an absolute symlink in the image points at the host
// at flash time; provisioning replaces the link, never writes through it.
func TestSymlinkInImage(t *testing.T) {
	root := image(t)
	host := filepath.Join(t.TempDir(), "host-hostname")
	os.WriteFile(host, []byte("host\n"), 0o644)
	os.Remove(filepath.Join(root, "etc/hostname"))
	os.Symlink(host, filepath.Join(root, "etc/hostname"))
	if _, err := Apply(load(t, "provision.toml"), options(t, root)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(host); string(data) != "host\n" {
		t.Errorf("provisioning wrote through a symlink to %s: %q", host, data)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(data) != "living-room\n" {
		t.Errorf("/etc/hostname = %q", data)
	}
}

// TestJournalHeld: an agent running on the target holds its journal; the
// run stops before it writes anything.
func TestJournalHeld(t *testing.T) {
	root := image(t)
	j, err := journal.Open(filepath.Join(root, "var/lib/boxagent/journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	before := tree(t, root)
	_, err = Apply(load(t, "provision.toml"), options(t, root))
	if !errors.Is(err, journal.ErrLocked) || !strings.Contains(err.Error(), "stop the agent first") {
		t.Fatalf("error = %v, want the journal locked", err)
	}
	if tree(t, root) != before {
		t.Errorf("a run that could not journal wrote to the image")
	}
}
