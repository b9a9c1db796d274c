package guest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/boxagent/boxagent/internal/headless"
)

// Browser is headless Chromium (the host's, over the 9p root) driving the
// control page in the guest. Under TCG it takes a minute or two to start
// and seconds per page, so each step gets its own deadline and reports
// what the page showed when it fails.
type Browser struct {
	Ctx   context.Context // the browser's tab, for chromedp.Run
	t     testing.TB
	start time.Time
	// Report, if set, adds to a failed step's message (a daemon's log).
	Report func() string
}

// StartBrowser starts Chromium with a blank page; it ends with the test.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	t.Cleanup(cancel)
	bctx, stop, err := headless.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	b := &Browser{Ctx: bctx, t: t, start: time.Now()}
	// The first run starts the browser: on its own context, since a
	// step's deadline would end the browser with the step.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("cannot start Chromium: %v", err)
	}
	t.Logf("Chromium started: %s", time.Since(b.start).Round(time.Millisecond))
	return b
}

// Step runs the actions within four minutes, logs how long the test has
// run when they are done, and fails the test with the page's text if not.
func (b *Browser) Step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 4*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		shown, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		more := ""
		if b.Report != nil {
			more = b.Report()
		}
		b.t.Fatalf("%s (after %s): %v\nthe page shows:\n%s\n%s", what, time.Since(b.start).Round(time.Millisecond), err, shown, more)
	}
	b.t.Logf("%s: %s", what, time.Since(b.start).Round(time.Millisecond))
}

// WaitJS waits until the expression is truthy, checked on every change
// of the page (no timer): the step's deadline bounds it.
func WaitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0))(ctx, tg)
		return err
	})
}
