package daemon

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// firmwareDomain is the agent's firmware staging: the artifact store, the
// USB sticks (sysfs + uevents) and staging onto them, one at a time.
type firmwareDomain struct {
	a   *agent
	log *slog.Logger

	mu      sync.Mutex
	store   *firmware.Store
	watcher *firmware.Watcher
	stager  *firmware.Stager
	health  apitype.Subsystem

	// busy holds one stage, rollback, eject or import at a time: two
	// writers on one stick, or a prune during a staging, must not happen.
	busy sync.Mutex
}

func newFirmwareDomain(a *agent) *firmwareDomain {
	return &firmwareDomain{a: a, log: a.log.With("component", "firmware"),
		health: apitype.Subsystem{Name: "firmware", State: apitype.StateAbsent, Detail: "not started"}}
}

func (d *firmwareDomain) Name() string { return "firmware" }

func (d *firmwareDomain) hostPaths() firmware.HostPaths { return FirmwareHostPaths(d.a.paths) }

// FirmwareHostPaths is where the firmware domain finds the host's sticks
// and mounts them; the mount helper (root) takes the same, so that it
// mounts where the agent stages.
func FirmwareHostPaths(p paths.Paths) firmware.HostPaths {
	return firmware.HostPaths{Sys: p.Sys(), Dev: p.Host("/dev"), Proc: p.Proc(), MountBase: p.StickMounts()}
}

// Start opens the store and follows USB sticks. Without uevents (no
// permission, not Linux) the store still works and health says why.
func (d *firmwareDomain) Start(ctx context.Context) error {
	store, err := firmware.OpenStore(d.a.paths.ArtifactsDir())
	if err != nil {
		d.setHealth(apitype.StateFailed, err.Error())
		return err
	}
	store.OnChange(d.a.statusChanged) // its line counts the artifacts
	hp := d.hostPaths()
	// boxagent-mount@.service instances when the agent runs as its own user
	// under systemd (no CAP_SYS_ADMIN), mount(2) as root elsewhere.
	mounter, how, err := firmware.ChooseMounter(fwConfig(d.a.config()).Mounter, hp, d.log)
	if err != nil {
		d.setHealth(apitype.StateFailed, err.Error())
		return err
	}
	d.log.Info("sticks are mounted", "by", how)
	if name, why := kernelhash.Backend(crypto.SHA256); why != nil {
		d.log.Info("packages are hashed by Go", "why", why)
	} else {
		d.log.Info("packages are hashed", "by", name)
	}
	stager := &firmware.Stager{Store: store, Mounter: mounter, Paths: hp, Logger: d.log}
	// An agent killed mid-copy left its mount and a partial copy: the
	// copy goes now, not at the next staging (its operation shows as
	// interrupted in the journal).
	if cleaned, err := stager.CleanMounted(ctx); err != nil {
		d.log.Warn("cannot clean what an interrupted staging left", "err", err)
	} else if len(cleaned) > 0 {
		d.log.Info("removed what an interrupted staging left", "files", cleaned)
		d.recordCleanup(cleaned)
	}
	d.mu.Lock()
	d.store = store
	d.stager = stager
	d.mu.Unlock()
	d.a.statusChanged()
	w, err := firmware.WatchSticks(firmware.WatchOptions{Paths: hp, Logger: d.log, OnEvent: func(e firmware.StickEvent) {
		d.a.events.Publish("fw", e)
	}})
	if err != nil {
		d.setHealth(apitype.StateDegraded, "USB sticks are not followed: "+err.Error())
		d.log.Warn("cannot follow USB sticks", "err", err)
		return nil
	}
	d.mu.Lock()
	d.watcher = w
	d.health = apitype.Subsystem{Name: "firmware", State: apitype.StateOK}
	d.mu.Unlock()
	d.a.statusChanged()
	return nil
}

func (d *firmwareDomain) setHealth(state, detail string) {
	d.mu.Lock()
	d.health = apitype.Subsystem{Name: "firmware", State: state, Detail: detail}
	d.mu.Unlock()
	d.a.statusChanged()
}

// Health counts artifacts and sticks.
func (d *firmwareDomain) Health() apitype.Subsystem {
	d.mu.Lock()
	h, store, w := d.health, d.store, d.watcher
	d.mu.Unlock()
	if store == nil || h.State != apitype.StateOK {
		return h
	}
	arts, err := store.Count()
	if err != nil {
		return apitype.Subsystem{Name: "firmware", State: apitype.StateDegraded, Detail: err.Error()}
	}
	n := 0
	if w != nil {
		n = len(w.List())
	}
	h.Detail = fmt.Sprintf("%d artifacts, %d USB sticks", arts, n)
	if c := storeCheck(store.Damaged()); c.Result != apitype.CheckOK {
		h.State, h.Detail = apitype.StateDegraded, h.Detail+"; "+c.Detail
	}
	return h
}

func (d *firmwareDomain) Stop() {
	d.mu.Lock()
	w := d.watcher
	d.watcher = nil
	st := d.stager
	d.mu.Unlock()
	if w != nil {
		w.Close()
	}
	if st != nil {
		if m, ok := st.Mounter.(*firmware.SystemdMounter); ok {
			m.Close() // its system bus connection
		}
	}
}

// FWRecord is what the journal keeps of a stage, rollback or eject
// request: what will be written, where, and for which board.
type FWRecord struct {
	Op       string           `json:"op"`
	Artifact string           `json:"artifact,omitempty"`
	Size     int64            `json:"size,omitempty"`
	Signer   *firmware.Signer `json:"signer,omitempty"`
	Device   string           `json:"device"`
	Stick    fwStickRecord    `json:"stick"`
	Board    string           `json:"board"`
	Package  string           `json:"package,omitempty"`
	Verify   string           `json:"verify,omitempty"`
	// Extra are the files staged beside the package, with where their
	// bytes come from: the plan, journalled before anything is written.
	Extra []firmware.ExtraFile `json:"extra,omitempty"`
}

type fwStickRecord struct {
	Name       string `json:"name"`
	Serial     string `json:"serial,omitempty"`
	Model      string `json:"model,omitempty"`
	Size       int64  `json:"size"`
	Filesystem string `json:"filesystem,omitempty"`
	Label      string `json:"label,omitempty"`
}

func (d *firmwareDomain) ready() (*firmware.Store, *firmware.Stager, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store == nil {
		return nil, nil, localapi.Errorf(http.StatusServiceUnavailable, "fw.absent", "firmware staging is not available: "+d.health.Detail, "boxagent doctor says why")
	}
	return d.store, d.stager, nil
}

// target is what the board's recovery expects, with the policy built from
// the profile's keys and the config's.
func (d *firmwareDomain) target() (firmware.Target, board.Firmware, error) {
	det := d.a.board()
	fw := det.Profile.Firmware
	if fw.Method != board.FirmwareUSBStick {
		msg := fmt.Sprintf("board %s has no recovery that reads a USB stick", det.Profile.ID)
		return firmware.Target{}, fw, localapi.Errorf(http.StatusConflict, "fw.unsupported", msg, strings.TrimSpace(fw.Instructions))
	}
	cfg := fwConfig(d.a.config())
	keys := append(append([]string(nil), fw.Keys...), cfg.Keys...)
	pol, err := firmware.NewPolicy(fw.Verify, keys, fw.RequiredEntries)
	if err != nil {
		return firmware.Target{}, fw, localapi.Errorf(http.StatusConflict, "fw.no_keys", "cannot build the verification policy of board "+det.Profile.ID+": "+err.Error(),
			"list the box's release certificate in the config: [firmware] keys = [\"/etc/boxagent/keys/release.x509.pem\"]")
	}
	t := firmware.Target{Board: det.Profile.ID, Package: fw.Package, Filesystems: []string{fw.Filesystem},
		Policy: pol, Instructions: strings.TrimSpace(fw.Instructions)}
	for _, name := range fw.ExtraFiles {
		x := firmware.ExtraSpec{Name: name}
		if text, ok := fw.ExtraText[name]; ok {
			x.Default = []byte(text)
		} else if script, ok := fw.ExtraUBootScript[name]; ok {
			x.Default = firmware.UBootScript(name, script)
		}
		t.Extra = append(t.Extra, x)
	}
	return t, fw, nil
}

func fwConfig(c *config.Config) firmware.Config {
	if c == nil || c.Firmware == nil {
		return firmware.Config{}
	}
	return *c.Firmware
}

// stick finds the stick a request names, or the only one present.
func (d *firmwareDomain) stick(dev string) (firmware.Stick, error) {
	sticks, _ := d.sticks() // a scan that fails sees no stick: ErrNoStick says so
	return firmware.ChooseStick(sticks, dev)
}

func (d *firmwareDomain) Register(api *localapi.Server) {
	api.Handle("GET /api/v1/fw", func(w http.ResponseWriter, r *http.Request) error {
		store, _, err := d.ready()
		if err != nil {
			return err
		}
		det := d.a.board()
		st := apitype.FWStatus{Board: det.Profile.ID, Recovery: det.Profile.Firmware, Sticks: []firmware.Stick{}}
		if s, err := d.sticks(); err == nil && s != nil {
			st.Sticks = s
		}
		st.Mounts = d.stickMounts(st.Sticks)
		if st.Artifacts, err = store.List(); err != nil {
			return err
		}
		if st.Artifacts == nil {
			st.Artifacts = []firmware.Artifact{}
		}
		if cur, err := store.Current(); err == nil {
			st.Staged = &cur
		}
		localapi.WriteJSON(w, http.StatusOK, st)
		return nil
	})
	api.Handle("POST /api/v1/fw/add", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.FWAddRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		store, _, err := d.ready()
		if err != nil {
			return err
		}
		t, _, err := d.target()
		if err != nil {
			return err
		}
		src, err := checkSource(req)
		if err != nil {
			return err
		}
		// The journal and history keep the URL without its password.
		rec := req
		rec.URL = redactURL(req.URL)
		return api.Operate(w, r, localapi.Spec{Kind: "fw.add", Summary: "import firmware package " + src, Request: rec},
			func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
				if !d.busy.TryLock() {
					return nil, errBusy
				}
				defer d.busy.Unlock()
				return d.add(ctx, store, t, req, progress)
			})
	})
	api.Handle("POST /api/v1/fw/stage", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.FWStageRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Artifact == "" {
			return localapi.Errorf(http.StatusBadRequest, "fw.invalid", "which artifact? give its SHA-256", "boxagent fw list shows them")
		}
		return d.stageOp(api, w, r, "fw.stage", req)
	})
	api.Handle("POST /api/v1/fw/rollback", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.FWStageRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		store, _, err := d.ready()
		if err != nil {
			return err
		}
		prev, err := store.Previous()
		if err != nil {
			return err
		}
		req.Artifact = prev.SHA256
		return d.stageOp(api, w, r, "fw.rollback", req)
	})
	api.Handle("POST /api/v1/fw/eject", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.FWStageRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		_, stager, err := d.ready()
		if err != nil {
			return err
		}
		st, err := d.stick(req.Device)
		if err != nil {
			return err
		}
		rec := FWRecord{Op: "eject", Device: st.Name, Board: d.a.board().Profile.ID, Stick: stickRecord(st, firmware.Partition{})}
		return api.Operate(w, r, localapi.Spec{Kind: "fw.eject", Summary: "eject USB stick " + st.Name, Request: rec},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				if !d.busy.TryLock() {
					return nil, errBusy
				}
				defer d.busy.Unlock()
				return stager.Eject(ctx, st)
			})
	})
}

func (d *firmwareDomain) sticks() ([]firmware.Stick, error) {
	d.mu.Lock()
	w := d.watcher
	d.mu.Unlock()
	if w != nil {
		return w.List(), nil
	}
	return firmware.Scan(d.hostPaths())
}

var errBusy = localapi.Errorf(http.StatusConflict, "fw.busy", "another firmware operation is running", "wait for it: boxagent history")

// stageOp checks a stage or rollback request whole, journals what it will
// write where, and runs it as a long operation.
func (d *firmwareDomain) stageOp(api *localapi.Server, w http.ResponseWriter, r *http.Request, kind string, req apitype.FWStageRequest) error {
	store, stager, err := d.ready()
	if err != nil {
		return err
	}
	t, fw, err := d.target()
	if err != nil {
		return err
	}
	art, err := store.Get(strings.ToLower(strings.TrimSpace(req.Artifact)))
	if err != nil {
		return err
	}
	st, err := d.stick(req.Device)
	if err != nil {
		return err
	}
	// The partition, for the journal record; Stage checks it again.
	part, dev, err := firmware.ChoosePartition(st, req.Device, t)
	if err != nil {
		return err
	}
	// A file recovery needs that nobody provides is refused here,
	// before the operation and before anything is written.
	extra, err := stager.PlanExtras(art.SHA256, t)
	if err != nil {
		return err
	}
	rec := FWRecord{Op: strings.TrimPrefix(kind, "fw."), Artifact: art.SHA256, Size: art.Size, Signer: art.Signer, Device: dev,
		Stick: stickRecord(st, part), Board: t.Board, Package: t.Package, Verify: fw.Verify, Extra: extra}
	summary := fmt.Sprintf("stage %s (%s) onto %s as %s", art.SHA256[:12], humanBytes(art.Size), dev, t.Package)
	if kind == "fw.rollback" {
		summary = "roll back: " + summary
	}
	return api.Operate(w, r, localapi.Spec{Kind: kind, Summary: summary, Request: rec},
		func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
			if !d.busy.TryLock() {
				return nil, errBusy
			}
			defer d.busy.Unlock()
			size := art.Size
			return stager.Stage(ctx, art.SHA256, st, dev, t, func(p firmware.StageProgress) {
				// One bar for the stick: written and read back, the
				// read-back running behind the write.
				msg := fmt.Sprintf("writing %s to %s", t.Package, dev)
				if p.Phase == "verify" {
					msg = "verifying the copy on " + dev
				}
				if p.Rate > 0 {
					msg += fmt.Sprintf(": %s/s, %s left", humanBytes(int64(p.Rate)), p.ETA)
				}
				progress(msg, p.Written+p.Verified, 2*size)
			})
		})
}

func stickRecord(st firmware.Stick, p firmware.Partition) fwStickRecord {
	return fwStickRecord{Name: st.Name, Serial: st.Serial, Model: strings.TrimSpace(st.Vendor + " " + st.Model),
		Size: st.Size, Filesystem: p.FS, Label: p.Label}
}

// checkSource refuses a bad add request before anything is journalled: a
// path must be an absolute regular file; a URL must be http(s) to a host
// on the LAN (private, link-local or loopback addresses only).
func checkSource(req apitype.FWAddRequest) (string, error) {
	bad := func(msg string) error {
		return localapi.Errorf(http.StatusBadRequest, "fw.invalid", msg, "boxagent fw add /path/on/the/box/update.zip, or http://host.on.lan/update.zip")
	}
	switch {
	case (req.Path == "") == (req.URL == ""):
		return "", bad("give a path on the box or a URL, one of the two")
	case req.Path != "":
		if !filepath.IsAbs(req.Path) {
			return "", bad(fmt.Sprintf("%q is not an absolute path", req.Path))
		}
		fi, err := os.Stat(req.Path)
		if err != nil || !fi.Mode().IsRegular() {
			return "", bad(fmt.Sprintf("%s is not a file on the box", req.Path))
		}
		return req.Path, nil
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", bad(fmt.Sprintf("%q is not an http(s) URL", req.URL))
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 {
		return "", bad(fmt.Sprintf("cannot resolve %s: %v", u.Hostname(), err))
	}
	// A first check for a clear answer before anything is journalled; the
	// download checks again the address it dials, and every redirect's.
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); !ok || !lanAddr(a) {
			return "", bad(fmt.Sprintf("%s (%s) is not on the LAN: packages come from the local network only", u.Hostname(), ip))
		}
	}
	return u.Redacted(), nil
}

// add imports a package into the store and prunes old ones.
func (d *firmwareDomain) add(ctx context.Context, store *firmware.Store, t firmware.Target, req apitype.FWAddRequest, progress localapi.ProgressFunc) (firmware.Artifact, error) {
	var r io.Reader
	size := int64(-1)
	if req.Path != "" {
		f, err := os.Open(req.Path)
		if err != nil {
			return firmware.Artifact{}, fmt.Errorf("cannot open the package: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		// An unsigned or wrongly signed file is refused from its footer,
		// before it is copied.
		if size >= 0 {
			if err := firmware.Precheck(f, size, t.Policy, shaOption(req.SHA256)...); err != nil {
				return firmware.Artifact{}, err
			}
		}
		r = f
	} else {
		body, n, err := download(ctx, req.URL)
		if err != nil {
			return firmware.Artifact{}, err
		}
		defer body.Close()
		size, r = n, body
	}
	opts := []firmware.Option{firmware.WithProgress(func(phase string, done, total int64) {
		msg := "copying into the store"
		if phase == "verify" {
			msg = "verifying"
		}
		progress(msg, done, max(total, 0))
	})}
	if size >= 0 {
		opts = append(opts, firmware.WithSize(size))
	}
	opts = append(opts, shaOption(req.SHA256)...)
	a, err := store.Import(ctx, r, t.Policy, opts...)
	if err != nil {
		return a, err
	}
	if removed, err := store.Prune(fwConfig(d.a.config()).Keep(), a.SHA256); err != nil {
		d.log.Warn("cannot prune the artifact store", "err", err)
	} else if len(removed) > 0 {
		d.log.Info("pruned artifacts", "removed", removed)
	}
	return a, nil
}

// recordCleanup adds what the start removed to the story of the stagings
// the previous run left interrupted, so `boxagent history ID` tells it
// whole: the copy was cut short, and this is what became of it.
func (d *firmwareDomain) recordCleanup(files []string) {
	if d.a.journal == nil {
		return
	}
	msg := "the agent's next start removed what the interrupted staging left: " + strings.Join(files, ", ")
	for _, op := range d.a.journal.Interrupted() {
		if op.Kind != "fw.stage" && op.Kind != "fw.rollback" {
			continue
		}
		if err := d.a.journal.AddRecovery(op.ID, msg); err != nil {
			d.log.Warn("cannot record the cleanup in the journal", "operation", op.ID, "err", err)
		}
	}
}

// shaOption is the expected SHA-256 the caller gave, if any.
func shaOption(sha string) []firmware.Option {
	if sha == "" {
		return nil
	}
	return []firmware.Option{firmware.WithSHA256(sha)}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
