package cli_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/wifi"
)

// runWiFi runs a wifi command in-process with stdin.
func runWiFi(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := cli.Run(context.Background(), e, append([]string{"wifi"}, args...))
	return out.String(), errb.String(), code
}

func TestWiFiUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		name, stdin string
		args        []string
		code        int
		stderr      string
	}{
		{"no verb", "", nil, 2, "missing verb"},
		{"unknown verb", "", []string{"frob"}, 2, `unknown verb "frob"`},
		{"connect without ssid", "", []string{"connect"}, 2, "takes one SSID"},
		{"short psk", "1234567\n", []string{"connect", "home", "--psk-stdin"}, 2, "psk: 7 characters is too short"},
		{"64 non-hex", strings.Repeat("z", 64) + "\n", []string{"connect", "home", "--psk-stdin"}, 2, "psk: 64 characters must all be hex digits"},
		{"long ssid", "", []string{"connect", strings.Repeat("s", 33)}, 2, "ssid: "},
		{"empty psk", "\n", []string{"connect", "home", "--psk-stdin"}, 2, "empty password"},
		{"bad security", "", []string{"connect", "home", "--security", "wep"}, 2, "security: "},
		{"password-stdin alias", "1234567\n", []string{"connect", "home", "--password-stdin"}, 2, "psk: 7 characters is too short"},
		{"saved takes no argument", "", []string{"saved", "x"}, 2, "takes no arguments"},
		{"valid input reaches the daemon", "correct horse\n", []string{"connect", "home", "--psk-stdin", "--socket", missing}, 3, "not reachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runWiFi(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.stderr)
			}
			if c.stdin != "" && strings.TrimSpace(c.stdin) != "" && strings.Contains(stderr, strings.TrimSpace(c.stdin)) {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}
}

// TestWiFiWithoutRadio: a daemon on a machine without Wi-Fi says so, and
// refuses bad input before journalling anything.
func TestWiFiWithoutRadio(t *testing.T) {
	root := t.TempDir()
	p := startAgent(t, root)
	_, stderr, code := p.run("wifi", "status")
	if code != 1 || !strings.Contains(stderr, "wifi.absent") {
		t.Errorf("wifi status: exit %d, %q; want 1 and wifi.absent", code, stderr)
	}
	ctx := context.Background()
	_, _, err := p.client().WiFiConnect(ctx, wifi.Network{SSID: "home", PSK: "secret!"})
	var ae *apitype.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "wifi.invalid" || !strings.HasPrefix(ae.Message, "psk: ") {
		t.Errorf("connect with a 7-character PSK = %#v", err)
	}
	_, _, err = p.client().WiFiConnect(ctx, wifi.Network{SSID: "home", PSK: "secret password"})
	if !errors.As(err, &ae) || ae.Code != "wifi.absent" {
		t.Errorf("connect without Wi-Fi = %v", err)
	}
	ops, err := p.client().Operations(ctx, journal.Query{Kind: "wifi.connect"})
	if err != nil || len(ops) != 0 {
		t.Errorf("journalled: %+v, %v", ops, err)
	}
	if strings.Contains(p.stderr.String(), "secret") {
		t.Errorf("the daemon logged the PSK:\n%s", p.stderr.String())
	}
}
