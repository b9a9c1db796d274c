// Package network owns the box's wired uplinks: the [network] section of
// the config file (Config, Uplink, IPv4 and their validation) and the
// addressing of an uplink's link. Wi-Fi is package wifi's, which uses
// this package's DHCP client on the wireless link.
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
// Manager applies a whole Config (uplinks*.go): it validates the table
// and the parents first (InvalidError, nothing changed), creates or
// replaces 802.1Q links with their egress priority map (vlan.go; a
// kernel without 8021q is ErrNoVLANSupport with a hint), runs a
// DHCPClient per dhcp uplink, ApplyStatic per static one and a PPPoE
// session per pppoe one (pppoe.go: pppd with the rp-pppoe plugin, the
// password through passwordfd.so on a pipe, a child bound to the agent),
// and removes what it created for an uplink that left the table: its
// links carry the alias "boxagent:<name>", which outlives an agent
// restart. Manager.Watch (linkwatch.go) re-applies when a link comes
// back and renews a lease when a carrier returns.
package network
