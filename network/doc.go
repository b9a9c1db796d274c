// Package network will own the box's uplinks: netlink links, 802.1Q VLANs,
// addresses and routes, DHCP/IPoE with vendor options, PPPoE, link watching,
// and Wi-Fi through wpa_supplicant's D-Bus API. It takes its netlink handle
// and bus connection as parameters. Not built yet: see the issues "Wired
// uplinks" and "Wi-Fi".
package network
