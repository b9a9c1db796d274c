package network

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestParseRA decodes the flags, RDNSS and DNSSL of a router
// advertisement, and refuses an option cut short.
func TestParseRA(t *testing.T) {
	ra := []byte{134, 0, 0, 0, 64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
		// RDNSS, 3×8 bytes, lifetime 600, one server
		25, 3, 0, 0, 0, 0, 2, 0x58, 0x20, 0x01, 0x0d, 0xb8, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
		// DNSSL, 3×8 bytes, lifetime 600, "iptv.example"
		31, 3, 0, 0, 0, 0, 2, 0x58, 4, 'i', 'p', 't', 'v', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 0,
	}
	got, err := ParseRA(netip.MustParseAddr("fe80::1"), ra)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Managed || !got.Other || got.RouterLifetime != 1800*time.Second || len(got.DNS) != 1 || got.DNS[0].String() != "2001:db8:45::53" ||
		got.DNSLifetime != 600*time.Second || strings.Join(got.Search, ",") != "iptv.example" {
		t.Errorf("ParseRA: %+v", got)
	}
	if _, err := ParseRA(netip.MustParseAddr("fe80::1"), ra[:20]); err == nil {
		t.Error("a cut option parsed")
	}
}
