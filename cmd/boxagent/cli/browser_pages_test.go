package cli_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// The Bluetooth, Audio and Network pages in real headless Chromium
// against a real daemon and the real (or, for BlueZ, dbusmock) services
// behind it: every change is made by clicking, and checked through the
// API or the service itself.

// browse logs in to the agent and opens #page at 360×740.
func browse(t *testing.T, p *agentProc, page string) context.Context {
	t.Helper()
	return browseAt(t, p, p.http, page)
}

// browseAt is browse through another address that reaches the agent.
func browseAt(t *testing.T, p *agentProc, addr, page string) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	// Start the browser on ctx itself: started on a step's shorter
	// context, it would end with that step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, page, "log in and open #"+page,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), "boxagent"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table")),
		chromedp.Click(chromedp.CSS(`nav a[href="#`+page+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#"+page+" .page-body > *")),
	)
	return ctx
}

// textOf is the text of the first element sel matches.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

// do runs one step of a page test with 20 s to spare; when it fails,
// the test ends with what the page and its event log show.
func do(t *testing.T, ctx context.Context, page, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("`+page+`").innerText + "\n--- events:\n" + document.getElementById("events").innerText`))
		t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, shown)
	}
}

// shootBoth saves the page at phone and TV-ish sizes.
func shootBoth(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	shoot(t, ctx, page+"-360")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, page+"-1280")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740)); err != nil {
		t.Fatal(err)
	}
}

const pageConfig = "[http]\nlisten = \"127.0.0.1:0\"\npassword_hash = \"" + demoHash + "\"\n"

// TestBrowserBluetoothPage: a scan started from the page shows a headset
// that appears while it runs, without a reload; pairing and disconnecting
// it from the page change its state on screen.
func TestBrowserBluetoothPage(t *testing.T) {
	addr := startBluezMock(t)
	root := t.TempDir()
	writeConfig(t, root, pageConfig)
	p := startAgentEnv(t, root, []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr})
	ctx := browse(t, p, "bluetooth")

	const known, added = "00:1B:66:AA:BB:CC", "00:1B:66:11:22:33"
	item := func(addr string) string { return `#bt-devices li[data-address="` + addr + `"]` }
	do(t, ctx, "bluetooth", "the known headset", chromedp.WaitVisible(chromedp.CSS(item(known))))
	if s := textOf(t, ctx, item(known)); !strings.Contains(s, "Office Headset") || !strings.Contains(s, "A2DP (music)") {
		t.Errorf("known headset: %q", s)
	}
	if s := textOf(t, ctx, "#bt-adapters"); !strings.Contains(s, "hci0 (box)") || !strings.Contains(s, "00:01:02:03:04:05") {
		t.Errorf("adapters: %q", s)
	}

	// Scan for long enough to add a device while it runs; the adapter's
	// row says it is scanning once BlueZ started discovery.
	do(t, ctx, "bluetooth", "start a scan",
		chromedp.SetValue(chromedp.CSS("#bt-scan-seconds"), "30"),
		chromedp.Click(chromedp.CSS("#bt-scan")),
		chromedp.WaitVisible(`//div[@id="bt-adapters"]//dd[contains(@class,"bt-discovering")][text()="yes"]`))
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dev dbus.ObjectPath
	if err := conn.Object("org.bluez", "/").CallWithContext(dctx, "org.bluez.Mock.AddDevice", 0, "hci0", added, "Car Kit").Store(&dev); err != nil {
		t.Fatal(err)
	}
	err = conn.Object("org.bluez", dev).CallWithContext(dctx, "org.freedesktop.DBus.Mock.UpdateProperties", 0, "org.bluez.Device1",
		map[string]dbus.Variant{"UUIDs": dbus.MakeVariant([]string{"0000110b-0000-1000-8000-00805f9b34fb", "0000111e-0000-1000-8000-00805f9b34fb"})}).Err
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "bluetooth", "the device added during the scan did not appear",
		chromedp.WaitVisible(`//li[@data-address="`+added+`"]//dd[text()="A2DP (music), HFP (calls)"]`))
	if s := textOf(t, ctx, item(added)); !strings.Contains(s, "Car Kit") || !strings.Contains(s, "headset") {
		t.Errorf("added device: %q", s)
	}
	if s := textOf(t, ctx, item(added)+" dd.bt-paired"); s != "no" {
		t.Errorf("added device paired: %q", s)
	}
	shootBoth(t, ctx, "bluetooth")

	// Pair from the page: paired, trusted and connected, as text.
	connected := func(addr, v string) string {
		return `//li[@data-address="` + addr + `"]//dd[contains(@class,"bt-connected")][text()="` + v + `"]`
	}
	do(t, ctx, "bluetooth", "pair from the page",
		chromedp.Click(chromedp.CSS("#bt-pair-001B66112233")),
		chromedp.WaitVisible(connected(added, "yes")),
		chromedp.WaitVisible(chromedp.CSS("#bt-disconnect-001B66112233")))
	for _, cls := range []string{"bt-paired", "bt-trusted"} {
		if s := textOf(t, ctx, item(added)+" dd."+cls); s != "yes" {
			t.Errorf("%s after pair: %q", cls, s)
		}
	}
	if s := textOf(t, ctx, item(added)+` p[role="status"]`); !strings.Contains(s, "bt.pair #") || !strings.Contains(s, "done") {
		t.Errorf("pair result: %q", s)
	}
	d, err := p.client().BtDevice(context.Background(), added)
	if err != nil || !d.Paired || !d.Trusted || !d.Connected {
		t.Errorf("the API after pairing from the page: %+v %v", d, err)
	}

	// Disconnect, then connect again, from the page.
	do(t, ctx, "bluetooth", "disconnect and connect from the page",
		chromedp.Click(chromedp.CSS("#bt-disconnect-001B66112233")),
		chromedp.WaitVisible(connected(added, "no")),
		chromedp.Click(chromedp.CSS("#bt-connect-001B66112233")),
		chromedp.WaitVisible(connected(added, "yes")))

	// Forget the other one: it leaves the list.
	do(t, ctx, "bluetooth", "forget from the page",
		chromedp.Click(chromedp.CSS("#bt-forget-001B66AABBCC")),
		chromedp.WaitNotPresent(chromedp.CSS(item(known))))
	if _, err := p.client().BtDevice(context.Background(), known); err == nil {
		t.Error("the forgotten device is still known to the API")
	}
}

// proxyInto forwards a new 127.0.0.1 port here to addr inside network
// namespace ns: the daemon runs there with its uplinks, Chromium (and
// chromedp's DevTools connection to it) stays here. The browser's Host
// and Origin stay the proxy's, so the agent's origin check holds.
func proxyInto(t *testing.T, ns, addr string) string {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := dialIn(h, addr)
				if err != nil {
					t.Logf("proxy into %s: %v", ns, err)
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.Close() }()
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialIn connects to addr from inside ns. The socket keeps the namespace
// it was made in; the thread goes back to ours, or, if it cannot, dies
// with the goroutine instead of serving others in the wrong namespace.
func dialIn(ns netns.NsHandle, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, err := net.Dial("tcp", addr)
	if netns.Set(orig) == nil {
		runtime.UnlockOSThread()
	}
	return c, err
}

// TestBrowserNetworkPage: the daemon runs in a network namespace with a
// DHCP uplink served by real dnsmasq (vendor class and option 125 sent)
// and a static one; the page shows the lease's details, and Apply and
// Renew from the page end as done operations.
func TestBrowserNetworkPage(t *testing.T) {
	l := newISPLab(t)
	l.dnsmasq(t, 0, "10.45.0", "10.45.0.1", "iptv.example")
	root := t.TempDir()
	writeConfig(t, root, "board = \"generic-x86_64\"\n"+pageConfig+`
[[network.uplink]]
parent = "uplink0"
[network.uplink.ipv4]
method = "dhcp"
vendor_class = "IPTV_TEST"
route_metric = 100
[network.uplink.ipv4.options]
125 = "hex:00000de9"

[[network.uplink]]
parent = "uplink1"
[network.uplink.ipv4]
method = "static"
address = "10.46.0.2/24"
gateway = "10.46.0.1"
dns = ["10.46.0.1"]
route_metric = 200
`)
	p := startAgentEnv(t, root, []string{netnsEnv + "=" + l.box})
	ctx := browseAt(t, p, proxyInto(t, l.box, p.http), "network")

	lease := `//li[@id="net-uplink-uplink0"]`
	do(t, ctx, "network", "the DHCP uplink's lease",
		chromedp.WaitVisible(lease+`//dd[text()="bound"]`))
	s := textOf(t, ctx, "#net-uplink-uplink0")
	for _, want := range []string{"uplink0", "dhcp", "up", "10.45.0.", "server\n10.45.0.1", "lease time\n2 min", "expires\n", "option 60: IPTV_TEST", "option 125: hex:00000de9", "DNS\n10.45.0.1", "gateway\n10.45.0.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the DHCP uplink lacks %q:\n%s", want, s)
		}
	}
	s = textOf(t, ctx, "#net-uplink-uplink1")
	for _, want := range []string{"static", "10.46.0.2/24", "gateway\n10.46.0.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the static uplink lacks %q:\n%s", want, s)
		}
	}
	shootBoth(t, ctx, "network")

	status := func(kind string) string {
		return `//section[@id="network"]//p[@role="status"][contains(text(),"` + kind + ` #")][contains(text(),": done")]`
	}
	do(t, ctx, "network", "apply from the page",
		chromedp.Click(chromedp.CSS("#net-apply")),
		chromedp.WaitVisible(status("net.apply")))
	do(t, ctx, "network", "renew from the page",
		chromedp.Click(chromedp.CSS("#net-renew-uplink0")),
		chromedp.WaitVisible(status("net.renew")))
	ops, err := p.client().Operations(context.Background(), journal.Query{Kind: "net.apply", Origin: "web"})
	if err != nil || len(ops) == 0 || ops[0].State != journal.StateDone {
		t.Errorf("the page's apply in the journal: %+v %v", ops, err)
	}
}
