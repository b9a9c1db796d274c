package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

// environment is every variable the command line reads, for the manual
// page (TestManPage finds each BOXAGENT_ name of the package's code here).
var environment = []struct{ name, meaning string }{
	{"BOXAGENT_SOCKET", "the agent's API socket when --socket is not given (default " + paths.Default.Socket() + ")"},
	{"BOXAGENT_FLEET_BROKER", "boxagent fleet: the broker URLs, comma-separated, when --broker is not given"},
	{"BOXAGENT_FLEET_CA", "boxagent fleet: the broker's CA when --ca is not given"},
	{"BOXAGENT_FLEET_CERT", "boxagent fleet: the operator's client certificate when --cert is not given"},
	{"BOXAGENT_FLEET_KEY", "boxagent fleet: the operator's client key when --key is not given"},
	{"BOXAGENT_FLEET_SIGN_KEY", "boxagent fleet: the operator's signing key when --sign-key is not given"},
	{"TERM", "when unset or dumb (or standard output is not a terminal), long operations print their progress as lines, not as a bar"},
	{"JOURNAL_STREAM", "set by systemd: boxagent serve leaves the log's timestamps to the journal"},
}

// files are the paths the manual page names, from the one Paths value.
var files = []struct{ path, meaning string }{
	{paths.Default.ConfigFile(), "the agent's configuration (TOML), checked by boxagent config check"},
	{paths.Default.BoardsDir(), "board profiles added to the built-in ones"},
	{paths.Default.Socket(), "the local API's socket, which every command but serve talks to"},
	{paths.Default.StateDir(), "the agent's state: the operations journal, the firmware artifact store, the control page's password and certificate"},
}

// manPage is boxagent.1, made from the command table as help and the
// completion scripts are.
func manPage(typed []typedCommand) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH BOXAGENT 1 \"\" \"boxagent %s\" \"User Commands\"\n", roffArg(Version()))
	fmt.Fprintf(&b, ".SH NAME\nboxagent \\- %s\n", roffText(summary))
	b.WriteString(`.SH SYNOPSIS
.B boxagent
[\fB\-\-socket\fR \fIPATH\fR] [\fB\-\-json\fR] \fIcommand\fR [\fIverb\fR] [\fIflags\fR]
.SH DESCRIPTION
boxagent runs as a service on a set-top box or dev board
.RB ( "boxagent serve" ,
started by boxagent.service) and every other command is a thin client of
its local API on a unix socket, but for config check, version, help and
completion, which work without it.
Results go to standard output, information and errors to standard error;
every read command takes
.B \-\-json
for a stable machine-readable result.
Output is plain ASCII unless standard output is a terminal that is not
"dumb".
.PP
The flags every command takes,
.B \-\-socket
and
.BR \-\-json ,
may also come before the command.
Shell completion: the Debian package installs it for bash, zsh and fish;
.B boxagent completion
prints the scripts.
.SH COMMANDS
`)
	for _, c := range byName(typed) {
		manCommand(&b, c)
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, v := range environment {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", v.name, roffText(v.meaning))
	}
	b.WriteString(".SH FILES\n")
	for _, f := range files {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", roffArg(f.path), roffText(f.meaning))
	}
	b.WriteString(".SH \"EXIT STATUS\"\n")
	for _, c := range exitCodes {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s: %s.\n", c.code, roffText(c.word), roffText(c.meaning))
	}
	b.WriteString(`.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.BR bluetoothctl (1),
.BR wpa_supplicant (8),
.BR pppd (8)
.PP
/usr/share/doc/boxagent/examples/config.toml
`)
	return b.String()
}

// manCommand is one command's subsection: its usage, help, verbs and flags.
func manCommand(b *strings.Builder, c typedCommand) {
	fmt.Fprintf(b, ".SS %s\n.B boxagent %s\n%s\n.PP\n%s\n", c.Name, c.Name, roffText(c.Usage), roffText(c.Short))
	for _, p := range strings.Split(strings.TrimSpace(c.Long), "\n\n") {
		if p = strings.Trim(p, "\n"); p == "" {
			continue
		}
		if preformatted(p) {
			fmt.Fprintf(b, ".PP\n.nf\n%s\n.fi\n", roffText(p))
		} else {
			fmt.Fprintf(b, ".PP\n%s\n", roffText(p))
		}
	}
	if len(c.Verbs) > 0 {
		verbs := make([]string, len(c.Verbs))
		for i, v := range c.Verbs {
			verbs[i] = `\fB` + roffText(v) + `\fR`
		}
		fmt.Fprintf(b, ".PP\nVerbs: %s.\n", strings.Join(verbs, ", "))
	}
	for _, f := range c.Flags {
		fmt.Fprintf(b, ".TP\n%s\n%s\n", roffFlag(f), roffText(flagHelp(f)))
	}
}

// preformatted says a paragraph of help is laid out by hand (examples, a
// verb per line with its text in a column) and must not be filled.
func preformatted(p string) bool {
	for _, l := range strings.Split(p, "\n") {
		if strings.HasPrefix(l, " ") || strings.Contains(l, "   ") {
			return true
		}
	}
	return false
}

// roffFlag is a flag's tag: -n, --limit int.
func roffFlag(f *pflag.Flag) string {
	tag := `\fB\-\-` + roffText(f.Name) + `\fR`
	if f.Shorthand != "" {
		tag = `\fB\-` + f.Shorthand + `\fR, ` + tag
	}
	if name, _ := pflag.UnquoteUsage(f); name != "" {
		tag += ` \fI` + roffText(name) + `\fR`
	}
	return tag
}

// flagHelp is a flag's help with its default, as --help shows it.
func flagHelp(f *pflag.Flag) string {
	_, usage := pflag.UnquoteUsage(f)
	switch f.DefValue {
	case "", "0", "false", "[]", "0s":
		return usage
	}
	return fmt.Sprintf("%s (default %s)", usage, f.DefValue)
}

// optionDashes writes the dashes that start an option (-h, --json) as
// roff's minus sign, \-, so that the option can be copied from the page:
// a run of '-' at the start of s or after white space (space, \t, \n,
// \f, \r) or one of [(|'"=. Other hyphens stay.
func optionDashes(s string) string {
	var b strings.Builder
	option := false
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || s[i-1] != '-' {
			option = i == 0 || strings.IndexByte(" \t\n\f\r[(|'\"=", s[i-1]) >= 0
		}
		if option {
			b.WriteString(`\-`)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// roffText escapes help text for roff: backslashes, a control character
// at the start of a line, options' dashes, and every non-ASCII character
// as a named glyph, so the page renders the same in any locale.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = optionDashes(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	var b strings.Builder
	for _, r := range strings.Join(lines, "\n") {
		if r > 0x7e {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffArg is text for a quoted macro argument: a quote is \(dq.
func roffArg(s string) string {
	return strings.ReplaceAll(roffText(s), `"`, `\(dq`)
}
