package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
			_, err := fmt.Fprint(e.Stdout, bashCompletion())
			return err
		},
	}
}

// bashCompletion is generated from the command table so it cannot drift.
func bashCompletion() string {
	var names []string
	var cases strings.Builder
	for _, c := range commands() {
		names = append(names, c.Name)
		if len(c.Verbs) > 0 {
			fmt.Fprintf(&cases, "    %s) verbs=%q ;;\n", c.Name, strings.Join(c.Verbs, " "))
		}
	}
	sort.Strings(names)
	return fmt.Sprintf(`# bash completion for boxagent
_boxagent() {
  local cur=${COMP_WORDS[COMP_CWORD]} verbs=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  case "${COMP_WORDS[1]}" in
%s  esac
  if [ "$COMP_CWORD" -eq 2 ] && [ -n "$verbs" ]; then
    COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "--json --socket --help" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _boxagent boxagent
`, strings.Join(names, " "), cases.String())
}
