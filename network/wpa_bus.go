package network

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// The D-Bus plumbing the Wi-Fi client and the 802.1X sessions share:
// both follow wpa_supplicant's signals on a caller's connection.

// wpaMatches are a wpa_supplicant client's match rules: its objects'
// signals, and its name leaving the bus.
func wpaMatches() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{dbus.WithMatchSender(wpaService), dbus.WithMatchPathNamespace(wpaPath)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, wpaService)},
	}
}

// followWpa delivers wpa_supplicant's signals on conn to sig; call it
// before reading any state, so no change falls between.
func followWpa(ctx context.Context, conn *dbus.Conn, sig chan *dbus.Signal) error {
	conn.Signal(sig)
	for _, m := range wpaMatches() {
		if err := conn.AddMatchSignalContext(ctx, m...); err != nil {
			unfollowWpa(conn, sig)
			return fmt.Errorf("cannot follow wpa_supplicant's signals: %w", err)
		}
	}
	return nil
}

// unfollowWpa undoes followWpa.
func unfollowWpa(conn *dbus.Conn, sig chan *dbus.Signal) {
	for _, m := range wpaMatches() {
		_ = conn.RemoveMatchSignal(m...)
	}
	conn.RemoveSignal(sig)
}

// wpaOnBus says whether wpa_supplicant holds its name on conn's bus.
func wpaOnBus(ctx context.Context, conn *dbus.Conn) (bool, error) {
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, wpaService).Store(&has); err != nil {
		return false, fmt.Errorf("cannot ask the system bus for wpa_supplicant: %w", err)
	}
	return has, nil
}
