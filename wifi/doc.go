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
// Setup (setup.go) is the hotspot's state machine, as the agent runs
// it: off, starting, on, and joining while a network chosen on the page
// is tried; the [wifi] setup_after timer that opens it when no known
// network joins; the scan before the AP, which is the page's list; a
// join from the page, after which the hotspot stays closed, or comes
// back with the reason when the join failed; the give-way wired to
// GiveWayPolicy; Connect and Forget, which save the networks through
// the agent's config editor. What it needs of the agent (the config in
// effect and its editor, the operations journal, the event stream, a
// clock) comes in SetupOptions; its page and API calls are the
// daemon's.
//
// StationDHCP addresses the station's link with package network's DHCP
// client, the wired uplinks' one, and keeps the lease's DNS servers in
// resolv.conf while the station is associated. Package network does not
// import this one.
package wifi
