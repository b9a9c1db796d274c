package provision

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/deploy/systemd"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/internal/password"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// Options say where and how to apply a provision file.
type Options struct {
	// Root is the target root filesystem; "" and "/" are the running
	// system, refused unless Yes or FirstBoot.
	Root string
	// DryRun computes the changes and writes nothing.
	DryRun bool
	// Yes allows the running system as Root.
	Yes bool
	// FirstBoot marks the first-boot run, whose target is the running
	// system by design.
	FirstBoot bool
	// InstallBinary is a boxagent binary to install as /usr/bin/boxagent,
	// with the units if the image has none.
	InstallBinary string
	// Source names the input in errors and in the journal.
	Source string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand gives password salts; nil means crypto/rand.
	Rand io.Reader
	// SetHostname sets the running system's host name (first boot); nil
	// leaves it to the next boot.
	SetHostname func(string) error
}

// Result is what Apply did, or would do.
type Result struct {
	Root      string           `json:"root"`
	DryRun    bool             `json:"dry_run,omitempty"`
	Changes   []*Change        `json:"changes"`
	Notes     []string         `json:"notes,omitempty"`
	Operation uint64           `json:"operation,omitempty"`
	Snapshot  journal.Snapshot `json:"snapshot"`

	acc accounts
	// newKey is the fingerprint key made for an image without one,
	// written by commit.
	newKey []byte
}

// ErrRunningSystem is returned for the running system as target without
// Options.Yes.
var ErrRunningSystem = errors.New("refusing to provision the running system")

// Paths in the image.
const (
	configFile = "etc/boxagent/config.toml"
	keysDir    = "etc/boxagent/keys"
	wantsDir   = "etc/systemd/system/multi-user.target.wants"
	binaryFile = "usr/bin/boxagent"
)

// Apply validates f against the image at o.Root, then makes the image
// match it. Nothing is written when anything is wrong; a second run with
// the same input changes nothing. Unless it is a dry run or nothing
// changed, the run is a journalled operation in the image's journal.
func Apply(f *File, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Source == "" {
		o.Source = "provision.toml"
	}
	rootPath := o.Root
	if rootPath == "" {
		rootPath = "/"
	}
	running, err := sameFile(rootPath, "/")
	if err != nil {
		return nil, err
	}
	if running && !o.Yes && !o.FirstBoot {
		return nil, fmt.Errorf("%w: --root %s is this machine's own root; pass --yes if you mean it", ErrRunningSystem, rootPath)
	}
	r, err := os.OpenRoot(rootPath)
	if err != nil {
		return nil, fmt.Errorf("cannot open the root %s: %w", rootPath, err)
	}
	defer r.Close()
	newKey, err := useImageKey(r)
	if err != nil {
		return nil, err
	}
	res := &Result{Root: rootPath, DryRun: o.DryRun, newKey: newKey}
	entries, cfg, err := plan(r, rootPath, f, o, res)
	if err != nil {
		return nil, err
	}
	chown := os.Geteuid() == 0
	if !chown {
		res.Notes = append(res.Notes, "not running as root: file owners are left as they are")
	}
	for _, e := range entries {
		c, err := compare(r, e, chown)
		if err != nil {
			return nil, err
		}
		if c != nil {
			res.Changes = append(res.Changes, c)
		}
	}
	res.Snapshot = journal.Snapshot{Revision: cfg.Revision(), Board: cfg.Board, Config: cfg.Snapshot()}
	if o.DryRun || len(res.Changes) == 0 {
		return res, nil
	}
	return res, commit(r, rootPath, f, o, res, cfg, chown)
}

// commit writes the changes as one journalled operation.
func commit(r *os.Root, rootPath string, f *File, o Options, res *Result, cfg *config.Config, chown bool) error {
	// The journal comes first, so that a journal held by a running agent
	// stops the run before anything is written. os.Root creates its
	// folder: a symlink out of the image fails here, not on the host.
	if err := r.MkdirAll("var/lib", 0o755); err != nil {
		return fmt.Errorf("cannot create /var/lib: %w", err)
	}
	if err := r.Mkdir("var/lib/boxagent", 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create /var/lib/boxagent: %w", err)
	}
	// The journal's folder is opened through the root (no step out of
	// the image) and the journal under it by that descriptor, its own
	// name without following a link.
	dir, err := r.Open("var/lib/boxagent")
	if err != nil {
		return fmt.Errorf("cannot open /var/lib/boxagent: %w", err)
	}
	defer dir.Close()
	if fi, err := dir.Stat(); err != nil || !fi.IsDir() {
		return fmt.Errorf("cannot open the image's journal: /var/lib/boxagent is not a folder")
	}
	j, err := journal.Open(fmt.Sprintf("/proc/self/fd/%d/journal.db", dir.Fd()),
		journal.Options{Keep: cfg.Journal.Keep, Now: o.Now, NoFollow: true})
	if err != nil {
		return fmt.Errorf("cannot open the image's journal (stop the agent first if it runs there): %w", err)
	}
	defer j.Close()
	if res.newKey != nil {
		uid, gid := -1, -1
		if chown {
			uid, gid = res.acc.uid, res.acc.gid
		}
		if err := writeImageKey(r, res.newKey, uid, gid); err != nil {
			return err
		}
	}
	mode := "offline"
	if o.FirstBoot {
		mode = "first-boot"
	}
	var paths []string
	for _, c := range res.Changes {
		paths = append(paths, c.Path)
	}
	req, _ := json.Marshal(map[string]any{"mode": mode, "source": o.Source, "input": redact(f)})
	op, err := j.Begin(journal.Operation{Kind: "provision.apply", Origin: journal.OriginProvision,
		Summary: fmt.Sprintf("%s from %s: %d changes", mode, o.Source, len(res.Changes)), Request: req, Snapshot: res.Snapshot})
	if err != nil {
		return err
	}
	res.Operation = op.ID
	for _, c := range res.Changes {
		if err = write(r, c, chown); err != nil {
			break
		}
	}
	if chown {
		r.Lchown("var/lib/boxagent/journal.db", res.acc.uid, res.acc.gid)
	}
	if err != nil {
		j.Finish(op.ID, nil, &journal.Failure{Code: "provision.write", Message: err.Error()}, journal.StateFailed)
		return err
	}
	if f.Hostname != "" && o.SetHostname != nil {
		if herr := o.SetHostname(f.Hostname); herr != nil {
			res.Notes = append(res.Notes, "the host name takes effect at the next boot: "+herr.Error())
		}
	}
	result, _ := json.Marshal(map[string]any{"changes": paths})
	_, err = j.Finish(op.ID, result, nil, journal.StateDone)
	return err
}

// plan validates f against the image and lists what the image must hold,
// in the order it is written: accounts, directories, files, links.
func plan(r *os.Root, rootPath string, f *File, o Options, res *Result) ([]entry, *config.Config, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: o.Source, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	profiles, err := board.LoadAll(filepath.Join(rootPath, "etc/boxagent/boards"))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load the image's board profiles: %w", err)
	}
	var profile *board.Profile
	if f.Board != "" && f.Board != board.Auto {
		p, ok := board.Find(profiles, f.Board)
		if !ok {
			bad("board", "unknown board %q; known boards: %s", f.Board, strings.Join(board.IDs(profiles), ", "))
		} else {
			profile = &p
		}
	}
	if f.Timezone != "" {
		if _, err := r.Stat("usr/share/zoneinfo"); err == nil {
			if fi, err := r.Stat("usr/share/zoneinfo/" + f.Timezone); err != nil || !fi.Mode().IsRegular() {
				bad("timezone", "%q is not in the image's /usr/share/zoneinfo", f.Timezone)
			}
		} else {
			res.Notes = append(res.Notes, "the image has no /usr/share/zoneinfo: "+f.Timezone+" is set but not checked")
		}
	}
	var bin []byte
	if o.InstallBinary != "" {
		if bin, err = checkBinary(r, o.InstallBinary, profile); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := r.Stat(binaryFile); err != nil && !o.FirstBoot {
		errs = append(errs, fmt.Errorf("the image has no /%s: pass --install-binary PATH or install the .deb in the image first", binaryFile))
	}
	keyPaths, keyFiles := firmwareKeys(f)
	for i, k := range f.Firmware.Keys {
		// An absolute path must be in the image: the agent reads every
		// key when it starts, and a missing one would keep it from
		// starting.
		if strings.HasPrefix(k, "/") {
			if fi, err := r.Stat(strings.TrimPrefix(k, "/")); err != nil || !fi.Mode().IsRegular() {
				bad(fmt.Sprintf("firmware.keys[%d]", i), "%s is not a file in the image: install it first, or give the certificate inline", k)
			}
		}
	}
	cfg, err := buildConfig(r, f, o, keyPaths)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	users, acc, err := planUsers(r)
	if err != nil {
		return nil, nil, err
	}
	res.acc = acc
	es := users
	dir := func(p string, mode fs.FileMode, uid, gid int) {
		es = append(es, entry{path: p, kind: 'd', mode: mode, uid: uid, gid: gid})
	}
	file := func(p string, mode fs.FileMode, uid, gid int, data []byte, secret bool) {
		es = append(es, entry{path: p, kind: 'f', mode: mode, uid: uid, gid: gid, data: data, secret: secret})
	}
	dir("etc/boxagent", 0o700, acc.uid, acc.gid)
	dir("var/lib/boxagent", 0o700, acc.uid, acc.gid)
	cfgText, err := marshalConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	file(configFile, 0o600, acc.uid, acc.gid, append([]byte("# Written by `boxagent provision`; `boxagent config reload` applies edits.\n"), cfgText...), true)

	if len(keyFiles) > 0 {
		dir(keysDir, 0o755, 0, 0)
		es = append(es, keyFiles...)
	}
	if f.Hostname != "" {
		file("etc/hostname", 0o644, 0, 0, []byte(f.Hostname+"\n"), false)
		hosts, err := r.ReadFile("etc/hosts")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("cannot read /etc/hosts: %w", err)
		}
		es = append(es, entry{path: "etc/hosts", kind: 'f', mode: 0o644, keep: true, data: hostsWith(hosts, f.Hostname)})
	}
	if f.Timezone != "" {
		file("etc/timezone", 0o644, 0, 0, []byte(f.Timezone+"\n"), false)
		es = append(es, entry{path: "etc/localtime", kind: 'l', link: "/usr/share/zoneinfo/" + f.Timezone})
	}
	if len(f.SSHAuthorizedKeys) > 0 {
		home := strings.TrimPrefix(path.Clean(acc.rootHome), "/")
		old, err := r.ReadFile(home + "/.ssh/authorized_keys")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("cannot read %s/.ssh/authorized_keys: %w", acc.rootHome, err)
		}
		if _, err := r.Stat(home); errors.Is(err, fs.ErrNotExist) {
			dir(home, 0o700, 0, 0)
		}
		dir(home+"/.ssh", 0o700, 0, 0)
		file(home+"/.ssh/authorized_keys", 0o600, 0, 0, authorizedKeys(old, f.SSHAuthorizedKeys), false)
	}
	if bin != nil {
		es = append(es, entry{path: binaryFile, kind: 'f', mode: 0o755, data: bin, binary: true})
	}
	links, notes := planUnits(r, bin != nil || o.FirstBoot, &es)
	res.Notes = append(res.Notes, notes...)
	resolv, note, err := planResolvConf(r)
	if err != nil {
		return nil, nil, err
	}
	if resolv != nil {
		es = append(es, *resolv)
	}
	if note != "" {
		res.Notes = append(res.Notes, note)
	}
	es = append(es, links...)
	return es, cfg, nil
}

// buildConfig makes config.toml: what the image's config already holds,
// with what the provision file names, checked by the config package's own
// rules. A password in clear is hashed; an unchanged one keeps its hash.
func buildConfig(r *os.Root, f *File, o Options, keys []string) (*config.Config, error) {
	cfg := config.Default()
	data, err := r.ReadFile(configFile)
	switch {
	case err == nil:
		// Keep what the image's config holds; an invalid one is refused
		// rather than overwritten, so nothing in it is lost.
		old, err := config.Parse("/"+configFile, data)
		if err != nil {
			return nil, fmt.Errorf("the image's config is invalid; fix or remove it first:\n%w", err)
		}
		cfg = old
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("cannot read /%s: %w", configFile, err)
	}
	if f.Board != "" {
		cfg.Board = f.Board
	}
	if f.HTTP.Listen != "" {
		cfg.HTTP.Listen = f.HTTP.Listen
	}
	switch {
	case f.HTTP.PasswordHash != "":
		cfg.HTTP.PasswordHash = f.HTTP.PasswordHash
	case f.HTTP.Password != "":
		if !password.Same(cfg.HTTP.PasswordHash, f.HTTP.Password) {
			salt := make([]byte, 16)
			if _, err := io.ReadFull(o.Rand, salt); err != nil {
				return nil, fmt.Errorf("cannot make a salt: %w", err)
			}
			cfg.HTTP.PasswordHash = password.Hash(f.HTTP.Password, salt)
		}
	}
	mergeNetworks(cfg, f)
	mergeHeadsets(cfg, f)
	if len(keys) > 0 {
		if cfg.Firmware == nil {
			cfg.Firmware = &firmware.Config{}
		}
		for _, k := range keys {
			if !slices.Contains(cfg.Firmware.Keys, k) {
				cfg.Firmware.Keys = append(cfg.Firmware.Keys, k)
			}
		}
	}
	text, err := toml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse(o.Source+" (as config.toml)", text); err != nil {
		return nil, err
	}
	return cfg, nil
}

// firmwareKeys are the paths [firmware] keys get for f's keys, and the
// files to write for those given inline (named by their hash, so a second
// run finds the same file).
func firmwareKeys(f *File) (paths []string, files []entry) {
	for _, k := range f.Firmware.Keys {
		if strings.HasPrefix(k, "/") {
			paths = append(paths, k)
			continue
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(k)))
		p := path.Join(keysDir, "provisioned-"+hex.EncodeToString(sum[:6])+".pem")
		files = append(files, entry{path: p, kind: 'f', mode: 0o644, data: []byte(strings.TrimSpace(k) + "\n")})
		paths = append(paths, "/"+p)
	}
	return paths, files
}

// mergeHeadsets puts f's headsets into [[bluetooth.headset]], replacing
// the one of the same address and keeping the others: the agent
// auto-connects them and sets their mode from the first start.
func mergeHeadsets(cfg *config.Config, f *File) {
	for _, h := range f.Bluetooth.Headset {
		n := h.config()
		if i := slices.IndexFunc(cfg.Bluetooth.Headsets, func(o bluetooth.Headset) bool { return strings.EqualFold(o.Address, h.Address) }); i >= 0 {
			cfg.Bluetooth.Headsets[i] = n
		} else {
			cfg.Bluetooth.Headsets = append(cfg.Bluetooth.Headsets, n)
		}
	}
}

// mergeNetworks puts the Wi-Fi networks and uplinks of f into the
// config's [[wifi.network]] and [[network.uplink]], replacing those of
// the same SSID or link name and keeping the others. The network
// package's rules then check them as they check any config.
func mergeNetworks(cfg *config.Config, f *File) {
	if len(f.Network.WiFi) > 0 {
		if cfg.WiFi == nil {
			cfg.WiFi = &wifi.Config{}
		}
		for _, w := range f.Network.WiFi {
			n := w.config()
			if i := slices.IndexFunc(cfg.WiFi.Networks, func(o wifi.Network) bool { return o.SSID == w.SSID }); i >= 0 {
				cfg.WiFi.Networks[i] = n
			} else {
				cfg.WiFi.Networks = append(cfg.WiFi.Networks, n)
			}
		}
	}
	for _, u := range f.Network.Uplink {
		n := u.config()
		name := func(x network.Uplink) string {
			if x.Name != "" {
				return x.Name
			}
			return x.Parent
		}
		if i := slices.IndexFunc(cfg.Network.Uplinks, func(o network.Uplink) bool { return name(o) == name(n) }); i >= 0 {
			cfg.Network.Uplinks[i] = n
		} else {
			cfg.Network.Uplinks = append(cfg.Network.Uplinks, n)
		}
	}
}

// marshalConfig writes cfg as TOML without what reads back the same when
// left out, so config.toml shows only what is set: every empty table and
// array, and each zero value ("", 0, false) whose removal leaves the
// config the agent reads unchanged (default_route = false stays: absent,
// it means true).
func marshalConfig(cfg *config.Config) ([]byte, error) {
	full, err := toml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot encode config.toml: %w", err)
	}
	var m map[string]any
	if err := toml.Unmarshal(full, &m); err != nil {
		return nil, fmt.Errorf("cannot encode config.toml: %w", err)
	}
	want := cfg.Revision()
	same := func() bool {
		text, err := toml.Marshal(m)
		if err != nil {
			return false
		}
		back, err := config.Parse("config.toml", text)
		return err == nil && back.Revision() == want
	}
	if !same() {
		return full, nil
	}
	prune(m, same)
	return toml.Marshal(m)
}

// prune drops the zero values of m and the tables and arrays left empty,
// each only when same still holds without it.
func prune(m map[string]any, same func() bool) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch t := v.(type) {
		case map[string]any:
			prune(t, same)
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					prune(em, same)
				}
			}
		}
		if !zero(m[k]) {
			continue
		}
		delete(m, k)
		if !same() {
			m[k] = v
		}
	}
}

// zero says whether v is "", 0, false or an empty table or array.
func zero(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	case string:
		return t == ""
	case int64:
		return t == 0
	case bool:
		return !t
	}
	return false
}

// checkBinary reads the binary to install and checks it is an ELF for the
// board's architecture, or the image's (its /bin/sh).
func checkBinary(r *os.Root, name string, p *board.Profile) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read --install-binary: %w", err)
	}
	got, err := elfArch(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("--install-binary %s: %w", name, err)
	}
	want, from := "", ""
	if p != nil {
		want, from = p.Arch, "board "+p.ID
	} else if sh, err := r.Open("bin/sh"); err == nil {
		want, _ = elfArch(sh)
		sh.Close()
		from = "the image's /bin/sh"
	}
	if want != "" && got != want {
		return nil, fmt.Errorf("--install-binary %s is built for %s, but %s is %s (make cross builds bin/boxagent-linux-%s)", name, got, from, want, want)
	}
	return data, nil
}

// elfArch reads the architecture from an ELF header. It reads the 20
// bytes it needs by hand: debug/elf (with the DWARF, zlib and zstd readers
// it brings) cost the binary ~0.2 MB for these five fields.
func elfArch(r io.ReaderAt) (string, error) {
	var h [20]byte
	if _, err := r.ReadAt(h[:], 0); err != nil || string(h[:4]) != "\x7fELF" {
		return "", errors.New("not an ELF executable")
	}
	const (
		class32, class64 = 1, 2 // e_ident[EI_CLASS]
		lsb, msb         = 1, 2 // e_ident[EI_DATA]
		emMIPS           = 8    // e_machine values (the ELF gABI)
		emARM            = 40
		emX86_64         = 62
		emAARCH64        = 183
		emRISCV          = 243
	)
	class, data := h[4], h[5]
	var machine uint16
	switch data {
	case lsb:
		machine = binary.LittleEndian.Uint16(h[18:])
	case msb:
		machine = binary.BigEndian.Uint16(h[18:])
	default:
		return "", errors.New("not an ELF executable")
	}
	switch {
	case machine == emARM:
		return "arm", nil
	case machine == emAARCH64:
		return "arm64", nil
	case machine == emX86_64:
		return "amd64", nil
	case machine == emRISCV && class == class64:
		return "riscv64", nil
	case machine == emMIPS && data == lsb && class == class32:
		return "mipsle", nil
	}
	return "", fmt.Errorf("ELF for machine %d, not an architecture boxagent is built for", machine)
}

// planUnits installs the units the image lacks (when the binary is there)
// and enables them with the links `systemctl enable` would make.
func planUnits(r *os.Root, haveBinary bool, es *[]entry) (links []entry, notes []string) {
	if !exists(r, "usr/lib/systemd/systemd") && !exists(r, "lib/systemd/systemd") {
		return nil, []string{"the image has no systemd: units not enabled; start `boxagent serve` from its init"}
	}
	units := systemd.Units()
	for _, name := range slices.Sorted(maps.Keys(units)) {
		at := ""
		for _, d := range systemd.UnitDirs() {
			if p := strings.TrimPrefix(d, "/") + "/" + name; exists(r, p) {
				at = p
				break
			}
		}
		if at == "" {
			if !haveBinary {
				notes = append(notes, name+" is not in the image: not enabled")
				continue
			}
			at = "usr/lib/systemd/system/" + name
			*es = append(*es, entry{path: at, kind: 'f', mode: 0o644, data: units[name], note: "boxagent's own unit, embedded in the binary"})
		}
		if strings.Contains(name, "@") {
			continue // a template: PID 1 starts its instances when the agent asks
		}
		links = append(links, entry{path: wantsDir + "/" + name, kind: 'l', link: "/" + at})
	}
	if len(links) > 0 {
		*es = append(*es, entry{path: wantsDir, kind: 'd', mode: 0o755})
	}
	// What the units need beside them (polkit, modules-load.d, udev), as
	// the .deb installs it: without it the agent cannot mount a stick.
	files := systemd.SystemFiles()
	for _, path := range slices.Sorted(maps.Keys(files)) {
		switch {
		case exists(r, path):
		case haveBinary:
			*es = append(*es, entry{path: path, kind: 'f', mode: 0o644, data: files[path], note: "boxagent's own, embedded in the binary"})
		default:
			notes = append(notes, path+" is not in the image: sticks cannot be mounted by the agent")
		}
	}
	return links, notes
}

func exists(r *os.Root, name string) bool {
	_, err := r.Stat(name)
	return err == nil
}

// hostsWith sets the 127.0.1.1 line of /etc/hosts to name, as Debian's
// installer writes it, keeping every other line.
func hostsWith(old []byte, name string) []byte {
	if len(old) == 0 {
		return []byte("127.0.0.1\tlocalhost\n127.0.1.1\t" + name + "\n")
	}
	lines := strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	done := false
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			lines[i], done = "127.0.1.1\t"+name, true
		}
	}
	if !done {
		lines = append(lines, "127.0.1.1\t"+name)
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// authorizedKeys keeps the lines of old and adds the keys it lacks,
// compared by type and key data.
func authorizedKeys(old []byte, add []string) []byte {
	have := map[string]bool{}
	out := string(old)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			have[f[0]+" "+f[1]] = true
		}
	}
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	for _, k := range add {
		f := strings.Fields(k)
		if !have[f[0]+" "+f[1]] {
			out += strings.TrimSpace(k) + "\n"
			have[f[0]+" "+f[1]] = true
		}
	}
	return []byte(out)
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("cannot use the root %s: %w", a, err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// redact copies f with its secrets replaced by fingerprints, for the
// journal.
func redact(f *File) File {
	c := *f
	// The page password is journalled as set or not: its argon2id hash
	// (fingerprinted below) tells a change, and a fingerprint of the
	// plaintext would be one more thing to test guesses against.
	if c.HTTP.Password != "" {
		c.HTTP.Password = "(set)"
	}
	c.HTTP.PasswordHash = config.Fingerprint(c.HTTP.PasswordHash)
	c.Network.WiFi = slices.Clone(c.Network.WiFi)
	for i := range c.Network.WiFi {
		c.Network.WiFi[i].PSK = config.Fingerprint(c.Network.WiFi[i].PSK)
	}
	c.Firmware.Keys = slices.Clone(c.Firmware.Keys)
	for i, k := range c.Firmware.Keys {
		if !strings.HasPrefix(k, "/") {
			c.Firmware.Keys[i] = "inline certificate " + config.Fingerprint(strings.TrimSpace(k))
		}
	}
	c.Network.Uplink = slices.Clone(c.Network.Uplink)
	for i := range c.Network.Uplink {
		c.Network.Uplink[i].PPPoE.Password = config.Fingerprint(c.Network.Uplink[i].PPPoE.Password)
	}
	return c
}
