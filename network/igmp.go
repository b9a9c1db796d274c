package network

import (
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ipv4DevconfForceIGMPVersion is IPV4_DEVCONF_FORCE_IGMP_VERSION of
// <linux/ip.h>: the link's force_igmp_version, by its index in the
// link's IPv4 settings.
const ipv4DevconfForceIGMPVersion = 17

// setIGMPVersion sets the IGMP version a link speaks (IPv4.IGMPVersion)
// by netlink (RTM_SETLINK, the link's AF_INET settings), as `sysctl
// net.ipv4.conf.LINK.force_igmp_version` would: the agent's unit has
// /proc/sys read-only (ProtectKernelTunables), not netlink. ns is the
// uplinks' namespace.
func setIGMPVersion(ns netns.NsHandle, ifindex, version int) error {
	return InNamespace(ns, func() error {
		req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(ifindex)
		req.AddData(msg)
		spec := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
		spec.AddRtAttr(unix.AF_INET, nil).
			AddRtAttr(unix.IFLA_INET_CONF, nil).
			AddRtAttr(ipv4DevconfForceIGMPVersion, nl.Uint32Attr(uint32(version)))
		req.AddData(spec)
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
}
