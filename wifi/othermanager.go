package wifi

import (
	"context"

	"github.com/godbus/dbus/v5"
)

// OtherManager says which other daemon manages iface (NetworkManager
// with the device managed, or iwd running), in words for the doctor, or
// "" when boxagent has it to itself: either would fight over
// wpa_supplicant or the radio.
func OtherManager(ctx context.Context, conn *dbus.Conn, iface string) string {
	if nameHasOwner(ctx, conn, "org.freedesktop.NetworkManager") {
		nm := conn.Object("org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager")
		var dev dbus.ObjectPath
		if err := nm.CallWithContext(ctx, "org.freedesktop.NetworkManager.GetDeviceByIpIface", 0, iface).Store(&dev); err == nil {
			v, err := conn.Object("org.freedesktop.NetworkManager", dev).GetProperty("org.freedesktop.NetworkManager.Device.Managed")
			if managed, _ := v.Value().(bool); err == nil && managed {
				return "NetworkManager manages " + iface + ": it and boxagent would fight over wpa_supplicant"
			}
		}
	}
	if nameHasOwner(ctx, conn, "net.connman.iwd") {
		return "iwd is running: it and wpa_supplicant cannot share " + iface
	}
	return ""
}

// nameHasOwner says whether a well-known name has an owner on the bus
// (false when the bus cannot say).
func nameHasOwner(ctx context.Context, conn *dbus.Conn, name string) bool {
	var has bool
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
	return err == nil && has
}
