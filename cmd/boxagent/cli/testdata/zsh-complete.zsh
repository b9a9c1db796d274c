# zsh-complete.zsh FPATH_DIR DUMP LINE: start an interactive zsh on a
# pseudo terminal with compinit (its dump file DUMP) and FPATH_DIR first in
# $fpath, type LINE and Tab, and print the matches zsh's completion system
# adds, one a line (compadd is wrapped to print them).
# Markers are typed split ("<""m>") so the terminal's echo of what is
# typed never looks like output.
zmodload zsh/zpty || exit 2
zpty z zsh -f -i || exit 2
zpty -w z "fpath=(${(q)1} \$fpath); PROMPT=; RPROMPT=; autoload -U compinit; compinit -u -d ${(q)2}"
zpty -w z 'bindkey "^I" complete-word; zstyle ":completion:*" insert-tab false'
zpty -w z 'compadd() { local -a hits; if [[ ${@[1,(i)(-|--)]} != *-(O|A|D)\ * ]]; then builtin compadd -A hits "$@"; (( $#hits )) && print -rl -- "${(@)hits/#/<""m>}" >&2; fi; builtin compadd "$@" }'
zpty -w z 'comppostfuncs=( __done ); __done() { print -r -- "<""done>" >&2; exit }'
zpty -w z 'print -r -- "<""ready>"'
local line
while zpty -r z line; do [[ $line == *'<ready>'* ]] && break; done
zpty -w -n z "$3"$'\t'
while zpty -r z line; do
  [[ $line == *'<done>'* ]] && exit 0
  [[ $line == *'<m>'* ]] && print -r -- ${${line##*<m>}//[$'\r\n']}
done
exit 3
