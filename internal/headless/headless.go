// Package headless starts the machine's own Chromium (Debian's chromium)
// for the control page's browser tests, the virtual board's browser test
// and the page-weight bench: one place for the flags the page is tested
// with.
package headless

import (
	"context"
	"errors"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium is returned by Start when chromium is not installed.
var ErrNoChromium = errors.New("chromium is not installed (make deps installs it)")

// Start launches headless Chromium with a private profile in profileDir
// and returns a browser context (one tab) and the function that ends the
// browser. ctx bounds the browser's whole life.
func Start(ctx context.Context, profileDir string) (context.Context, context.CancelFunc, error) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return nil, nil, ErrNoChromium
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profileDir),
		// chromedp gives Chromium 20 s to print its DevTools address; under
		// TCG on the virtual board it can take longer. ctx bounds the wait.
		chromedp.WSURLReadTimeout(3*time.Minute),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx)
	return bctx, func() { cancel(); cancelAlloc() }, nil
}
