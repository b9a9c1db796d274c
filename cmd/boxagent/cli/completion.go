package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// shells are the completion scripts, each generated from the command
// table (typed) so that none can drift from the commands.
var shells = map[string]func(typed []typedCommand) string{
	"bash": bashCompletion,
	"zsh":  zshCompletion,
	"fish": fishCompletion,
}

func completionCmd() *Command {
	return &Command{
		Name: "completion", Usage: "bash|zsh|fish", Short: "print a shell completion script",
		Long: `Load it with: source <(boxagent completion bash)
zsh:  boxagent completion zsh >"${fpath[1]}/_boxagent"  (then compinit)
fish: boxagent completion fish | source

The Debian package installs all three, and the manual page (man boxagent).`,
		Verbs: []string{"bash", "zsh", "fish"},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) != 1 || shells[args[0]] == nil {
				return usagef("which shell? bash, zsh or fish")
			}
			_, err := fmt.Fprint(e.Stdout, shells[args[0]](typedCommands()))
			return err
		},
	}
}

// typedCommand is a command as a person types it: its verbs and its flags
// as Run parses them. Completion and the manual page are made from these.
type typedCommand struct {
	*Command
	Flags []*pflag.Flag
}

// typedCommands are the commands a person types (not the helpers), in
// the table's order. Flag defaults are those of an empty environment, so
// that the generated files do not depend on who generates them.
func typedCommands() []typedCommand {
	e := &Env{Getenv: func(string) string { return "" }}
	var out []typedCommand
	for _, c := range commands() {
		if c.Helper {
			continue
		}
		fs, _ := flagSet(c, e, &Opts{values: map[string]any{}})
		t := typedCommand{Command: c}
		fs.VisitAll(func(f *pflag.Flag) { t.Flags = append(t.Flags, f) })
		out = append(out, t)
	}
	return out
}

// names are the commands' names, sorted.
func names(typed []typedCommand) []string {
	var out []string
	for _, c := range typed {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

// flagNames are the long names of a command's flags.
func (c typedCommand) flagNames() []string {
	var out []string
	for _, f := range c.Flags {
		out = append(out, "--"+f.Name)
	}
	return out
}

// byName is typed sorted by name, for lists a person reads.
func byName(typed []typedCommand) []typedCommand {
	s := slices.Clone(typed)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	return s
}

// bashCompletion: the commands, each command's verbs (the word after it)
// and its flags (any word starting with -).
func bashCompletion(typed []typedCommand) string {
	var cases strings.Builder
	for _, c := range typed {
		fmt.Fprintf(&cases, "    %s) verbs=%q flags=%q ;;\n", c.Name, strings.Join(c.Verbs, " "), strings.Join(c.flagNames(), " "))
	}
	return fmt.Sprintf(`# bash completion for boxagent
_boxagent() {
  local cur=${COMP_WORDS[COMP_CWORD]} verbs="" flags=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  case "${COMP_WORDS[1]}" in
%s  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$verbs" ]; then
    COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _boxagent boxagent
`, strings.Join(names(typed), " "), cases.String())
}

// zshCompletion is the same completion as bash's, with each command's and
// flag's one-line help beside it. It works both as an autoloaded _boxagent
// in $fpath and sourced after compinit.
func zshCompletion(typed []typedCommand) string {
	var cmds, cases strings.Builder
	for _, c := range byName(typed) {
		fmt.Fprintf(&cmds, "    %s\n", shQuote(c.Name+":"+c.Short))
	}
	for _, c := range typed {
		var verbs, flags []string
		for _, v := range c.Verbs {
			verbs = append(verbs, shQuote(v))
		}
		for _, f := range c.Flags {
			flags = append(flags, shQuote("--"+f.Name+":"+firstLine(f.Usage)))
		}
		fmt.Fprintf(&cases, "    (%s) verbs=(%s) flags=(%s) ;;\n", c.Name, strings.Join(verbs, " "), strings.Join(flags, " "))
	}
	return fmt.Sprintf(`#compdef boxagent
# zsh completion for boxagent (boxagent completion zsh)
_boxagent() {
  local -a commands verbs flags
  commands=(
%s  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'boxagent command' commands
    return
  fi
  case $words[2] in
%s  esac
  if [[ $PREFIX == -* ]]; then
    _describe -t flags 'flag' flags
  elif (( CURRENT == 3 && $#verbs )); then
    _describe -t verbs 'verb' verbs
  else
    _files
  fi
}
if [[ $funcstack[1] == _boxagent ]]; then
  _boxagent "$@"
else
  compdef _boxagent boxagent
fi
`, cmds.String(), cases.String())
}

// fishCompletion is the same completion as bash's for fish, with each
// command's and flag's one-line help as its description.
func fishCompletion(typed []typedCommand) string {
	var b strings.Builder
	b.WriteString(`# fish completion for boxagent (boxagent completion fish)
# __boxagent_at N [COMMAND]: the word under the cursor is the Nth after
# boxagent (and the first was COMMAND).
function __boxagent_at
    set -l words (commandline -opc)
    test (count $words) -eq $argv[1]; or return 1
    test (count $argv) -eq 1; or test "$words[2]" = "$argv[2]"
end
# __boxagent_in COMMAND: the command line is COMMAND's.
function __boxagent_in
    set -l words (commandline -opc)
    test "$words[2]" = "$argv[1]"
end
complete -c boxagent -n '__boxagent_at 1' -f
`)
	for _, c := range byName(typed) {
		fmt.Fprintf(&b, "complete -c boxagent -n '__boxagent_at 1' -a %s -d %s\n", c.Name, shQuote(c.Short))
	}
	for _, c := range typed {
		for _, v := range c.Verbs {
			fmt.Fprintf(&b, "complete -c boxagent -n '__boxagent_at 2 %s' -f -a %s\n", c.Name, shQuote(v))
		}
		for _, f := range c.Flags {
			fmt.Fprintf(&b, "complete -c boxagent -n '__boxagent_in %s' -l %s -d %s\n", c.Name, f.Name, shQuote(firstLine(f.Usage)))
		}
	}
	return b.String()
}

// shQuote quotes s for bash, zsh and fish alike: in single quotes, where
// a single quote closes them, is written escaped (\') and opens them again.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// firstLine is the first line of a flag's help.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
