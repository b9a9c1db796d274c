// Package wpabus is wpa_supplicant's D-Bus API (doc/dbus.doxygen in its
// source) as both of its clients use it: the Wi-Fi client (package
// wifi) and the 802.1X sessions of wired uplinks (package network).
// It holds the names of its service, objects and interfaces, following
// its signals on a caller's connection, and D-Bus errors in words.
package wpabus

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// wpa_supplicant's names on the bus.
const (
	Service      = "fi.w1.wpa_supplicant1"
	Path         = dbus.ObjectPath("/fi/w1/wpa_supplicant1")
	Iface        = "fi.w1.wpa_supplicant1.Interface"
	BSSIface     = "fi.w1.wpa_supplicant1.BSS"
	NetworkIface = "fi.w1.wpa_supplicant1.Network"
	// Props is the standard properties interface its objects have.
	Props = "org.freedesktop.DBus.Properties"
)

// StateCompleted is the Interface's State once the link is up: joined
// (Wi-Fi) or authorized (802.1X).
const StateCompleted = "completed"

// matches are a wpa_supplicant client's match rules: its objects'
// signals, and its name leaving the bus.
func matches() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{dbus.WithMatchSender(Service), dbus.WithMatchPathNamespace(Path)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, Service)},
	}
}

// Follow delivers wpa_supplicant's signals on conn to sig; call it
// before reading any state, so no change falls between.
func Follow(ctx context.Context, conn *dbus.Conn, sig chan *dbus.Signal) error {
	conn.Signal(sig)
	for _, m := range matches() {
		if err := conn.AddMatchSignalContext(ctx, m...); err != nil {
			Unfollow(conn, sig)
			return fmt.Errorf("cannot follow wpa_supplicant's signals: %w", err)
		}
	}
	return nil
}

// Unfollow undoes Follow.
func Unfollow(conn *dbus.Conn, sig chan *dbus.Signal) {
	for _, m := range matches() {
		_ = conn.RemoveMatchSignal(m...)
	}
	conn.RemoveSignal(sig)
}

// OnBus says whether wpa_supplicant holds its name on conn's bus.
func OnBus(ctx context.Context, conn *dbus.Conn) (bool, error) {
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, Service).Store(&has); err != nil {
		return false, fmt.Errorf("cannot ask the system bus for wpa_supplicant: %w", err)
	}
	return has, nil
}
