package network

import (
	"errors"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The agent's netlink subscriptions list what exists with a request of
// their own, after subscribing, not with the library's ListExisting:
// vishvananda/netlink sends that request on the subscribed socket, whose
// address names the multicast group, and the kernel hands a request sent
// to a group by a process with CAP_NET_ADMIN to every subscriber of the
// group too. Each listing then woke every other link, address or route
// watcher of the namespace: NetworkManager's, systemd-networkd's, and
// the agent's own other watches. Changes between the subscription and
// the listing arrive on the subscription after the listing is handed
// on, so the last word is always the newest.

// existingLinks are the links of ns now, as the updates ListExisting
// would have given.
func existingLinks(ns netns.NsHandle) ([]netlink.LinkUpdate, error) {
	var links []netlink.Link
	err := listIn(ns, func() (err error) { links, err = netlink.LinkList(); return err })
	if err != nil {
		return nil, err
	}
	ups := make([]netlink.LinkUpdate, len(links))
	for i, l := range links {
		a := l.Attrs()
		ups[i] = netlink.LinkUpdate{
			IfInfomsg: nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(a.Index), Flags: a.RawFlags}},
			Header:    unix.NlMsghdr{Type: unix.RTM_NEWLINK},
			Link:      l,
		}
	}
	return ups, nil
}

// existingAddrs are the addresses of ns now (every family), as updates.
func existingAddrs(ns netns.NsHandle) ([]netlink.AddrUpdate, error) {
	var addrs []netlink.Addr
	err := listIn(ns, func() (err error) { addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL); return err })
	if err != nil {
		return nil, err
	}
	ups := make([]netlink.AddrUpdate, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ups = append(ups, netlink.AddrUpdate{LinkAddress: *a.IPNet, LinkIndex: a.LinkIndex, Flags: a.Flags, Scope: a.Scope,
			PreferedLft: a.PreferedLft, ValidLft: a.ValidLft, NewAddr: true})
	}
	return ups, nil
}

// existingRoutes are the IPv6 routes of ns's main table now, as updates.
func existingRoutes(ns netns.NsHandle) ([]netlink.RouteUpdate, error) {
	var routes []netlink.Route
	err := listIn(ns, func() (err error) { routes, err = netlink.RouteList(nil, netlink.FAMILY_V6); return err })
	if err != nil {
		return nil, err
	}
	ups := make([]netlink.RouteUpdate, len(routes))
	for i, r := range routes {
		ups[i] = netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, Route: r}
	}
	return ups, nil
}

// listIn runs a listing in ns, again when the kernel says the table
// changed under it (a dump interrupted), at most three times.
func listIn(ns netns.NsHandle, list func() error) error {
	var err error
	for range 3 {
		if err = InNamespace(ns, list); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}
