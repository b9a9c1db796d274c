package cli_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/boxagent/boxagent/internal/headless"
)

// screenshots, when set (make screenshots), is where the browser test
// saves each page at phone and TV-ish sizes.
var screenshots = os.Getenv("BOXAGENT_SCREENSHOTS")

// newBrowser starts the machine's real headless Chromium.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	requireProcesses(t)
	ctx, stop, err := headless.Start(context.Background(), t.TempDir())
	if errors.Is(err, headless.ErrNoChromium) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); stop() })
	return ctx
}

func TestBrowserLoginOverviewHistory(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "[http]\nlisten = \"127.0.0.1:0\"\npassword_hash = \""+demoHash+"\"\n")
	p := startAgent(t, root)
	ctx := newBrowser(t)
	base := "http://" + p.http

	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(base+"/"),
		// Not logged in: the page sends us to the login form.
		chromedp.WaitVisible(css("#password")),
		chromedp.SendKeys(css("#password"), "boxagent"),
		chromedp.Click(css("#submit")),
		chromedp.WaitVisible(css("#status table")),
	)
	if err != nil {
		t.Fatalf("log in and see the overview: %v\n%s", err, p.stderr.String())
	}
	if heading, status := text("#overview-h"), text("#status"); heading != "Overview" || !strings.Contains(status, "journal") {
		t.Errorf("overview: heading %q, status %q", heading, status)
	}
	// The fleet line, from GET /api/v1/fleet: off without [fleet].
	waitJS(t, ctx, "the fleet line", `(document.getElementById("overview-live") || {textContent: ""}).textContent.includes("off (no [fleet] in the config)")`, `(document.getElementById("overview-live") || {textContent: ""}).textContent`)
	checkLayout(t, ctx, "overview", "#reload", "#lang", `nav a[href="#history"]`)
	shoot(t, ctx, "overview-360")

	// A change from the page is an operation; it appears live in History
	// (through the event stream) and shows its settings snapshot.
	err = chromedp.Do(ctx,
		chromedp.Click(css("#reload")),
		chromedp.WaitVisible(css("#reload-result")),
		chromedp.Click(css(`nav a[href="#history"]`)),
		chromedp.WaitVisible(css("#ops tbody tr td a")),
		chromedp.Click(css("#ops tbody tr td a")),
		chromedp.WaitVisible(css("#op-detail pre")),
	)
	if err != nil {
		t.Fatalf("reload and history: %v", err)
	}
	opState, snapshot := text("#ops tbody tr td:nth-child(4)"), text("#op-detail pre")
	if opState != "done" || !strings.Contains(snapshot, `"revision": "sha256:`) || strings.Contains(snapshot, "xIFMKrFD") {
		t.Errorf("history: state %q, snapshot %s", opState, snapshot)
	}
	checkLayout(t, ctx, "history", "#kind", "#ops tbody tr td a")
	shoot(t, ctx, "history-360")

	// The language switch turns the page into Simplified Chinese. SetValue
	// fires the select's input and change events, as a pick by hand does:
	// one switch, one catalogue load.
	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.SetValue(css("#lang"), "zh-CN"),
		chromedp.WaitReady(css(`html[lang="zh-CN"]`)),
		chromedp.Click(css(`nav a[href="#overview"]`)),
		chromedp.WaitVisible(css("#overview-h")),
	)
	if heading := text("#overview-h"); err != nil || heading != "概览" {
		t.Errorf("language switch: %q %v", heading, err)
	}
	shoot(t, ctx, "overview-zh-1280")
}

func shoot(t *testing.T, ctx context.Context, name string) {
	if screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	os.MkdirAll(screenshots, 0o755)
	if err := os.WriteFile(filepath.Join(screenshots, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}
