package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserLogin opens the page, logs in with the demo password and waits
// for the Overview.
func browserLogin(t *testing.T, ctx context.Context, base string, w, h int64) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(w, h),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), "boxagent"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table")),
	)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
}

// waitJS waits, on every DOM change, until the expression is truthy, and
// fails with what the page shows if it never is.
func waitJS(t *testing.T, ctx context.Context, what, expr, show string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](show))
		t.Fatalf("%s: %v; the page shows %q", what, err, got)
	}
}

// TestBrowserWiFiFirmware drives the Overview, Wi-Fi and Firmware pages
// with what the host has: no radio (the Wi-Fi API says why, and still
// words a bad password itself), a package in the store but no stick (the
// stage is refused with the API's error and hint). Scanning, joining and
// staging to 100 % need the virtual board: firmware TestLab
// (TestGuestBrowserStage) does the staging in Chromium there.
func TestBrowserWiFiFirmware(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "board = \"test-fw\"\n[http]\nlisten = \"127.0.0.1:0\"\npassword_hash = \""+demoHash+"\"\n")
	os.MkdirAll(filepath.Join(root, "etc/boxagent/boards"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/boxagent/boards/test-fw.toml"), []byte(fwProfile), 0o644)
	p := startAgent(t, root)
	pkg := filepath.Join(t.TempDir(), "update.zip")
	writeZip(t, pkg, "META-INF/com/google/android/update-binary")
	out, errOut, code := p.run("fw", "add", pkg)
	if code != 0 {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	sha := strings.Fields(out)[1]
	ctx := newBrowser(t)
	browserLogin(t, ctx, "http://"+p.http, 360, 740)

	// Overview: every domain has a line; what the host lacks reads "not
	// available" rather than failing the page; the import is among the
	// last operations.
	waitJS(t, ctx, "overview", `document.querySelector("#overview-live table") !== null && document.getElementById("overview-ops").textContent.includes("fw.add")`,
		`document.getElementById("overview").innerText`)
	live := textOf(t, ctx, "#overview-live")
	for _, want := range []string{"uplinks", "Wi-Fi", "Bluetooth headset", "audio mode", "staged package", "nothing staged yet"} {
		if !strings.Contains(live, want) {
			t.Errorf("overview lacks %q:\n%s", want, live)
		}
	}
	checkLayout(t, ctx, "overview", "#reload")
	shoot(t, ctx, "overview-full-360")

	// Wi-Fi: the status says why there is none; a connect with a short
	// password gets the API's own words, and the password is gone from
	// the field and from the page.
	const psk = "sekrit7"
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="#wifi"]`)),
		chromedp.WaitVisible(chromedp.CSS("#wifi-status > *")),
		chromedp.SendKeys(chromedp.CSS("#wifi-ssid"), "cafe"),
		chromedp.SendKeys(chromedp.CSS("#wifi-psk"), psk),
		chromedp.Click(chromedp.CSS("#wifi-connect")),
	)
	if err != nil {
		t.Fatalf("wifi page: %v", err)
	}
	waitJS(t, ctx, "connect refused", `document.getElementById("wifi-connect-result").className === "error"`, `document.getElementById("wifi").innerText`)
	if got := textOf(t, ctx, "#wifi-connect-result"); !strings.Contains(got, "psk: ") || !strings.Contains(got, "too short") {
		t.Errorf("connect with a short password: %q", got)
	}
	kind, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("wifi-psk").type + "/" + document.getElementById("wifi-psk").value`))
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if kind != "password/" || strings.Contains(html, psk) {
		t.Errorf("the password field is %q; in the page: %v", kind, strings.Contains(html, psk))
	}
	if st := textOf(t, ctx, "#wifi-status"); !strings.Contains(st, "not available") && !strings.Contains(st, "interface") {
		t.Errorf("wifi status: %q", st)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#wifi-scan"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "scan answered", `document.getElementById("wifi-scan-result").textContent !== "" && !document.getElementById("wifi-scan").disabled`,
		`document.getElementById("wifi-scan-result").textContent`)
	checkLayout(t, ctx, "wifi", "#wifi-ssid", "#wifi-psk", "#wifi-connect", "#wifi-scan")
	shoot(t, ctx, "wifi-360")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, "wifi-1280")

	// Firmware: the package, the board's key sequence, no stick; staging
	// is refused with the API's error and hint.
	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Click(chromedp.CSS(`nav a[href="#firmware"]`)),
		chromedp.WaitVisible(chromedp.CSS("#fw-artifacts td.mono")),
	)
	if err != nil {
		t.Fatalf("firmware page: %v", err)
	}
	if arts := textOf(t, ctx, "#fw-artifacts"); !strings.Contains(arts, sha) {
		t.Errorf("artifacts: %q, want %s", arts, sha)
	}
	if rec := textOf(t, ctx, "#fw-recovery"); !strings.Contains(rec, "Hold LEFT while powering on.") || !strings.Contains(rec, "test-fw") {
		t.Errorf("recovery: %q", rec)
	}
	if sticks := textOf(t, ctx, "#fw-sticks"); !strings.Contains(sticks, "No USB stick") {
		t.Errorf("sticks: %q", sticks)
	}
	// The device list is empty without a stick: the API picks the only
	// stick, and says there is none.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#fw-stage"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "stage refused", `document.getElementById("fw-stage-result").className === "error"`, `document.getElementById("firmware").innerText`)
	if got := textOf(t, ctx, "#fw-stage-result"); !strings.Contains(got, "no USB stick") || !strings.Contains(got, "plug a FAT32 USB stick") {
		t.Errorf("stage without a stick: %q", got)
	}
	checkLayout(t, ctx, "firmware", "#fw-stage")
	shoot(t, ctx, "firmware-360")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, "firmware-1280")
}
