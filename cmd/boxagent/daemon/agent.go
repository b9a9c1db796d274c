package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

// agent holds the daemon's state and implements localapi.Backend.
type agent struct {
	paths   paths.Paths
	cfgPath string
	version string
	started time.Time
	log     *slog.Logger
	events  *localapi.Broker
	api     *localapi.Server
	journal *journal.Store

	listeners apitype.Listeners
	// listenIP is the TCP listener's address as bound (unspecified for
	// every address): reloads are checked against it, not the file.
	listenIP  netip.Addr
	domains   []domain
	sessions  *localapi.Sessions
	generated generatedPassword
	// damage is set when the journal was found damaged at start and
	// moved aside.
	damage *journal.Damage
	// journalSub is the journal's line in status, made at start and when
	// a damaged journal beside it comes or goes (journal_health.go).
	journalSub atomic.Pointer[apitype.Subsystem]
	// status is GET /api/v1/status's answer as of the last change
	// (status.go).
	status statusCache

	mu        sync.RWMutex
	cfg       *config.Config
	loaded    time.Time
	isDefault bool
	detection board.Detection
	profiles  []board.Profile
	// snap is cfg and detection as journalled, made when they are set:
	// every status call and operation reads it, and its reflection and
	// hashing cost more than the rest of a status answer.
	snap journal.Snapshot
}

// settled remakes snap from cfg and detection; a.mu is held for writing.
func (a *agent) settled() {
	b := a.cfg.Snapshot()
	a.snap = journal.Snapshot{Revision: config.RevisionOf(b), Board: a.detection.Profile.ID, Config: b}
}

func newAgent(o Options) (*agent, error) {
	a := &agent{
		paths: o.Paths, cfgPath: o.ConfigPath, version: o.Version,
		started: time.Now(), log: o.Logger, events: localapi.NewBroker(512),
	}
	// Secrets are fingerprinted under the box's key from the first
	// snapshot on: made at first start, kept in the state folder.
	if err := os.MkdirAll(o.Paths.StateDir(), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the state folder: %w", err)
	}
	key, err := config.LoadFingerprintKey(filepath.Join(o.Paths.StateDir(), config.FingerprintKeyFile), true)
	if err != nil {
		return nil, fmt.Errorf("cannot load the fingerprint key: %w", err)
	}
	config.SetFingerprintKey(key)
	cfg, isDefault, err := loadConfig(o.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if isDefault {
		a.log.Warn("no config file; running with defaults", "path", o.ConfigPath)
	}
	det, profiles, err := a.detectBoard(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	a.cfg, a.isDefault, a.loaded, a.detection, a.profiles = cfg, isDefault, time.Now(), det, profiles
	a.settled()
	a.log.Info("board", "id", det.Profile.ID, "reason", det.Reason)
	return a, nil
}

// loadConfig reads and validates the config file. A missing file means
// defaults; an invalid one is refused whole.
func loadConfig(path string) (*config.Config, bool, error) {
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return config.Default(), true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return cfg, false, nil
}

func (a *agent) detectBoard(cfg *config.Config) (board.Detection, []board.Profile, error) {
	profiles, err := board.LoadAll(a.paths.BoardsDir())
	if err != nil {
		return board.Detection{}, nil, err
	}
	host := os.DirFS(a.paths.Host("/"))
	det, err := board.Detect(host, profiles, cfg.Board, runtime.GOARCH)
	if err != nil {
		return board.Detection{}, nil, err
	}
	return det, profiles, nil
}

func (a *agent) config() *config.Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

func (a *agent) board() board.Detection {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.detection
}

func (a *agent) configInfo() apitype.ConfigInfo {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return apitype.ConfigInfo{Path: a.cfgPath, Revision: a.snap.Revision, Loaded: a.loaded.UTC(), Default: a.isDefault}
}

// Board implements localapi.Backend.
func (a *agent) Board(ctx context.Context) board.Detection { return a.board() }

// Boards implements localapi.Backend.
func (a *agent) Boards(ctx context.Context) ([]board.Profile, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.profiles, nil
}

// Snapshot implements localapi.Backend: the settings in effect, secrets
// fingerprinted.
func (a *agent) Snapshot() journal.Snapshot {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.snap
}

// ReloadConfig implements localapi.Backend: validate the whole new file
// first, keep the old config on any error.
func (a *agent) ReloadConfig(ctx context.Context) (apitype.ReloadResult, error) {
	cfg, isDefault, err := loadConfig(a.cfgPath)
	if err != nil {
		return apitype.ReloadResult{}, err
	}
	if err := a.checkReloadAuth(cfg); err != nil {
		return apitype.ReloadResult{}, err
	}
	det, profiles, err := a.detectBoard(cfg)
	if err != nil {
		return apitype.ReloadResult{}, err
	}
	a.mu.Lock()
	old := a.cfg
	res := apitype.ReloadResult{Previous: old.Revision(), Revision: cfg.Revision()}
	res.Changed = res.Previous != res.Revision
	if old.HTTP.Listen != cfg.HTTP.Listen {
		res.Notes = append(res.Notes, "http.listen changed: takes effect when the agent restarts")
	}
	if old.Journal.Keep != cfg.Journal.Keep {
		res.Notes = append(res.Notes, "journal.keep changed: takes effect when the agent restarts")
	}
	if det.Profile.ID != a.detection.Profile.ID {
		res.Notes = append(res.Notes, "board is now "+det.Profile.ID)
	}
	a.cfg, a.isDefault, a.loaded, a.detection, a.profiles = cfg, isDefault, time.Now(), det, profiles
	a.settled()
	a.mu.Unlock()
	if old.HTTP.PasswordHash != cfg.HTTP.PasswordHash && a.sessions != nil {
		// Whoever knew the old password is logged out with it.
		a.sessions.EndAll()
		res.Notes = append(res.Notes, "http.password_hash changed: every page session ended")
		if cfg.HTTP.PasswordHash == "" {
			res.Notes = append(res.Notes, "the page now takes the password made at the first start (boxagent config password)")
		}
	}
	// The new config is in effect; each domain now brings the box in line
	// with it. A domain that cannot says so in the result's notes.
	for _, d := range a.domains {
		if r, ok := d.(reconfigurer); ok {
			notes, err := r.Reconfigure(ctx, old, cfg)
			res.Notes = append(res.Notes, notes...)
			if err != nil {
				res.Notes = append(res.Notes, d.Name()+": "+err.Error())
			}
		}
	}
	a.log.Info("config reloaded", "revision", res.Revision, "changed", res.Changed)
	a.events.Publish("config", a.configInfo())
	return res, nil
}

// runAuto runs fn as an operation of the agent's own (origin "auto")
// and returns the error it ended with, or why it could not start.
func (a *agent) runAuto(kind, summary string, fn func(ctx context.Context) (any, error)) error {
	op, err := a.api.Run(localapi.Spec{Kind: kind, Summary: summary},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return fn(ctx) })
	if err != nil {
		return err
	}
	if op.Error != nil {
		return errors.New(op.Error.Message)
	}
	return nil
}

// reloadFromSignal runs a reload as an operation of origin "auto".
func (a *agent) reloadFromSignal() {
	op, err := a.api.Run(localapi.Spec{Kind: "config.reload", Summary: "reload the config file (SIGHUP)"},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return a.ReloadConfig(ctx) })
	if err != nil {
		a.log.Error("cannot reload", "err", err)
		return
	}
	if op.Error != nil {
		a.log.Error("config reload refused; keeping the old config", "err", op.Error.Message)
	}
}
