package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/internal/headless"
)

// pageLoads is how many times the Overview is loaded (cache off each time).
const pageLoads = 5

// controlPage loads the control page's Overview in headless Chromium from
// the running daemon (logged in once with the password the daemon made
// under root) and reports what it weighs on the wire and how soon it
// paints. A machine without Chromium gets a line saying so instead of
// figures.
func controlPage(r *report, c *client.Client, root string) {
	r.add("## Control page (the Overview in headless Chromium)")
	r.add("")
	if err := measurePage(r, c, root); err != nil {
		r.add("Not measured: %v", err)
		r.add("")
	}
}

// pageRequest is one request of a load, from the Network domain's events.
type pageRequest struct {
	url      string
	wire     float64 // loadingFinished.encodedDataLength: headers and body as received
	body     int64   // sum of dataReceived.dataLength: the decoded body
	finished bool
}

func measurePage(r *report, c *client.Client, root string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if st.Listeners.HTTP == "" {
		return fmt.Errorf("the daemon serves no page")
	}
	base := "http://" + st.Listeners.HTTP + "/"
	profile, err := os.MkdirTemp("", "boxagent-bench-chromium")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	bctx, stop, err := headless.Start(ctx, profile)
	if err != nil {
		return err
	}
	defer stop()

	var mu sync.Mutex
	reqs := map[network.RequestID]*pageRequest{}
	get := func(id network.RequestID) *pageRequest {
		if reqs[id] == nil {
			reqs[id] = &pageRequest{}
		}
		return reqs[id]
	}
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			get(e.RequestID).url = e.Request.URL
		case *network.EventDataReceived:
			get(e.RequestID).body += e.DataLength
		case *network.EventLoadingFinished:
			p := get(e.RequestID)
			p.wire, p.finished = e.EncodedDataLength, true
		}
	}); err != nil {
		return err
	}
	// Every TCP call needs a session: log in once, before the measured
	// loads (the cookie stays in the profile).
	pass, err := os.ReadFile(filepath.Join(root, "var/lib/boxagent/http-password"))
	if err != nil {
		return fmt.Errorf("the page password: %w", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"login.html"), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), strings.TrimSpace(string(pass))), chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table"))); err != nil {
		return fmt.Errorf("cannot log in: %w", err)
	}
	if _, err := chromedp.Call(bctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		return err
	}
	// The Overview is complete when every domain's line, the doctor's
	// warnings and the last operations are drawn.
	const complete = `document.querySelector("#overview-live table") !== null &&
		!document.getElementById("overview-warnings").textContent.startsWith("…") &&
		!document.getElementById("overview-ops").textContent.startsWith("…") && performance.now()`
	var fcps, dones []time.Duration
	var last map[network.RequestID]*pageRequest
	for i := 0; i < pageLoads; i++ {
		mu.Lock()
		reqs = map[network.RequestID]*pageRequest{}
		mu.Unlock()
		if err := chromedp.Do(bctx, chromedp.Navigate(base)); err != nil {
			return err
		}
		done, err := chromedp.Run(bctx, chromedp.Poll[float64](complete, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			return fmt.Errorf("the Overview did not complete: %w", err)
		}
		fcp, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`(performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint") || {startTime: -1}).startTime`))
		if err != nil || fcp < 0 {
			return fmt.Errorf("no first-contentful-paint entry: %v", err)
		}
		fcps = append(fcps, time.Duration(fcp*float64(time.Millisecond)))
		dones = append(dones, time.Duration(done*float64(time.Millisecond)))
		mu.Lock()
		last = reqs
		mu.Unlock()
	}

	mu.Lock()
	defer mu.Unlock()
	var rows []*pageRequest
	var wire float64
	var body int64
	streams := 0
	for _, p := range last {
		if p.url == "" || strings.HasPrefix(p.url, "data:") {
			continue
		}
		if !p.finished {
			streams++ // the event stream stays open: counted apart
			continue
		}
		rows = append(rows, p)
		wire += p.wire
		body += p.body
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].body > rows[j].body })
	r.add("Loaded %d times from a fresh profile with the cache off, against the bench's daemon (logged in once before; Bluetooth and PulseAudio absent, which the Overview shows as not available). Goal: under 100 KB uncompressed.", pageLoads)
	r.add("")
	r.add("| measure | value |")
	r.add("| --- | --- |")
	r.add("| requests until the Overview is complete | %d, and %d still open (the event stream) |", len(rows), streams)
	r.add("| bytes transferred (encodedDataLength, headers included) | %.0f (%.1f KB) |", wire, wire/1000)
	r.add("| bytes of bodies, uncompressed (dataReceived) | %d (%.1f KB) |", body, float64(body)/1000)
	r.add("| first contentful paint, min / median / max of %d | %s |", pageLoads, spreadOf(durations(fcps)).dur())
	r.add("| Overview complete (every line drawn), min / median / max of %d | %s |", pageLoads, spreadOf(durations(dones)).dur())
	r.add("")
	r.add("| request | body bytes | on the wire |")
	r.add("| --- | --- | --- |")
	for _, p := range rows {
		u, _ := url.Parse(p.url)
		path := p.url
		if u != nil {
			path = u.RequestURI()
		}
		r.add("| `%s` | %d | %.0f |", path, p.body, p.wire)
	}
	r.add("")
	return nil
}
