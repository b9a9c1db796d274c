package network

import (
	"net"
	"testing"
)

func TestGiveWayNames(t *testing.T) {
	for in, want := range map[string]string{"wlan0": "wlan0-scan", "wlp2s0": "wlp2s0-scan", "wlx00c0ca123456": "wlx00c0ca1-scan"} {
		if got := GiveWayIfname(in); got != want || linkProblem(got) != "" {
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
