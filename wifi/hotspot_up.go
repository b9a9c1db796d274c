package wifi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// The setup hotspot's lifecycle: the AP, its address, the DHCP and DNS
// servers and the caller's captive listener, brought up in that order
// and taken down in the reverse one. The caller decides when (Setup:
// its setup_after timer, an API call, a failed join from the page) and
// serves the page; Hotspot owns the pieces in between.

// HotspotAPTimeout bounds the AP's start: wpa_supplicant switches the
// radio to AP mode and beacons.
const HotspotAPTimeout = 20 * time.Second

// HotspotCredentials are the hotspot's name and WPA2 password, kept in a
// root-only state file so the password printed once stays valid across
// restarts (a label or a note taken at the console keeps working).
type HotspotCredentials struct {
	SSID     string `json:"ssid"`
	Password string `json:"password"`
}

// maxCredentialsFile bounds the state file read: it holds two short
// strings.
const maxCredentialsFile = 4096

// LoadHotspotCredentials reads the hotspot's name and password from
// path, making and saving them (0600) the first time, or when the
// board's name ssid changed or the file holds no usable password.
func LoadHotspotCredentials(path, ssid string) (HotspotCredentials, error) {
	var c HotspotCredentials
	if b, err := os.ReadFile(path); err == nil && len(b) <= maxCredentialsFile && json.Unmarshal(b, &c) == nil &&
		c.SSID == ssid && PSKProblem(c.Password) == "" && len(c.Password) >= 10 {
		return c, nil
	}
	pw, err := HotspotPassword()
	if err != nil {
		return c, err
	}
	c = HotspotCredentials{SSID: ssid, Password: pw}
	b, _ := json.Marshal(c)
	if err := atomicfile.Write(path, append(b, '\n'), 0o600, atomicfile.Options{KeepOwner: true, CreateDir: true}); err != nil {
		return c, fmt.Errorf("cannot keep the hotspot password: %w", err)
	}
	return c, nil
}

// HotspotLinks is what the hotspot needs of netlink: its address on the
// interface, and the interface up.
type HotspotLinks interface {
	LinkByName(name string) (netlink.Link, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	LinkSetUp(link netlink.Link) error
}

var _ HotspotLinks = (*netlink.Handle)(nil)

// HotspotOptions configure StartHotspot.
type HotspotOptions struct {
	// CredentialsFile keeps the name and password (LoadHotspotCredentials).
	CredentialsFile string
	// APTimeout bounds the AP's start; default HotspotAPTimeout.
	APTimeout time.Duration
	// Logger is the DHCP and DNS servers'.
	Logger *slog.Logger
	// OnLease gets every address the DHCP server acknowledges, from its
	// goroutine: it must not block.
	OnLease func(mac net.HardwareAddr, addr netip.Addr)
	// Serve opens the captive listener on the hotspot's address, once
	// the AP, the address, DHCP and DNS are up; its Close comes first
	// when the hotspot goes down. nil: no listener.
	Serve func(addr netip.Addr) (io.Closer, error)
}

// Hotspot is a setup hotspot that is up.
type Hotspot struct {
	iface string
	creds HotspotCredentials
	run   *APRun
	dhcp  *HotspotDHCP
	dns   *HotspotDNS
	web   io.Closer
}

// StartHotspot turns w's interface into the setup hotspot: AP, address
// (HotspotPrefix), DHCP server, DNS server answering every name with the
// box (so phones' captive-portal probes reach the page and they show it
// by themselves), then o.Serve. On any error what came up goes down
// again.
func StartHotspot(ctx context.Context, w *Client, nl HotspotLinks, o HotspotOptions) (hs *Hotspot, err error) {
	iface := w.Interface()
	link, err := nl.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("cannot find %s: %w", iface, err)
	}
	creds, err := LoadHotspotCredentials(o.CredentialsFile, HotspotSSID(link.Attrs().HardwareAddr))
	if err != nil {
		return nil, err
	}
	timeout := o.APTimeout
	if timeout <= 0 {
		timeout = HotspotAPTimeout
	}
	hs = &Hotspot{iface: iface, creds: creds}
	if hs.run, err = w.StartAP(ctx, AP{SSID: creds.SSID, PSK: creds.Password}, timeout); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			hs.Stop(context.WithoutCancel(ctx), nl)
		}
	}()
	if err = SetHotspotAddress(nl, iface, HotspotPrefix); err != nil {
		return nil, err
	}
	hs.dhcp, err = StartHotspotDHCP(netns.None(), HotspotDHCPConfig{
		Interface: iface, Server: HotspotPrefix, DNS: true, Logger: o.Logger, OnLease: o.OnLease,
	})
	if err != nil {
		return nil, err
	}
	if hs.dns, err = StartHotspotDNS(HotspotPrefix.Addr(), o.Logger); err != nil {
		return nil, err
	}
	if o.Serve != nil {
		if hs.web, err = o.Serve(HotspotPrefix.Addr()); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// Credentials are the hotspot's name and password.
func (hs *Hotspot) Credentials() HotspotCredentials { return hs.creds }

// Clients is how many clients hold an address from its DHCP server.
func (hs *Hotspot) Clients() int {
	if hs.dhcp == nil {
		return 0
	}
	return len(hs.dhcp.Leases())
}

// Stop takes the hotspot down: listener, DNS, DHCP, address (when nl is
// not nil), AP. The errors are the address's and the AP's: the servers
// only close their sockets.
func (hs *Hotspot) Stop(ctx context.Context, nl HotspotLinks) error {
	if hs.web != nil {
		hs.web.Close()
	}
	if hs.dns != nil {
		hs.dns.Close()
	}
	if hs.dhcp != nil {
		hs.dhcp.Close()
	}
	var errs []error
	if nl != nil {
		errs = append(errs, ClearHotspotAddress(nl, hs.iface, HotspotPrefix))
	}
	if hs.run != nil {
		errs = append(errs, hs.run.Stop(ctx))
	}
	return errors.Join(errs...)
}
