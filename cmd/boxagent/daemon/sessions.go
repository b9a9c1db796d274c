package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/internal/atomicfile"
)

// The page's sessions outlive a restart of the agent (an upgrade, the
// watchdog): they are kept in the state folder, 0600, by the SHA-256 of
// their cookies, with a fingerprint of the password hash they were made
// under; a different password at the next start drops them.
type savedSessions struct {
	Password string                  `json:"password"`
	Sessions []localapi.SavedSession `json:"sessions"`
}

func (a *agent) sessionsFile() string { return a.paths.StateDir() + "/sessions.json" }

// passwordFingerprint names the password in effect: the configured hash,
// or the generated password (whose hash is salted anew at every start).
func (a *agent) passwordFingerprint() string {
	id := a.config().HTTP.PasswordHash
	if id == "" {
		id = "generated\x00" + a.generated.password
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// saveSessions is Sessions.Save.
func (a *agent) saveSessions(list []localapi.SavedSession) {
	data, _ := json.Marshal(savedSessions{Password: a.passwordFingerprint(), Sessions: list})
	if err := atomicfile.Write(a.sessionsFile(), data, 0o600, atomicfile.Options{}); err != nil {
		a.log.Warn("cannot save the page's sessions; a restart will log the page out", "err", err)
	}
}

// restoreSessions loads what saveSessions kept.
func (a *agent) restoreSessions() {
	data, err := readPrivate(a.sessionsFile())
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var saved savedSessions
	if err == nil {
		err = json.Unmarshal(data, &saved)
	}
	if err != nil {
		a.log.Warn("cannot read the page's saved sessions; the page logs in again", "err", err)
		return
	}
	if saved.Password != a.passwordFingerprint() {
		a.log.Info("the page password changed while the agent was stopped: every page session ended")
		return
	}
	a.sessions.Restore(saved.Sessions)
}
