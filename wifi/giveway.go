package wifi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// The setup hotspot gives way: while it is up, a second interface on
// the same radio, in station mode, looks for the saved networks. It is
// wpa_supplicant's own: the saved SSIDs are its networks, so it scans
// for them on its own schedule (ScanInterval, and by name, for hidden
// ones), and each BSS it finds arrives as a BSSAdded signal; the agent
// keeps no timer. The watch's networks are pinned to a BSSID no AP has
// and carry no key, so wpa_supplicant never joins one there: the join
// is the hotspot interface's, once the hotspot is closed. mac80211
// lets a station scan beside an AP on one radio (the AP leaves its
// channel for the scan's dwell times); a radio that cannot have both
// refuses the second interface, and the hotspot stays as before.

// GiveWayOptions configure WatchSaved.
type GiveWayOptions struct {
	// Interface is the hotspot's: the watch is made on its radio.
	Interface string
	// Saved are the networks to look for (their SSIDs and Hidden).
	Saved []Network
	// Interval is wpa_supplicant's time between scans while none is
	// found; default GiveWayInterval.
	Interval time.Duration
	Logger   *slog.Logger
	// Found is called once, on a goroutine of its own, with the first
	// saved network seen.
	Found func(BSS)
}

// GiveWayInterval is the default time between the watch's scans: each
// takes the hotspot off its channel for a moment, so not too often.
const GiveWayInterval = 10 * time.Second

// giveWayBSSID pins the watch's networks: a locally administered
// address no AP uses, so wpa_supplicant scans for the SSIDs and never
// picks one.
const giveWayBSSID = "02:00:00:ba:5e:00"

// GiveWay is a running watch for the saved networks.
type GiveWay struct {
	conn   *dbus.Conn
	h      *netlink.Handle
	ifname string
	probe  *Client
	log    *slog.Logger
	saved  map[string]bool
	found  func(BSS)
	once   sync.Once
	closed sync.Once
	ownNL  bool // h is the watch's own (OpenWatch)
}

// SSIDs are the saved networks watched for, sorted.
func (g *GiveWay) SSIDs() []string {
	list := make([]string, 0, len(g.saved))
	for s := range g.saved {
		list = append(list, s)
	}
	slices.Sort(list)
	return list
}

// GiveWayIfname is the watch's interface beside ifname.
func GiveWayIfname(ifname string) string {
	if len(ifname) > 10 {
		ifname = ifname[:10]
	}
	return ifname + "-scan"
}

// WatchSaved starts the watch beside the access point on o.Interface.
// It fails when the radio cannot have a station interface beside the AP
// or wpa_supplicant refuses it; nothing is left behind then.
func WatchSaved(ctx context.Context, conn *dbus.Conn, h *netlink.Handle, o GiveWayOptions) (*GiveWay, error) {
	if len(o.Saved) == 0 {
		return nil, errors.New("no saved network to watch for")
	}
	o.Interval = cmp.Or(o.Interval, GiveWayInterval)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &GiveWay{conn: conn, h: h, ifname: GiveWayIfname(o.Interface), log: o.Logger.With("component", "wifi", "part", "give-way"),
		saved: map[string]bool{}, found: o.Found}
	for _, n := range o.Saved {
		g.saved[n.SSID] = true
	}
	// A watch left by an agent that was killed.
	g.remove(ctx)
	wiphy, mac, err := wiphyOf(h, o.Interface)
	if err != nil {
		return nil, err
	}
	if err := addStationIface(h, wiphy, g.ifname, localMAC(mac)); err != nil {
		return nil, err
	}
	// Every channel, named: left to itself wpa_supplicant scans only the
	// channel the AP holds, as a station there could use no other.
	freqs, err := wiphyFreqs(h, wiphy)
	if err != nil {
		g.log.Warn("scanning on wpa_supplicant's own choice of channels", "err", err)
	}
	freqs = slices.DeleteFunc(freqs, func(f int) bool { return f < 2400 || f > 5900 })
	g.probe, err = Open(ctx, conn, Options{Interface: g.ifname, Logger: o.Logger, OnBSS: g.onBSS})
	if err == nil {
		err = g.addNetworks(ctx, o, freqs)
	}
	if err != nil {
		g.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	g.log.Info("watching for the saved networks beside the setup hotspot", "interface", g.ifname, "networks", len(g.saved),
		"scan_interval", o.Interval, "channels", len(freqs))
	return g, nil
}

// OpenWatch is WatchSaved on a netlink handle of its own, closed with
// the watch: a GiveWayPolicy's Watch.
func OpenWatch(ctx context.Context, conn *dbus.Conn, o GiveWayOptions) (*GiveWay, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("cannot open netlink: %w", err)
	}
	g, err := WatchSaved(ctx, conn, h, o)
	if err != nil {
		h.Close()
		return nil, err
	}
	g.ownNL = true
	return g, nil
}

// addNetworks gives wpa_supplicant the watch's networks, enabled, to be
// scanned for on freqs (MHz; none: its choice).
func (g *GiveWay) addNetworks(ctx context.Context, o GiveWayOptions, freqs []int) error {
	w := g.probe
	secs := int32(o.Interval.Round(time.Second).Seconds())
	if err := w.obj.CallWithContext(ctx, wpabus.Props+".Set", 0, wpabus.Iface, "ScanInterval", dbus.MakeVariant(max(secs, 1))).Err; err != nil {
		g.log.Warn("cannot set the watch's scan interval: wpa_supplicant's default stays", "err", wpabus.ErrorText(err))
	}
	for _, n := range o.Saved {
		args := map[string]dbus.Variant{
			"ssid":      dbus.MakeVariant([]byte(n.SSID)),
			"scan_ssid": dbus.MakeVariant(int32(1)), // probed by name: hidden ones answer too
			"bssid":     dbus.MakeVariant(giveWayBSSID),
			"key_mgmt":  dbus.MakeVariant("NONE"),
		}
		if len(freqs) > 0 {
			list := make([]string, len(freqs))
			for i, f := range freqs {
				list[i] = strconv.Itoa(f)
			}
			args["scan_freq"] = dbus.MakeVariant(strings.Join(list, " "))
		}
		var p dbus.ObjectPath
		if err := w.obj.CallWithContext(ctx, wpabus.Iface+".AddNetwork", 0, args).Store(&p); err != nil {
			return fmt.Errorf("cannot watch for %q: %w", n.SSID, err)
		}
		if err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".Set", 0, wpabus.NetworkIface, "Enabled", dbus.MakeVariant(true)).Err; err != nil {
			return fmt.Errorf("cannot watch for %q: %w", n.SSID, err)
		}
	}
	// Already in its list (a scan before these signals were followed).
	for _, b := range w.BSSs() {
		g.onBSS(b)
	}
	return nil
}

// onBSS runs on the watch's signal goroutine.
func (g *GiveWay) onBSS(b BSS) {
	if !g.saved[b.SSID] {
		return
	}
	g.once.Do(func() {
		g.log.Info("a saved network is in range", "ssid", b.SSID, "bssid", b.BSSID, "signal_dbm", b.Signal, "frequency_mhz", b.Frequency)
		if g.found != nil {
			go g.found(b)
		}
	})
}

// Close ends the watch: its interface leaves wpa_supplicant and the
// radio.
func (g *GiveWay) Close(ctx context.Context) error {
	var err error
	g.closed.Do(func() {
		if g.probe != nil {
			g.probe.Close()
		}
		err = g.remove(ctx)
		if g.ownNL {
			g.h.Close()
		}
		g.log.Info("the watch for the saved networks ended", "interface", g.ifname)
	})
	return err
}

// ClearGiveWay removes a watch that an agent killed meanwhile left
// beside iface (its interface, in wpa_supplicant and on the radio): it
// would go on scanning. Nothing there is not an error.
func ClearGiveWay(ctx context.Context, conn *dbus.Conn, h *netlink.Handle, iface string, log *slog.Logger) error {
	g := &GiveWay{conn: conn, h: h, ifname: GiveWayIfname(iface), log: cmp.Or(log, slog.Default())}
	return g.remove(ctx)
}

// remove takes the watch's interface out of wpa_supplicant and off the
// radio, whichever of them holds it.
func (g *GiveWay) remove(ctx context.Context) error {
	root := g.conn.Object(wpabus.Service, wpabus.Path)
	var p dbus.ObjectPath
	if err := root.CallWithContext(ctx, wpabus.Service+".GetInterface", 0, g.ifname).Store(&p); err == nil {
		if err := root.CallWithContext(ctx, wpabus.Service+".RemoveInterface", 0, p).Err; err != nil {
			g.log.Warn("cannot remove the watch's interface from wpa_supplicant", "err", wpabus.ErrorText(err))
		}
	}
	return delIface(g.h, g.ifname)
}
