// Package wifi owns the box's wireless link: the station, its saved
// networks and the setup hotspot. It drives wpa_supplicant over its
// D-Bus API (internal/wpabus) on a connection the caller gives, and keeps
// no state of its own on disk: the saved networks are the [wifi] section
// of the config file (Config, Network and their validation).
//
// Client (wifi.go, join.go, bss.go, country.go) follows one interface
// through wpa_supplicant's signals, never polling: Scan, Connect (why a
// join failed: a wrong password, no AP, a refusal, a timeout, as *Error
// wrapping one of the Err… values), Forget, SetSaved (the config file's
// networks, each with its priority, so wpa_supplicant joins the best one
// in range), the re-join after a drop, SignalPoll and the regulatory
// country (SetCountry; RegDomain reads the kernel's over nl80211).
//
// The setup hotspot is the access point a box that knows no network in
// range opens, so a phone can tell it which one to join. StartHotspot
// (hotspot_up.go) brings up its pieces and Hotspot.Stop takes them down
// in reverse: the AP (StartAP: wpa_supplicant's, mode 2), its name,
// password and address (hotspot.go), a DHCP server for its clients
// (HotspotDHCP), a DNS server that answers every name with the box's
// address (HotspotDNS), so a phone's captive-portal probe reaches the
// setup page, and the caller's listener that serves the page. While it
// is up, WatchSaved looks for the saved networks from a second, station
// interface on the same radio (made over nl80211), so the hotspot can
// give way when one comes back; GiveWayPolicy decides when it looks,
// holding longer after each give-way that did not end in a join.
//
// StationDHCP addresses the station's link with package network's DHCP
// client, the wired uplinks' one, and keeps the lease's DNS servers in
// resolv.conf while the station is associated. Package network does not
// import this one.
package wifi
