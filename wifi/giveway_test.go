package wifi

import (
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/internal/names"
)

func TestGiveWayNames(t *testing.T) {
	for in, want := range map[string]string{"wlan0": "wlan0-scan", "wlp2s0": "wlp2s0-scan", "wlx00c0ca123456": "wlx00c0ca1-scan"} {
		if got := GiveWayIfname(in); got != want || names.LinkNameProblem(got) != "" {
			t.Errorf("GiveWayIfname(%q) = %q, want %q", in, got, want)
		}
	}
	for _, mac := range []string{"02:00:00:00:01:00", "00:11:22:33:44:55", "82:00:00:00:01:00"} {
		m, _ := net.ParseMAC(mac)
		l := localMAC(m)
		if l.String() == m.String() || l[0]&0x02 == 0 || l[0]&0x01 != 0 {
			t.Errorf("localMAC(%s) = %s: want another, locally administered, unicast", m, l)
		}
	}
}

// TestParseWiphyFreqs: the frequencies of a GET_WIPHY split dump, bands
// spread over two messages, disabled channels left out, each once.
func TestParseWiphyFreqs(t *testing.T) {
	freq := func(idx int, mhz uint32, disabled bool) *nl.RtAttr {
		f := nl.NewRtAttr(idx|unix.NLA_F_NESTED, nil)
		f.AddChild(nlUint32(nl80211FreqAttrFreq, mhz))
		if disabled {
			f.AddChild(nl.NewRtAttr(nl80211FreqAttrDisabled, nil))
		}
		return f
	}
	msg := func(band int, fs ...*nl.RtAttr) []byte {
		bands := nl.NewRtAttr(nl80211AttrBands|unix.NLA_F_NESTED, nil)
		b := nl.NewRtAttr(band|unix.NLA_F_NESTED, nil)
		list := nl.NewRtAttr(nl80211BandAttrFreqs|unix.NLA_F_NESTED, nil)
		for _, f := range fs {
			list.AddChild(f)
		}
		b.AddChild(list)
		bands.AddChild(b)
		return append(nlUint32(nl80211AttrWiphy, 0).Serialize(), bands.Serialize()...)
	}
	msgs := [][]byte{
		msg(0, freq(0, 2412, false), freq(1, 2437, false), freq(2, 2484, true)),
		msg(1, freq(0, 5180, false), freq(1, 5260, false)),
		msg(1, freq(0, 5180, false)), // the same channel again
		nlUint32(nl80211AttrWiphy, 0).Serialize(),
	}
	got := parseWiphyFreqs(msgs)
	if want := []int{2412, 2437, 5180, 5260}; !slices.Equal(got, want) {
		t.Errorf("parseWiphyFreqs = %v, want %v", got, want)
	}
}
