package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/daemon"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/internal/password"
)

func configCmd() *Command {
	return &Command{
		Name: "config", Usage: "check FILE | reload | password | hash-password", Short: "check a config file, make the agent reload its own, show or hash the page password",
		Long: `check FILE   validates FILE whole, offline, and lists every problem with its
             key and line; exit 1 when invalid. It makes the checks serve
             makes too: the board id is known, the key files load.
reload       asks the running agent to re-read its config (like SIGHUP); an
             invalid file is refused and the old config stays in effect.
password     prints the control page's password that the agent made at its
             first start (kept 0600 in /var/lib/boxagent/http-password);
             root only. A password_hash in [http] replaces it.
hash-password
             reads a password from stdin and prints the argon2id hash to put
             in [http] password_hash.`,
		Verbs: []string{"check", "reload", "password", "hash-password"},
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			fs.StringVar(&o.Root, "root", "", "check: find the board profiles and key files as serve --root does; password: the agent's --root")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: check, reload, password or hash-password")
			}
			switch args[0] {
			case "check":
				if len(args) != 2 {
					return usagef("config check takes one FILE")
				}
				return checkConfig(e, o, args[1])
			case "reload":
				if len(args) != 1 {
					return usagef("config reload takes no arguments")
				}
				op, err := o.client().ReloadConfig(ctx)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "reloaded (operation %d): %s\n", op.ID, op.Result)
				return nil
			case "password":
				if len(args) != 1 {
					return usagef("config password takes no arguments")
				}
				return showPassword(e, o)
			case "hash-password":
				return hashPassword(e)
			}
			return usagef("unknown verb %q", args[0])
		},
	}
}

type checkResult struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Revision string          `json:"revision,omitempty"`
	Errors   []*config.Error `json:"errors,omitempty"`
}

func checkConfig(e *Env, o *Opts, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", file, err)
	}
	// The agent's fingerprint key, when readable, so the revision is the
	// agent's; otherwise one of this run only.
	p := paths.Paths{Root: o.Root}
	if key, err := config.LoadFingerprintKey(filepath.Join(p.StateDir(), config.FingerprintKeyFile), false); err == nil {
		config.SetFingerprintKey(key)
	}
	cfg, err := config.Parse(file, data)
	if err == nil {
		// What serve checks beyond the file: the board, the key files.
		if errs := daemon.Preflight(p, file, cfg); len(errs) > 0 {
			err = errs
		}
	}
	res := checkResult{File: file, Valid: err == nil}
	if res.Valid {
		res.Revision = cfg.Revision()
	} else {
		var one *config.Error
		var many config.Errors
		switch {
		case errors.As(err, &many):
			res.Errors = many
		case errors.As(err, &one):
			res.Errors = []*config.Error{one}
		default:
			return err
		}
	}
	if o.JSON {
		if err := printJSON(e.Stdout, res); err != nil {
			return err
		}
	} else if res.Valid {
		fmt.Fprintf(e.Stdout, "%s: valid, revision %s\n", file, res.Revision)
	} else {
		for _, ce := range res.Errors {
			fmt.Fprintln(e.Stdout, ce.Error())
		}
	}
	if !res.Valid {
		return errSilent
	}
	return nil
}

// errSilent fails a command whose output already said why.
var errSilent = errors.New("")

func hashPassword(e *Env) error {
	line, err := bufio.NewReader(e.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("cannot read a password from stdin: %w", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if len(pass) < 8 {
		return usagef("the password must be at least 8 characters")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.Stdout, password.Hash(pass, salt))
	return err
}

// showPassword prints the generated page password. It reads the file
// itself, not the API: only root (or the agent's own user) can.
func showPassword(e *Env, o *Opts) error {
	p := paths.Paths{Root: o.Root}
	if uid := os.Geteuid(); uid != 0 {
		if fi, err := os.Stat(p.HTTPPasswordFile()); err != nil || !ownedBy(fi, uid) {
			return fmt.Errorf("only root can read the page password; run: sudo boxagent config password")
		}
	}
	pass, err := daemon.ReadGeneratedPassword(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no page password yet: the agent makes one at its first start (%s)", p.HTTPPasswordFile())
	}
	if err != nil {
		return err
	}
	if cfg, err := config.Load(p.ConfigFile()); err == nil && cfg.HTTP.PasswordHash != "" {
		fmt.Fprintln(e.Stderr, "note: the config sets [http] password_hash; the page takes that password, not this one")
	}
	if o.JSON {
		return printJSON(e.Stdout, map[string]string{"password": pass, "file": p.HTTPPasswordFile()})
	}
	_, err = fmt.Fprintln(e.Stdout, pass)
	return err
}

func ownedBy(fi fs.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}
