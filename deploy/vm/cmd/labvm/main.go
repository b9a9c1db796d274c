// Command labvm boots boxagent's virtual board by hand: a shell on its
// serial console, optionally with boxagent serving inside (-demo), or one
// command whose exit status becomes labvm's.
//
//	labvm                        a shell on the board (Ctrl-C or poweroff ends it)
//	labvm -demo                  bin/boxagent serve with deploy/vm/demo.toml, page on https://127.0.0.1:8080
//	labvm -- ip -br link         run a command, print its output, exit with its status
//	labvm -fwd tcp:127.0.0.1:2222-:22 -bg 'sleep 100' -env K=V -stick s=IMG
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		opts    vm.Options
		demo    bool
		keep    bool
		verbose bool
	)
	opts.Env = map[string]string{}
	opts.Sticks = map[string]string{}
	flag.BoolVar(&demo, "demo", false, "run bin/boxagent serve --config deploy/vm/demo.toml inside, forward 127.0.0.1:8080")
	flag.BoolVar(&opts.Net, "net", false, "QEMU user networking (guest eth0 10.0.2.15)")
	flag.Func("fwd", "host forward, e.g. tcp:127.0.0.1:8080-:8080 (repeatable)", func(s string) error {
		opts.HostFwd = append(opts.HostFwd, s)
		return nil
	})
	flag.Func("bg", "shell command to start in the background (repeatable)", func(s string) error {
		opts.Background = append(opts.Background, []string{"sh", "-c", s})
		return nil
	})
	flag.Func("env", "K=V knob for the guest (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want K=V")
		}
		opts.Env[k] = v
		return nil
	})
	flag.Func("stick", "NAME=IMAGE a stick the guest may plug (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return errors.New("want NAME=IMAGE")
		}
		abs, err := filepath.Abs(v)
		opts.Sticks[k] = abs
		return err
	})
	flag.DurationVar(&opts.Timeout, "timeout", 0, "power off after this long (default: none for a shell, 5m for a command)")
	flag.StringVar(&opts.Dir, "dir", "", "results folder (default: a new temporary one)")
	flag.BoolVar(&keep, "keep", false, "keep the temporary results folder")
	flag.BoolVar(&verbose, "v", false, "log the harness's steps")
	flag.Parse()
	opts.Command = flag.Args()

	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	root, err := vm.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labvm:", err)
		return 1
	}
	opts.WorkDir = root
	// bin/boxagent is the host's; make demo ARCH=armhf builds the armhf
	// board's into bin/armhf.
	binDir := filepath.Join(root, "bin")
	if arch, err := vm.BoardArch(); err == nil && arch != vm.ArchAmd64 {
		binDir = filepath.Join(binDir, string(arch))
	}
	opts.Env["LAB_PATH"] = binDir
	if demo {
		bin := filepath.Join(binDir, "boxagent")
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(os.Stderr, "labvm: cannot find %s: build it first (make demo does)\n", bin)
			return 1
		}
		// demo-setup.sh brings up the daemons and virtual radios, then
		// becomes boxagent serve.
		opts.Background = append(opts.Background, []string{filepath.Join(root, "deploy", "vm", "demo-setup.sh"),
			bin, "serve", "--config", filepath.Join(root, "deploy", "vm", "demo.toml"), "--log-level", "info"})
		opts.HostFwd = append(opts.HostFwd, "tcp:127.0.0.1:8080-:8080")
	}
	opts.Interactive = len(opts.Command) == 0
	if opts.Interactive {
		// The serial console knows neither the terminal nor its size.
		if term := os.Getenv("TERM"); term != "" {
			opts.Env["LAB_TERM"] = term
		}
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 {
			opts.Env["LAB_ROWS"] = strconv.Itoa(int(ws.Row))
			opts.Env["LAB_COLS"] = strconv.Itoa(int(ws.Col))
		}
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "labvm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "labvm:", err)
			return 1
		}
		opts.Dir = d
		if !keep {
			defer os.RemoveAll(d)
		}
	}
	if opts.Interactive {
		fmt.Fprintln(os.Stderr, "labvm: booting the virtual board (about 10 s under TCG); Ctrl-C or poweroff ends it")
		if demo {
			fmt.Fprintln(os.Stderr, "labvm: boxagent serves inside; its page: https://localhost:8080 (self-signed: boxagent status shows its fingerprint), log in with the password: boxagent")
			fmt.Fprintln(os.Stderr, "labvm: (deploy/vm/demo.toml's password_hash; a box without one makes a password: boxagent config password)")
			fmt.Fprintln(os.Stderr, "labvm: try: boxagent status; boxagent bt scan; boxagent wifi scan; boxagent audio show")
		}
	}
	start := time.Now()
	res, err := vm.Run(context.Background(), opts)
	if res != nil && !opts.Interactive {
		if f, ferr := os.Open(res.Output); ferr == nil {
			io.Copy(os.Stdout, f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labvm:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "labvm: powered off after %s (guest init at %s)\n",
		time.Since(start).Round(100*time.Millisecond), res.Boot.Round(100*time.Millisecond))
	if keep {
		fmt.Fprintln(os.Stderr, "labvm: results in", res.Dir)
	}
	if opts.Interactive {
		return 0
	}
	if res.ExitCode < 0 {
		return 1
	}
	return res.ExitCode
}
