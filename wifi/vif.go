package wifi

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A second interface on a radio, over nl80211 (linux/nl80211.h) as
// `iw dev wlan0 interface add NAME type managed addr MAC` makes it:
// wpa_supplicant 2.10 cannot create one over D-Bus (its CreateInterface
// "Create" argument came in 2.11).
const (
	nl80211CmdGetWiphy     = 1
	nl80211CmdGetInterface = 5
	nl80211CmdGetReg       = 31
	nl80211CmdNewInterface = 7
	nl80211CmdDelInterface = 8

	nl80211AttrWiphy   = 1
	nl80211AttrIfindex = 3
	nl80211AttrIfname  = 4
	nl80211AttrIftype  = 5
	nl80211AttrMAC     = 6
	nl80211AttrBands   = 22  // NL80211_ATTR_WIPHY_BANDS
	nl80211AttrAlpha2  = 33  // NL80211_ATTR_REG_ALPHA2
	nl80211AttrSplit   = 174 // NL80211_ATTR_SPLIT_WIPHY_DUMP

	nl80211BandAttrFreqs    = 1
	nl80211FreqAttrFreq     = 1
	nl80211FreqAttrDisabled = 2

	nl80211IftypeStation = 2
)

// nl80211Call sends one nl80211 command with attrs and returns the
// answers' attributes.
func nl80211Call(h *netlink.Handle, cmd uint8, attrs ...*nl.RtAttr) ([][]byte, error) {
	return nl80211Req(h, cmd, unix.NLM_F_ACK, attrs...)
}

func nl80211Req(h *netlink.Handle, cmd uint8, flags int, attrs ...*nl.RtAttr) ([][]byte, error) {
	fam, err := h.GenlFamilyGet("nl80211")
	if err != nil {
		return nil, fmt.Errorf("cannot find nl80211 (no cfg80211 in the kernel?): %w", err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), flags)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: 1})
	for _, a := range attrs {
		req.AddData(a)
	}
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return nil, err
	}
	for i, m := range msgs {
		if len(m) >= nl.SizeofGenlmsg {
			msgs[i] = m[nl.SizeofGenlmsg:]
		}
	}
	return msgs, nil
}

func nlUint32(typ int, v uint32) *nl.RtAttr {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return nl.NewRtAttr(typ, b)
}

// wiphyOf is the index of the radio under the link ifname.
func wiphyOf(h *netlink.Handle, ifname string) (uint32, net.HardwareAddr, error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot find %s: %w", ifname, err)
	}
	msgs, err := nl80211Call(h, nl80211CmdGetInterface, nlUint32(nl80211AttrIfindex, uint32(link.Attrs().Index)))
	if err != nil {
		return 0, nil, fmt.Errorf("cannot ask nl80211 about %s: %w", ifname, err)
	}
	for _, m := range msgs {
		attrs, err := nl.ParseRouteAttr(m)
		if err != nil {
			continue
		}
		for _, a := range attrs {
			if a.Attr.Type == nl80211AttrWiphy && len(a.Value) >= 4 {
				return binary.NativeEndian.Uint32(a.Value), link.Attrs().HardwareAddr, nil
			}
		}
	}
	return 0, nil, fmt.Errorf("nl80211 names no radio for %s: %w", ifname, ErrNoInterface)
}

// addStationIface makes a station interface name on wiphy with the
// address mac.
func addStationIface(h *netlink.Handle, wiphy uint32, name string, mac net.HardwareAddr) error {
	_, err := nl80211Call(h, nl80211CmdNewInterface,
		nlUint32(nl80211AttrWiphy, wiphy),
		nl.NewRtAttr(nl80211AttrIfname, nl.ZeroTerminated(name)),
		nlUint32(nl80211AttrIftype, nl80211IftypeStation),
		nl.NewRtAttr(nl80211AttrMAC, mac))
	if err != nil {
		return fmt.Errorf("cannot add the station interface %s to the radio (phy%d): %w", name, wiphy, err)
	}
	return nil
}

// delIface removes the wireless interface name; one that is not there
// is not an error.
func delIface(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return nil
	}
	if _, err := nl80211Call(h, nl80211CmdDelInterface, nlUint32(nl80211AttrIfindex, uint32(link.Attrs().Index))); err != nil {
		return fmt.Errorf("cannot remove the interface %s: %w", name, err)
	}
	return nil
}

// localMAC is a locally administered address for a second interface
// beside one with mac: mac80211 refuses two interfaces with one
// address.
func localMAC(mac net.HardwareAddr) net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	copy(m, mac)
	if len(mac) == 6 {
		m[0] = (m[0] | 0x02) ^ 0x80
	}
	return m
}

// wiphyFreqs lists the frequencies (MHz) the radio wiphy may use now:
// its bands' channels that the regulatory domain does not disable.
func wiphyFreqs(h *netlink.Handle, wiphy uint32) ([]int, error) {
	msgs, err := nl80211Req(h, nl80211CmdGetWiphy, unix.NLM_F_DUMP,
		nlUint32(nl80211AttrWiphy, wiphy), nl.NewRtAttr(nl80211AttrSplit, nil))
	if err != nil {
		return nil, fmt.Errorf("cannot read the channels of phy%d: %w", wiphy, err)
	}
	return parseWiphyFreqs(msgs), nil
}

// parseWiphyFreqs reads the enabled frequencies out of GET_WIPHY's
// answers (their attributes), which a split dump spreads over several.
func parseWiphyFreqs(msgs [][]byte) []int {
	var freqs []int
	for _, m := range msgs {
		for _, bands := range nlNested(m, nl80211AttrBands) {
			for _, band := range nlChildren(bands) {
				for _, fl := range nlNested(band, nl80211BandAttrFreqs) {
					for _, f := range nlChildren(fl) {
						freq, disabled := 0, false
						for _, a := range nlChildrenAttrs(f) {
							switch {
							case a.Attr.Type == nl80211FreqAttrFreq && len(a.Value) >= 4:
								freq = int(binary.NativeEndian.Uint32(a.Value))
							case a.Attr.Type == nl80211FreqAttrDisabled:
								disabled = true
							}
						}
						if freq > 0 && !disabled && !slices.Contains(freqs, freq) {
							freqs = append(freqs, freq)
						}
					}
				}
			}
		}
	}
	slices.Sort(freqs)
	return freqs
}

// nlNested are the values of the attributes of type typ in b.
func nlNested(b []byte, typ uint16) [][]byte {
	var out [][]byte
	for _, a := range nlChildrenAttrs(b) {
		if a.Attr.Type&nl.NLA_TYPE_MASK == typ {
			out = append(out, a.Value)
		}
	}
	return out
}

// nlChildren are the values of every attribute in b.
func nlChildren(b []byte) [][]byte {
	var out [][]byte
	for _, a := range nlChildrenAttrs(b) {
		out = append(out, a.Value)
	}
	return out
}

func nlChildrenAttrs(b []byte) []syscall.NetlinkRouteAttr {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil
	}
	for i := range attrs {
		attrs[i].Attr.Type &= nl.NLA_TYPE_MASK
	}
	return attrs
}

// RegDomain is the kernel's regulatory domain, as `iw reg get` shows its
// global one: a country code, or "00" for the world domain.
func RegDomain(h *netlink.Handle) (string, error) {
	msgs, err := nl80211Call(h, nl80211CmdGetReg)
	if err != nil {
		return "", fmt.Errorf("cannot read the regulatory domain: %w", err)
	}
	for _, m := range msgs {
		for _, a := range nlChildrenAttrs(m) {
			if a.Attr.Type == nl80211AttrAlpha2 {
				return strings.TrimRight(string(a.Value), "\x00"), nil
			}
		}
	}
	return "", fmt.Errorf("cannot read the regulatory domain: nl80211 answered without one: %w", ErrNoInterface)
}
