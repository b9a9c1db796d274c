package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

func completionCmd() *Command {
	return &Command{
		Name: "completion", Usage: "bash", Short: "print a shell completion script",
		Long:  "Load it with: source <(boxagent completion bash)",
		Verbs: []string{"bash"},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) != 1 || args[0] != "bash" {
				return usagef("only bash is supported")
			}
			_, err := fmt.Fprint(e.Stdout, bashCompletion(e))
			return err
		},
	}
}

// flagNames are the long names of a command's flags, as Run parses them.
func flagNames(c *Command, e *Env) []string {
	fs, _ := flagSet(c, e, &Opts{values: map[string]any{}})
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
	return names
}

// bashCompletion is generated from the command table so it cannot drift:
// the commands, each command's verbs (the word after it) and its flags
// (any word starting with -).
func bashCompletion(e *Env) string {
	var names []string
	var cases strings.Builder
	for _, c := range commands() {
		if c.Helper {
			continue
		}
		names = append(names, c.Name)
		fmt.Fprintf(&cases, "    %s) verbs=%q flags=%q ;;\n", c.Name, strings.Join(c.Verbs, " "), strings.Join(flagNames(c, e), " "))
	}
	sort.Strings(names)
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
`, strings.Join(names, " "), cases.String())
}
