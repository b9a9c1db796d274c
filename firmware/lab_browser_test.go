//go:build lab

package firmware

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// labPasswordHash is the argon2id hash of "boxagent" (deploy/vm/demo.toml's).
const labPasswordHash = "$argon2id$v=19$m=65536,t=2,p=2$Ym94YWdlbnQtZGVtby0xNg$xIFMKrFDubzEY9hLaUNH/cofF+vzuhZjZ0AQe/Qj2Fs"

// TestGuestBrowserStage is the control page's staging, end to end on the
// virtual board: boxagent serve with a password, a hot-plugged FAT32
// stick, and headless Chromium (the host's, over the 9p root) logging in,
// opening #firmware, staging the package onto the stick and following the
// operation until the <progress> bar is full and the result says done;
// then History shows the fw.stage operation with its settings snapshot.
// The host (TestLab) checks the image afterwards.
func TestGuestBrowserStage(t *testing.T) {
	vm.RequireGuest(t)
	bin := os.Getenv("FW_BOXAGENT")
	if bin == "" {
		t.Skip("FW_BOXAGENT is not set")
	}
	cert := filepath.Join(os.Getenv(envLabDir), labCert)
	a := guest.StartAgent(t, bin, t.TempDir(), "board = \"auto\"\n[firmware]\nkeys = [\""+cert+"\"]\n[http]\npassword_hash = \""+labPasswordHash+"\"\n")
	out, errOut, code := a.Run(t, "fw", "add", filepath.Join(os.Getenv(envLabDir), labSmall))
	if code != 0 {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	sha := os.Getenv("FW_SHA_SMALL")
	plug := guest.PlugStick(t, "web")
	dev := filepath.Base(plug.Partitions[0])

	b := guest.StartBrowser(t)
	b.Report = func() string {
		bar, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`(() => { const p = document.getElementById("fw-progress"); return p ? "progress " + p.value + "/" + p.max : ""; })()`))
		log, _ := os.ReadFile(a.Log)
		return bar + "\nagent log:\n" + tail(string(log), 40)
	}
	step, wait, bctx := b.Step, guest.WaitJS, b.Ctx
	step("open the page: the login form",
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate("http://"+a.HTTP+"/"),
		chromedp.WaitVisible(chromedp.CSS("#password")),
	)
	step("log in (argon2id under TCG) and see the Overview",
		chromedp.SendKeys(chromedp.CSS("#password"), "boxagent"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table")),
	)
	// The stick appears in the page from the agent's "fw" event (or the
	// first fetch, if the agent saw it first).
	step("open #firmware and see the stick",
		chromedp.Click(chromedp.CSS(`nav a[href="#firmware"]`)),
		wait(`[...document.querySelectorAll("#fw-device option")].some((o) => o.value === "`+dev+`") &&
			[...document.querySelectorAll("#fw-artifact option")].some((o) => o.value === "`+sha+`")`),
	)
	if s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#fw-sticks"))); !strings.Contains(s, "LABweb") && !strings.Contains(s, dev) {
		t.Errorf("the sticks table: %q", s)
	}
	// Two sticks are plugged (the boot stick too): choose this one.
	step("stage to 100 %",
		chromedp.SetValue(chromedp.CSS("#fw-device"), dev),
		chromedp.SetValue(chromedp.CSS("#fw-artifact"), sha),
		chromedp.Click(chromedp.CSS("#fw-stage")),
		wait(`(() => { const b = document.getElementById("fw-progress"), r = document.getElementById("fw-stage-result");
			return b.max > 1 && b.value === b.max && r.className !== "error" && /^fw\.stage #\d+: done/.test(r.textContent); })()`),
	)
	res, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("fw-progress").value + "/" + document.getElementById("fw-progress").max + " " +
		document.getElementById("fw-stage-result").textContent + "\n" + document.getElementById("fw-stage-notes").innerText`))
	t.Logf("the page after staging: %s", res)
	if !strings.Contains(res, "At the box") && !strings.Contains(res, "Now, at the box") {
		t.Errorf("the page does not show the recovery instructions: %s", res)
	}
	step("History shows the operation with its snapshot",
		chromedp.Click(chromedp.CSS(`nav a[href="#history"]`)),
		wait(`[...document.querySelectorAll("#ops tbody tr")].some((tr) => tr.children[1].textContent === "fw.stage" && tr.children[3].textContent === "done")`),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`[...document.querySelectorAll("#ops tbody tr")].find((tr) => tr.children[1].textContent === "fw.stage").querySelector("a").click() || true`)(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS("#op-detail pre")),
	)
	detail, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#op-detail")))
	if !strings.Contains(detail, "fw.stage #") || !strings.Contains(detail, `"revision": "sha256:`) || strings.Contains(detail, "xIFMKrFD") {
		t.Errorf("History's fw.stage: %s", detail)
	}
	// The journal keeps what was written where.
	out, _, _ = a.Run(t, "history", "--kind", "fw.stage", "--json")
	if !strings.Contains(out, sha) || !strings.Contains(out, `"web"`) {
		t.Errorf("the journal's fw.stage record:\n%s", out)
	}
	out, errOut, code = a.Run(t, "fw", "eject", "--device", dev)
	if code != 0 {
		t.Errorf("fw eject: exit %d\n%s%s", code, out, errOut)
	}
	plug.Unplug(t)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
