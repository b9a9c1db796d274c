package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableEscapesCells: SSIDs and Bluetooth names are chosen by whoever
// is in radio range, and the table printed them raw: an SSID with escape
// sequences retitled, cleared or rewrote the serial console. Cells escape
// every non-printable character; printable non-ASCII names stay as they are.
func TestTableEscapesCells(t *testing.T) {
	var out bytes.Buffer
	tb := newTable(&out, "SSID", "SIGNAL")
	tb.row("evil\x1b]0;pwned\x07\x1b[2J\x1b[1;1H", "-40")
	tb.row("tab\there\nnewline\r", "-50")
	tb.row("Café ☕ 日本", "-60")
	tb.row("bidi\u202etxt.exe\x00nul\xff", "-70")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, c := range got {
		if c != '\n' && c != ' ' && (c < 0x20 || c == 0x7f || c == 0x202e || c == 0xfffd) {
			t.Errorf("table output holds %U:\n%q", c, got)
		}
	}
	for _, want := range []string{`evil\x1b]0;pwned\a\x1b[2J\x1b[1;1H`, `tab\there\nnewline\r`, "Café ☕ 日本", `bidi\u202etxt.exe\x00nul\xff`} {
		if !strings.Contains(got, want) {
			t.Errorf("table output lacks %q:\n%s", want, got)
		}
	}
	if lines := strings.Count(got, "\n"); lines != 5 {
		t.Errorf("%d lines, want 5:\n%s", lines, got)
	}
}
