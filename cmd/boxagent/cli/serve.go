package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/daemon"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

func serveCmd() *Command {
	var configPath, listen, level string
	return &Command{
		Name: "serve", Short: "run the agent (the daemon behind every other command)",
		Long: `Serves the local API on the unix socket (for this CLI) and on TCP (for the
control page). The config file is validated whole before anything starts;
an invalid one is refused. SIGHUP reloads it, SIGTERM stops within 5 s.
With --root DIR every config, state and runtime path lives under DIR.`,
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			fs.StringVar(&configPath, "config", "", "config file (default /etc/boxagent/config.toml under --root)")
			fs.StringVar(&o.Root, "root", "", "put every config, state and runtime path under this directory")
			fs.StringVar(&listen, "listen", "", "TCP address for the page, overriding [http] listen (port 0 picks a free one)")
			fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", level)
			}
			p := paths.Paths{Root: o.Root}
			// Under --root the socket moves with everything else unless
			// it was given explicitly.
			socket := p.Socket()
			if o.SocketSet {
				socket = o.Socket
			}
			err := daemon.Run(ctx, daemon.Options{
				Paths: p, ConfigPath: configPath, SocketPath: socket, Listen: listen,
				Version: Version(), Logger: newLogger(e, lv),
			})
			if errors.Is(err, daemon.ErrRefused) {
				return fmt.Errorf("%s", trimRefused(err))
			}
			return err
		},
	}
}

func trimRefused(err error) string {
	msg := err.Error()
	const p = "refused: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// newLogger logs to stderr; under journald (JOURNAL_STREAM set) it leaves
// the timestamps to the journal.
func newLogger(e *Env, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if e.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	w := e.Stderr
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
