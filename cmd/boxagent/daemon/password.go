package daemon

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/internal/atomicfile"
	"github.com/boxagent/boxagent/internal/password"
)

// The page password the agent makes when the config sets none, as
// gokrazy does: 20 characters from 32 that a console font does not
// confuse (100 bits), in four groups for reading off a TV.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

func newPassword() string {
	var b strings.Builder
	buf := make([]byte, 20)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("cannot read random bytes: %v", err))
	}
	for i, c := range buf {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		// 256 % 31 != 0 skews a character by 1/256 of a choice: still
		// more than 98 bits.
		b.WriteByte(passwordAlphabet[int(c)%len(passwordAlphabet)])
	}
	return b.String()
}

// generatedPassword is the page password made at first start.
type generatedPassword struct {
	password string
	hash     string
	created  bool
}

// ensurePassword reads the generated page password from the state folder,
// making it (0600) at the first start. Its hash uses light argon2id
// parameters (1 MiB, one pass): 100 random bits need no stretching, and
// every start computes it.
func ensurePassword(p paths.Paths) (generatedPassword, error) {
	path := p.HTTPPasswordFile()
	data, err := readPrivate(path)
	var g generatedPassword
	switch {
	case err == nil:
		g.password = strings.TrimSpace(string(data))
		if g.password == "" {
			return g, fmt.Errorf("%s is empty: remove it and restart the agent to make a new page password", path)
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(p.StateDir(), 0o700); err != nil {
			return g, fmt.Errorf("cannot create %s: %w", p.StateDir(), err)
		}
		g.password, g.created = newPassword(), true
		if err := atomicfile.Write(path, []byte(g.password+"\n"), 0o600, atomicfile.Options{}); err != nil {
			return g, err
		}
	default:
		return g, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return g, err
	}
	g.hash = password.HashWith(g.password, salt, 1024, 1, 1)
	return g, nil
}

// ReadGeneratedPassword is `boxagent config password`: the generated page
// password, for root (or the agent's own user) only.
func ReadGeneratedPassword(p paths.Paths) (string, error) {
	data, err := readPrivate(p.HTTPPasswordFile())
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(data)), nil
}

// readPrivate reads a secret file, refusing one that others may read or
// that is not a regular file (a symlink planted in the state folder).
func readPrivate(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s must be a regular file of mode 0600 (it is %v): remove it and restart the agent", path, fi.Mode())
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// passwordHash is the hash in effect: the config's, else the generated
// password's.
func (a *agent) passwordHash() string {
	if h := a.config().HTTP.PasswordHash; h != "" {
		return h
	}
	return a.generated.hash
}

// tellPassword puts the generated password on the console (the log) once,
// at the start that made it, when it is the one in effect; later it is
// only where `boxagent config password` reads it.
func (a *agent) tellPassword(g generatedPassword) {
	if a.config().HTTP.PasswordHash != "" {
		return
	}
	page := a.pageURL()
	if g.created {
		a.log.Warn("the control page's password, made at this first start (boxagent config password shows it again)",
			"password", g.password, "page", page)
		return
	}
	a.log.Info("the control page needs the password made at the first start: boxagent config password shows it", "page", page)
}

// checkReloadAuth refuses a config that would leave the bound TCP
// listener reachable from the network with no configured password: the
// listener is not rebound by a reload, so the file's listen does not
// count, the address bound at start does.
func (a *agent) checkReloadAuth(cfg *config.Config) error {
	if !a.listenIP.IsValid() || a.listenIP.IsLoopback() || cfg.HTTP.PasswordHash != "" {
		return nil
	}
	return &config.Error{File: a.cfgPath, Key: "http.password_hash", Msg: fmt.Sprintf(
		"the agent listens on %s, reachable from the network, and a reload does not move it: keep a password hash, or change http.listen and restart the agent", a.listeners.HTTP)}
}

// pageURL is the page's address as the log and status tell it.
func (a *agent) pageURL() string {
	if a.listeners.HTTPS {
		return "https://" + a.listeners.HTTP + "/"
	}
	return "http://" + a.listeners.HTTP + "/"
}
