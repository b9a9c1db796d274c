// Package network owns the box's uplinks. This doc covers the wired
// side: the [network] section of the config file (Config, Uplink, IPv4
// and their validation) and the IPv4 addressing of an uplink's link.
// Wi-Fi, through wpa_supplicant's D-Bus API, lives in the wifi_*.go
// files.
//
// For method "dhcp" (IPoE), DHCPClient runs RFC 2131's client state
// machine in process (INIT, SELECTING, REQUESTING, BOUND, RENEWING,
// REBINDING) on an injected Clock, over a Conn (RawConn: a filtered
// packet socket opened inside the uplink's network namespace). Options
// 60 and 61 and any configured extra (125, …) are the same bytes in
// every DISCOVER and REQUEST. A lease becomes an address whose kernel
// lifetime is the lease's (so it goes if the agent dies), a prefix route
// and a default route with the uplink's metric, and a resolv.conf
// fragment; expiry removes them. Changes come out as Events.
//
// For method "static", ApplyStatic puts the same things in place for
// good. WatchCarrier follows a link's carrier through a netlink
// subscription, so that the caller can ask for a renewal when the cable
// comes back.
//
// Every kernel change goes through a Netlink (a *netlink.Handle bound to
// a namespace with netlink.NewHandleAt); nothing here enters a namespace
// on a thread another goroutine may use.
//
// Not here yet (see the issue "Wired uplinks"): creating 802.1Q VLAN
// links with egress priority maps, PPPoE through pppd, and applying a
// whole Config (create, re-apply at boot, remove what a deleted uplink
// left).
package network
