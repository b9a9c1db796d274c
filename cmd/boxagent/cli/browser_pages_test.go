package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// The Bluetooth, Audio and Network pages in real headless Chromium
// against a real daemon and the real (or, for BlueZ, dbusmock) services
// behind it: every change is made by clicking, and checked through the
// API or the service itself.

// browse logs in to the agent and opens #page at 360×740.
func browse(t *testing.T, p *agentProc, page string) context.Context {
	t.Helper()
	return browseAt(t, p.http, page)
}

// browseAt is browse through another address that reaches the agent.
func browseAt(t *testing.T, addr, page string) context.Context {
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

// textOf is the text of the first element sel matches, read in one
// evaluation: the pages redraw on events, and a node found by one
// DevTools call may be gone by the next.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+string(q)+`); if (!e) throw new Error("no element " + `+string(q)+`); return e.innerText; })()`))
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

// click clicks sel in one evaluation: the pages redraw on events, and a
// node found by one DevTools call may be replaced before the next.
func click(sel string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + string(q) + `).click()`)
}

// checkLabels fails for a control of the page that has no label and no
// aria-label, or a clickable that is not a <button>.
func checkLabels(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#`+page+` input, #`+page+` select, #`+page+` meter")]
		.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map((e) => e.id || e.outerHTML)
		.concat([...document.querySelectorAll("#`+page+` [onclick], #`+page+` [role=button]")].map((e) => "not a button: " + e.outerHTML))`))
	if err != nil || len(bad) > 0 {
		t.Errorf("#%s: unlabelled controls %v %v", page, bad, err)
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
// that appears while it runs, without a reload; pairing, disconnecting
// and connecting it from the page change its state on screen; its
// auto-connect switch edits the config file; Forget removes a device;
// the adapter is powered off and on; the pairing window opens and closes
// from the keyboard.
func TestBrowserBluetoothPage(t *testing.T) {
	addr := startBluezMock(t)
	root := t.TempDir()
	cfgPath := writeConfig(t, root, pageConfig)
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

	// Power the adapter off and on from the page.
	powered := func(v string) string {
		return `//div[@id="bt-adapters"]//dd[contains(@class,"bt-powered")][text()="` + v + `"]`
	}
	do(t, ctx, "bluetooth", "power off",
		click("#bt-power-hci0"),
		chromedp.WaitVisible(powered("no")))
	if ads, err := p.client().BtAdapters(context.Background()); err != nil || len(ads) != 1 || ads[0].Powered {
		t.Errorf("adapters after power off from the page: %+v %v", ads, err)
	}
	do(t, ctx, "bluetooth", "power on",
		click("#bt-power-hci0"),
		chromedp.WaitVisible(powered("yes")))
	// The CLI's power off shows live on the page (a "bt" adapter event).
	if out, stderr, code := p.run("bt", "power", "off"); code != 0 || out != "powered off hci0\n" {
		t.Errorf("bt power off: exit %d\n%s%s", code, out, stderr)
	}
	do(t, ctx, "bluetooth", "the page follows the CLI's power off",
		chromedp.WaitVisible(powered("no")),
		click("#bt-power-hci0"),
		chromedp.WaitVisible(powered("yes")))

	// The pairing window, opened and closed with the keyboard alone.
	pairable := func(v string) string {
		return `//div[@id="bt-adapters"]//dd[contains(@class,"bt-pairable")][starts-with(text(),"` + v + `")]`
	}
	do(t, ctx, "bluetooth", "open the pairing window with the keyboard",
		chromedp.Focus(chromedp.CSS("#bt-pairable")),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(pairable("yes")),
		chromedp.WaitVisible(`//button[@id="bt-pairable"][text()="Close the pairing window"]`))
	do(t, ctx, "bluetooth", "close the pairing window with the keyboard",
		chromedp.Focus(chromedp.CSS("#bt-pairable")),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(pairable("no")))

	// Scan for long enough to add a device while it runs; the adapter's
	// row says it is scanning once BlueZ started discovery.
	do(t, ctx, "bluetooth", "start a scan",
		chromedp.SetValue(chromedp.CSS("#bt-scan-seconds"), "30"),
		click("#bt-scan"),
		chromedp.WaitVisible(`//div[@id="bt-adapters"]//dd[contains(@class,"bt-discovering")][text()="yes"]`))
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dev dbus.ObjectPath
	appeared := time.Now()
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
	t.Logf("figure: a device BlueZ adds during a scan is on the page %s later", time.Since(appeared).Round(time.Millisecond))
	if s := textOf(t, ctx, item(added)); !strings.Contains(s, "Car Kit") || !strings.Contains(s, "headset") {
		t.Errorf("added device: %q", s)
	}
	if s := textOf(t, ctx, item(added)+" dd.bt-paired"); s != "no" {
		t.Errorf("added device paired: %q", s)
	}
	checkLabels(t, ctx, "bluetooth")
	checkLayout(t, ctx, "bluetooth", "#bt-scan", "#bt-scan-seconds", "#bt-pairable", "#bt-power-hci0", "#bt-pair-001B66112233")
	shootBoth(t, ctx, "bluetooth")

	// Cancel the scan from the page, beside its progress: it ends as
	// cancelled and BlueZ stops discovering.
	do(t, ctx, "bluetooth", "cancel the scan from the page",
		click("#bluetooth button.op-cancel"),
		chromedp.WaitVisible(`//p[@role="status"][contains(text(),"cancelled on request")]`),
		chromedp.WaitVisible(`//div[@id="bt-adapters"]//dd[contains(@class,"bt-discovering")][text()="no"]`),
		chromedp.WaitNotPresent(chromedp.CSS("#bluetooth button.op-cancel")))
	if ops, err := p.client().Operations(context.Background(), journal.Query{Limit: 1, Kind: "bt.scan"}); err != nil || len(ops) != 1 || ops[0].State != journal.StateCancelled {
		t.Errorf("the scan cancelled from the page, in the journal: %+v %v", ops, err)
	}

	// Pair from the page: paired, trusted and connected, as text.
	connected := func(addr, v string) string {
		return `//li[@data-address="` + addr + `"]//dd[contains(@class,"bt-connected")][text()="` + v + `"]`
	}
	do(t, ctx, "bluetooth", "pair from the page",
		click("#bt-pair-001B66112233"),
		chromedp.WaitVisible(connected(added, "yes")),
		chromedp.WaitVisible(chromedp.CSS("#bt-disconnect-001B66112233")))
	for _, cls := range []string{"bt-paired", "bt-trusted"} {
		if s := textOf(t, ctx, item(added)+" dd."+cls); s != "yes" {
			t.Errorf("%s after pair: %q", cls, s)
		}
	}
	do(t, ctx, "bluetooth", "the pair operation's result",
		chromedp.WaitVisible(`//li[@data-address="`+added+`"]//p[@role="status"][starts-with(text(),"bt.pair #")][contains(text(),": done")]`))
	d, err := p.client().BtDevice(context.Background(), added)
	if err != nil || !d.Paired || !d.Trusted || !d.Connected {
		t.Errorf("the API after pairing from the page: %+v %v", d, err)
	}

	// Disconnect, then connect again, from the page.
	do(t, ctx, "bluetooth", "disconnect and connect from the page",
		click("#bt-disconnect-001B66112233"),
		chromedp.WaitVisible(connected(added, "no")),
		click("#bt-connect-001B66112233"),
		chromedp.WaitVisible(connected(added, "yes")))

	// Auto-connect on and off from the page for the other headset (the
	// mock's Pair turned Car Kit into a phone): the one value in the
	// config file, then reloaded.
	autoconnect := func(v string) string {
		return `//li[@data-address="` + known + `"]//dd[contains(@class,"bt-autoconnect")][text()="` + v + `"]`
	}
	do(t, ctx, "bluetooth", "turn auto-connect on",
		chromedp.WaitVisible(autoconnect("no")),
		click("#bt-autoconnect-001B66AABBCC"),
		chromedp.WaitVisible(autoconnect("yes")))
	if b, _ := os.ReadFile(cfgPath); !strings.HasPrefix(string(b), pageConfig) || !strings.HasSuffix(string(b), "\n[[bluetooth.headset]]\naddress = \""+known+"\"\nauto_connect = true\n") {
		t.Errorf("the config file after auto-connect on:\n%s", b)
	}
	do(t, ctx, "bluetooth", "turn auto-connect off",
		click("#bt-autoconnect-001B66AABBCC"),
		chromedp.WaitVisible(autoconnect("no")),
		// The page follows the reload; the operation ends just after.
		chromedp.WaitVisible(`//li[@data-address="`+known+`"]//p[@role="status"][starts-with(text(),"bt.autoconnect #")][contains(text(),": done")]`))
	if b, _ := os.ReadFile(cfgPath); !strings.HasSuffix(string(b), "auto_connect = false\n") {
		t.Errorf("the config file after auto-connect off:\n%s", b)
	}
	ops, err := p.client().Operations(context.Background(), journal.Query{Kind: "bt.autoconnect", Origin: "web"})
	if err != nil || len(ops) != 2 || ops[0].State != journal.StateDone {
		t.Errorf("auto-connect in the journal: %+v %v", ops, err)
	}
	// The CLI does the same through the same call; the page follows the
	// reload it causes.
	if out, stderr, code := p.run("bt", "autoconnect", strings.ToLower(known), "on"); code != 0 || !strings.HasPrefix(out, "auto-connect on for "+known+" (saved in "+cfgPath+")") {
		t.Errorf("bt autoconnect: exit %d\n%s%s", code, out, stderr)
	}
	do(t, ctx, "bluetooth", "the page follows the CLI's auto-connect",
		chromedp.WaitVisible(autoconnect("yes")))
	if hs, err := p.client().BtHeadsets(context.Background()); err != nil || len(hs) != 1 || !hs[0].AutoConnect {
		t.Errorf("configured headsets: %+v %v", hs, err)
	}

	// Forget the other one: it leaves the list.
	do(t, ctx, "bluetooth", "forget from the page",
		click("#bt-forget-001B66AABBCC"),
		chromedp.WaitNotPresent(chromedp.CSS(item(known))))
	if _, err := p.client().BtDevice(context.Background(), known); err == nil {
		t.Error("the forgotten device is still known to the API")
	}

	// In Simplified Chinese the page is rebuilt with its catalogue.
	do(t, ctx, "bluetooth", "switch to Simplified Chinese",
		chromedp.SetValue(chromedp.CSS("#lang"), "zh-CN"), // fires change itself
		chromedp.WaitVisible(`//button[@id="bt-scan"][text()="扫描"]`),
		chromedp.WaitVisible(`//li[@data-address="`+added+`"]//dd[contains(@class,"bt-connected")][text()="是"]`))
	shoot(t, ctx, "bluetooth-zh-360")
}

// TestBrowserNetworkPage: the daemon runs in a network namespace with a
// DHCP uplink served by real dnsmasq, which answers only a client that
// sends the vendor class (option 60) and option 125 of the config, and a
// static one; the page shows the lease's details, and Apply and Renew
// from the page end as done operations. The same dnsmasq sends router
// advertisements (M and O, a SLAAC prefix) and gives a DHCPv6 address and
// DNS server: the DHCP uplink's IPv6 part shows the router, both
// addresses with their origins and lifetimes, and the DNS server.
func TestBrowserNetworkPage(t *testing.T) {
	const pppoePassword = "pw-never-shown-7Hq"
	l := newISPWire(t)
	// dnsmasq finds the prefix it advertises on the interface.
	sh(t, "ip", "-n", l.isp, "addr", "add", "2001:db8:45::1/64", "dev", "isp0", "nodad")
	// The vendor tags are DHCPv4's: DHCPv6 (dnsmasq's tag "dhcpv6") is
	// answered without them.
	l.dnsmasq(t, 0, "10.45.0", "10.45.0.1", "iptv.example",
		"--dhcp-vendorclass=set:iptv,IPTV_TEST", "--dhcp-match=set:v125,125,00:00:0d:e9",
		"--dhcp-ignore=tag:!iptv,tag:!dhcpv6", "--dhcp-ignore=tag:!v125,tag:!dhcpv6",
		"--enable-ra", "--ra-param=isp0,4,600", "--dhcp-range=2001:db8:45::100,2001:db8:45::1ff,slaac,64,10m",
		"--dhcp-option=option6:dns-server,[2001:db8:45::53]", "--dhcp-option=option6:domain-search,iptv.example")
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
[network.uplink.ipv6]
method = "auto"

[[network.uplink]]
parent = "uplink1"
[network.uplink.ipv4]
method = "static"
address = "10.46.0.2/24"
gateway = "10.46.0.1"
dns = ["10.46.0.1"]
route_metric = 200

[[network.uplink]]
parent = "lo"
[network.uplink.ipv4]
method = "pppoe"
user = "iptv@isp.example"
password = "`+pppoePassword+`"
`)
	p := startAgentEnv(t, root, []string{netnsEnv + "=" + l.box})
	ctx := browseAt(t, proxyInto(t, l.box, p.http), "network")

	lease := `//li[@id="net-uplink-uplink0"]`
	do(t, ctx, "network", "the DHCP uplink's lease",
		chromedp.WaitVisible(lease+`//dd[text()="bound"]`))
	s := textOf(t, ctx, "#net-uplink-uplink0")
	for _, want := range []string{"uplink0", "dhcp", "up", "10.45.0.", "server\n10.45.0.1", "lease time\n2 min", "expires\n", "option 60: IPTV_TEST", "option 125: hex:00000de9", "DNS\n10.45.0.1", "gateway\n10.45.0.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the DHCP uplink lacks %q:\n%s", want, s)
		}
	}
	// Its IPv6: the router heard, a SLAAC address past DAD (no longer
	// tentative) and a DHCPv6 one, each with its lifetimes left, and the
	// DNS server of the RA and DHCPv6.
	v6 := lease + `//dd[contains(@class,"net-ipv6-addresses")]/div/div`
	do(t, ctx, "network", "the DHCP uplink's IPv6",
		chromedp.WaitVisible(v6+`[starts-with(text(),"slaac:")]`),
		chromedp.WaitVisible(v6+`[starts-with(text(),"dhcpv6:")]`))
	s = textOf(t, ctx, "#net-uplink-uplink0")
	for _, want := range []string{"IPv6\nmethod\nauto\nrouter\nfe80::", "flags\nM (addresses from DHCPv6), O (other settings from DHCPv6)",
		"router lifetime\n10 min", "prefixes\n2001:db8:45::/64", "last heard\n", "DHCPv6\nstateful\nserver (DUID)\n0001",
		"link-local: preferred forever, valid forever", "DNS\n2001:db8:45::53", "search domains\niptv.example"} {
		if !strings.Contains(s, want) {
			t.Errorf("the DHCP uplink's IPv6 lacks %q:\n%s", want, s)
		}
	}
	for _, re := range []string{`2001:db8:45:0:[0-9a-f:]+/64\nslaac: preferred \d+ min, valid \d+ min`,
		`2001:db8:45::1[0-9a-f]{2}/128\ndhcpv6: preferred \d+ min, valid \d+ min`,
		`renews\n.+ \(in \d+ min\)\nrebinds\n`} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("the DHCP uplink's IPv6 lacks %s:\n%s", re, s)
		}
	}
	s = textOf(t, ctx, "#net-uplink-uplink1")
	for _, want := range []string{"static", "10.46.0.2/24", "gateway\n10.46.0.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the static uplink lacks %q:\n%s", want, s)
		}
	}
	// The PPPoE uplink is shown with its session, never its password.
	do(t, ctx, "network", "the PPPoE uplink",
		chromedp.WaitVisible(chromedp.CSS("#net-uplink-lo")))
	if s := textOf(t, ctx, "#net-uplink-lo"); !strings.Contains(s, "pppoe") || !strings.Contains(s, "PPPoE session") {
		t.Errorf("the PPPoE uplink:\n%s", s)
	}
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil || strings.Contains(html, pppoePassword) {
		t.Errorf("the page holds the PPPoE password (or cannot be read: %v)", err)
	}
	checkLabels(t, ctx, "network")
	checkLayout(t, ctx, "network", "#net-apply", "#net-renew-uplink0")
	shootBoth(t, ctx, "network")

	status := func(kind string) string {
		return `//section[@id="network"]//p[@role="status"][contains(text(),"` + kind + ` #")][contains(text(),": done")]`
	}
	// Apply redraws the page. uplink0's item, the same but for its fresh
	// values (lifetimes, when the router was last heard), is kept (a
	// button under a finger stays put) and takes the new ones.
	const item = `document.getElementById("net-uplink-uplink0")`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const li = `+item+`; li.kept = true; for (const f of li.querySelectorAll(".net-fresh")) f.old = true; })()`)); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	do(t, ctx, "network", "apply from the page",
		click("#net-apply"),
		chromedp.WaitVisible(status("net.apply")))
	t.Logf("figure: Apply clicked to its result on the page: %s", time.Since(applied).Round(time.Millisecond))
	waitJS(t, ctx, "a redraw after Apply", `(() => { const f = [...`+item+`.querySelectorAll(".net-fresh")]; return f.length > 0 && !f.some((x) => x.old); })()`, item+`.innerText`)
	if kept, err := chromedp.Run(ctx, chromedp.Evaluate[bool](item+`.kept === true`)); err != nil || !kept {
		t.Errorf("the redraw after Apply rebuilt uplink0's item (kept %v, %v):\n%s", kept, err, textOf(t, ctx, "#net-uplink-uplink0"))
	}
	do(t, ctx, "network", "renew from the page",
		click("#net-renew-uplink0"),
		chromedp.WaitVisible(status("net.renew")))
	ops, err := p.client().Operations(context.Background(), journal.Query{Kind: "net.apply", Origin: "web"})
	if err != nil || len(ops) == 0 || ops[0].State != journal.StateDone {
		t.Errorf("the page's apply in the journal: %+v %v", ops, err)
	}
}

// TestBrowserAudioPage: a real PulseAudio with a real Bluetooth card (see
// startHeadsetPulse) and two null sinks. From the page: the headset is
// switched off and back to music (pactl shows the profile), a volume is
// set with the slider, and the play-and-record test finds the tone.
func TestBrowserAudioPage(t *testing.T) {
	audioConfig, native := startHeadsetPulse(t)
	root := t.TempDir()
	writeConfig(t, root, pageConfig+audioConfig)
	p := startAgent(t, root)
	ctx := browse(t, p, "audio")

	const card = "#audio-card-bluez_card_00_1B_66_AA_BB_CC"
	profile := func(v string) string {
		return `//li[.//fieldset[@id="audio-card-bluez_card_00_1B_66_AA_BB_CC"]]//dd[starts-with(text(),"` + v + `")]`
	}
	do(t, ctx, "audio", "the headset's card in music mode",
		chromedp.WaitVisible(profile("a2dp_sink")),
		chromedp.WaitVisible(chromedp.CSS(card+"-music:checked")))
	if s := textOf(t, ctx, card); !strings.Contains(s, "Call (HFP/HSP, with microphone) (not offered now)") {
		t.Errorf("the card's modes: %q", s)
	}
	checkLabels(t, ctx, "audio")
	checkLayout(t, ctx, "audio", card+"-switch", "#audio-sink-one-volume", "#audio-test-sink", "#audio-test-tone")
	shootBoth(t, ctx, "audio")

	switched := time.Now()
	do(t, ctx, "audio", "switch the headset off",
		click(card+"-off"),
		click(card+"-switch"),
		chromedp.WaitVisible(profile("off")))
	t.Logf("figure: Switch clicked to the new profile on the page: %s", time.Since(switched).Round(time.Millisecond))
	if out := pactl(t, native, "list", "cards"); !strings.Contains(out, "Active Profile: off") {
		t.Errorf("pactl after switching off from the page:\n%s", out)
	}
	do(t, ctx, "audio", "switch the headset to music",
		click(card+"-music"),
		click(card+"-switch"),
		chromedp.WaitVisible(profile("a2dp_sink")),
		chromedp.WaitVisible(chromedp.CSS(`#audio-sinks li input[id^="audio-sink-bluez_sink_00_1B_66_AA_BB_CC"]`)),
		chromedp.WaitVisible(`//li[.//fieldset[@id="audio-card-bluez_card_00_1B_66_AA_BB_CC"]]//p[@role="status"][starts-with(text(),"audio.mode #")][contains(text(),": done")]`))
	if out := pactl(t, native, "list", "cards"); !strings.Contains(out, "Active Profile: a2dp_sink") {
		t.Errorf("pactl after switching to music from the page:\n%s", out)
	}
	ops, err := p.client().Operations(context.Background(), journal.Query{Kind: "audio.mode", Origin: "web"})
	if err != nil || len(ops) != 2 || ops[0].State != journal.StateDone || ops[1].State != journal.StateDone {
		t.Errorf("the page's mode switches in the journal: %+v %v", ops, err)
	}

	// The slider sets the volume when let go (a change event).
	const slider = "#audio-sink-one-volume"
	do(t, ctx, "audio", "set a volume",
		chromedp.WaitVisible(chromedp.CSS(slider)),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("`+slider+`"); s.value = "40"; s.dispatchEvent(new Event("input")); s.dispatchEvent(new Event("change")); })()`),
		chromedp.WaitVisible(`//section[@id="audio"]//p[@role="status"][contains(text(),"audio.volume #")][contains(text(),": done")]`))
	if out := pactl(t, native, "get-sink-volume", "one"); !strings.Contains(out, "40%") {
		t.Errorf("pactl after the slider: %s", out)
	}
	if s := textOf(t, ctx, slider+"-value"); s != "40 %" {
		t.Errorf("the slider's label: %q", s)
	}

	// Play a tone into "one" and record its monitor.
	do(t, ctx, "audio", "play and record",
		chromedp.SetValue(chromedp.CSS("#audio-test-sink"), "one"),
		chromedp.SetValue(chromedp.CSS("#audio-test-source"), "one.monitor"),
		chromedp.SetValue(chromedp.CSS("#audio-test-seconds"), "1"),
		click("#audio-test-tone"),
		chromedp.WaitVisible(`//div[@id="audio-test-result"]//dd[text()="sound was recorded"]`))
	level, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("audio-test-level").value`))
	if err != nil || level <= 0 {
		t.Errorf("the level meter: %v %v", level, err)
	}
	if s := textOf(t, ctx, "#audio-test-result"); !strings.Contains(s, "one.monitor") || !strings.Contains(s, "Hz") {
		t.Errorf("the test's result: %q", s)
	}
}

// TestBrowserPageFollowsARestartedDaemon: the daemon is killed and started
// again (on the same address, with an uplink added to its config
// meanwhile). Its event ids start over, so nothing can be replayed; the
// page, once its event stream is back, reads the Network page again and
// shows the new uplink without a reload. The page's session outlives the
// restart (the agent keeps it in its state folder), so no new login.
func TestBrowserPageFollowsARestartedDaemon(t *testing.T) {
	requireProcesses(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root := t.TempDir()
	const head = "board = \"generic-x86_64\"\n"
	cfg := writeConfig(t, root, head)
	p := startAgent(t, root, "--listen", addr)
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "network", "log in with the password the agent made, open #network",
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate("http://"+addr+"/"),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), p.password()),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table")),
		chromedp.Navigate("http://"+addr+"/#network"),
		chromedp.WaitVisible(chromedp.CSS("#net-no-uplinks")))

	p.cmd.Process.Kill()
	<-p.exited
	if err := os.WriteFile(cfg, []byte(head+"[[network.uplink]]\nparent = \"lo\"\n[network.uplink.ipv4]\nmethod = \"off\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "network", "the page sees the stream lost",
		chromedp.WaitVisible(`//div[@id="events"][contains(text(),"connection lost; reconnecting")]`))
	startAgent(t, root, "--listen", addr)
	do(t, ctx, "network", "the page follows the restarted daemon",
		chromedp.WaitVisible(chromedp.CSS("#net-uplink-lo")),
		chromedp.WaitNotVisible(chromedp.CSS("#net-no-uplinks")))
}
