// Package cli is boxagent's command line: `boxagent <noun> [verb]`. Every
// command but serve, config check, version, help and completion is a thin
// client of the local API. Results go to stdout, information to stderr;
// every read command has --json; output is plain ASCII unless stdout is a
// terminal that is not "dumb".
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitUnreachable = 3
)

// exitCodes name the exit codes for help (a word) and the manual page.
var exitCodes = []struct {
	code          int
	word, meaning string
}{
	{ExitOK, "ok", "the command did what it was asked"},
	{ExitFailed, "failed", "the command, or the operation it asked the agent for, failed; the reason is on standard error"},
	{ExitUsage, "usage", "the command line is wrong: an unknown command, verb or flag, or a missing argument"},
	{ExitUnreachable, "daemon unreachable", "the agent's socket did not answer (is boxagent.service running?)"},
}

// summary is what boxagent is, in help and the manual page's NAME.
const summary = "Bluetooth headsets, uplinks and firmware staging for set-top boxes and dev boards"

// version is stamped at build time with -ldflags -X.
var version = "dev"

// Version is the build's version string.
func Version() string { return version }

// Env is what a command may touch of the outside world, swappable in tests.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal says whether stdout is an interactive terminal.
	Terminal bool
}

// Command is one `boxagent <name>` command.
type Command struct {
	Name  string
	Usage string // the arguments after the name, e.g. "[ID]"
	Short string
	Long  string
	// Flags are the command's own flags; Run sees them parsed.
	Flags func(fs *pflag.FlagSet, o *Opts)
	Run   func(ctx context.Context, e *Env, o *Opts, args []string) error
	// Verbs lists sub-verbs for help and completion.
	Verbs []string
	// Helper commands are run by the package's units, not typed: they
	// have help of their own but are left out of the list and of
	// completion.
	Helper bool
}

// Opts are the flags every command shares, plus room for command flags.
type Opts struct {
	Socket string
	// SocketSet is true when --socket was given on the command line.
	SocketSet bool
	JSON      bool
	Root      string
	// command-specific values, filled by Flags funcs
	values map[string]any
	// remote, when set, carries the API calls instead of the socket:
	// boxagent fleet runs the same commands on a box through the broker.
	remote *remote
}

// remote is another way to the API than the socket, named for errors.
type remote struct {
	rt   http.RoundTripper
	name string
}

func (o *Opts) client() *client.Client {
	if o.remote != nil {
		return client.NewTransport(o.remote.rt, o.remote.name, "cli")
	}
	return client.New(o.Socket, "cli")
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func commands() []*Command {
	return []*Command{
		serveCmd(), statusCmd(), eventsCmd(), historyCmd(), configCmd(),
		doctorCmd(), boardCmd(), versionCmd(), completionCmd(), helpCmd(),
		provisionCmd(), mountHelperCmd(), pppoeHelperCmd(),
		wifiCmd(),
		audioCmd(),
		netCmd(),
		btCmd(),
		fwCmd(),
		fleetCmd(),
	}
}

func find(name string) *Command {
	for _, c := range commands() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	e := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Terminal: isTerminal(os.Stdout)}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, e, args)
}

// Run runs one command line in e.
func Run(ctx context.Context, e *Env, args []string) int { return run(ctx, e, args, nil) }

// run runs one command line, its API calls through rem when not nil.
func run(ctx context.Context, e *Env, args []string, rem *remote) int {
	if len(args) == 0 {
		printHelp(e.Stderr)
		return ExitUsage
	}
	args, err := globalsAfterNoun(args)
	if err != nil {
		fmt.Fprintf(e.Stderr, "boxagent: %v\n", err)
		fmt.Fprintln(e.Stderr, "usage: boxagent [--socket PATH] [--json] <command> [verb] [flags]")
		return ExitUsage
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	if name == "--version" {
		name = "version"
	}
	cmd := find(name)
	if cmd == nil {
		fmt.Fprintf(e.Stderr, "boxagent: unknown command %q\n", name)
		fmt.Fprintln(e.Stderr, "hint: boxagent help lists the commands")
		return ExitUsage
	}
	o := &Opts{values: map[string]any{}, remote: rem}
	fs, help := flagSet(cmd, e, o)
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintf(e.Stderr, "boxagent %s: %v\n", cmd.Name, err)
		fmt.Fprintf(e.Stderr, "usage: boxagent %s %s\n", cmd.Name, cmd.Usage)
		return ExitUsage
	}
	if *help {
		printCommandHelp(e.Stdout, cmd, fs)
		return ExitOK
	}
	o.SocketSet = fs.Changed("socket")
	err = cmd.Run(ctx, e, o, fs.Args())
	return report(e, cmd, err)
}

// globalsAfterNoun moves the flags every command takes (--socket PATH,
// --json) from before the command's name to after it, where the command's
// flags are parsed: `boxagent --socket X status` is `boxagent status
// --socket X`. Help and version flags stay where they are.
func globalsAfterNoun(args []string) ([]string, error) {
	var globals []string
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		switch a := args[i]; {
		case a == "-h" || a == "--help" || a == "--version":
			return append(args[i:i+1:i+1], append(args[i+1:], globals...)...), nil
		case a == "--json" || strings.HasPrefix(a, "--socket="):
			globals = append(globals, a)
		case a == "--socket":
			if i+1 == len(args) {
				return nil, errors.New("--socket needs a path")
			}
			globals = append(globals, a, args[i+1])
			i++
		default:
			return nil, fmt.Errorf("unknown flag %q before the command: only --socket and --json go there", a)
		}
	}
	if i == len(args) {
		return nil, errors.New("missing command")
	}
	return append([]string{args[i]}, append(globals, args[i+1:]...)...), nil
}

// flagSet is the command's flags, as Run parses them and completion
// offers them: --socket for the commands that talk to the daemon, the
// command's own, and --help.
func flagSet(cmd *Command, e *Env, o *Opts) (*pflag.FlagSet, *bool) {
	fs := pflag.NewFlagSet("boxagent "+cmd.Name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	if cmd.Name != "help" && cmd.Name != "version" && cmd.Name != "completion" {
		def := paths.Default.Socket()
		if v := e.Getenv("BOXAGENT_SOCKET"); v != "" {
			def = v
		}
		fs.StringVar(&o.Socket, "socket", def, "path of the daemon's API socket")
	}
	if cmd.Flags != nil {
		cmd.Flags(fs, o)
	}
	return fs, fs.BoolP("help", "h", false, "show this help")
}

// report prints an error as one line and a hint, and picks the exit code.
func report(e *Env, cmd *Command, err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	var ae *apitype.Error
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		return int(ec) // the inner command has reported it

	case errors.As(err, &ue):
		fmt.Fprintf(e.Stderr, "boxagent %s: %s\n", cmd.Name, ue.msg)
		fmt.Fprintf(e.Stderr, "usage: boxagent %s %s\n", cmd.Name, cmd.Usage)
		return ExitUsage
	case errors.As(err, new(*client.InterruptedError)):
		// Before ErrUnreachable: the agent was reached, and went away
		// during the operation; one exit code however it went away.
		fmt.Fprintf(e.Stderr, "boxagent %s: %v\n", cmd.Name, err)
		return ExitFailed
	case errors.Is(err, client.ErrUnreachable):
		fmt.Fprintf(e.Stderr, "boxagent %s: %v\n", cmd.Name, err)
		fmt.Fprintln(e.Stderr, "hint: systemctl status boxagent")
		return ExitUnreachable
	case errors.As(err, &ae):
		fmt.Fprintf(e.Stderr, "boxagent %s: %s (%s)\n", cmd.Name, printableLines(ae.Message), ae.Code)
		if ae.Hint != "" {
			fmt.Fprintf(e.Stderr, "hint: %s\n", ae.Hint)
		}
		return ExitFailed
	case errors.Is(err, context.Canceled), errors.Is(err, errSilent):
		return ExitFailed
	}
	fmt.Fprintf(e.Stderr, "boxagent %s: %v\n", cmd.Name, err)
	return ExitFailed
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "boxagent: "+summary)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: boxagent [--socket PATH] [--json] <command> [verb] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	for _, c := range cmds {
		if !c.Helper {
			fmt.Fprintf(w, "  %-11s %s\n", c.Name, c.Short)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'boxagent help <command>' or 'boxagent <command> --help' for details.")
	var codes []string
	for _, c := range exitCodes {
		codes = append(codes, fmt.Sprintf("%d %s", c.code, c.word))
	}
	fmt.Fprintf(w, "Exit codes: %s.\n", strings.Join(codes, ", "))
}

func printCommandHelp(w io.Writer, c *Command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "usage: boxagent %s %s\n\n%s\n", c.Name, c.Usage, c.Short)
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Long))
	}
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nflags:\n%s", fs.FlagUsages())
	}
}

func helpCmd() *Command {
	var man bool
	return &Command{
		Name: "help", Usage: "[command] | --man", Short: "show help for boxagent or one command",
		Long: `--man prints the manual page, boxagent.1, made from the same commands:
  boxagent help --man | man -l -`,
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			fs.BoolVar(&man, "man", false, "print the manual page (roff) of every command")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if man {
				if len(args) > 0 {
					return usagef("--man takes no command: the page has them all")
				}
				_, err := io.WriteString(e.Stdout, manPage(typedCommands()))
				return err
			}
			if len(args) == 0 {
				printHelp(e.Stdout)
				return nil
			}
			c := find(args[0])
			if c == nil {
				return usagef("unknown command %q", args[0])
			}
			Run(ctx, e, []string{c.Name, "--help"})
			return nil
		},
	}
}
