package wifi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeNM is NetworkManager as OtherManager asks it: one device, managed
// or not. A fake: the host tests run no NetworkManager.
type fakeNM struct{ managed bool }

func (fakeNM) GetDeviceByIpIface(iface string) (dbus.ObjectPath, *dbus.Error) {
	if iface != "wlan0" {
		return "", dbus.NewError("org.freedesktop.NetworkManager.UnknownDevice", []any{"no device " + iface})
	}
	return "/org/freedesktop/NetworkManager/Devices/3", nil
}

type fakeNMProps struct{ managed bool }

func (p fakeNMProps) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface == "org.freedesktop.NetworkManager.Device" && name == "Managed" {
		return dbus.MakeVariant(p.managed), nil
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{name})
}

// TestOtherManager: NetworkManager counts only when it manages the
// interface; iwd whenever it runs.
func TestOtherManager(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nm      *fakeNM // nil: not on the bus
		iwd     bool
		iface   string
		wantHas string // "" for none
	}{
		{"alone", nil, false, "wlan0", ""},
		{"NetworkManager manages it", &fakeNM{managed: true}, false, "wlan0", "NetworkManager manages wlan0"},
		{"NetworkManager leaves it", &fakeNM{managed: false}, false, "wlan0", ""},
		{"NetworkManager knows no such device", &fakeNM{managed: true}, false, "wlan1", ""},
		{"iwd", nil, true, "wlan0", "iwd is running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := wifiFakeBus(t)
			conn, err := dbus.Connect(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			own := func(name string) {
				if reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
					t.Fatalf("cannot own %s: %v %v", name, reply, err)
				}
			}
			if tc.nm != nil {
				conn.Export(*tc.nm, "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager")
				conn.Export(fakeNMProps{tc.nm.managed}, "/org/freedesktop/NetworkManager/Devices/3", "org.freedesktop.DBus.Properties")
				own("org.freedesktop.NetworkManager")
			}
			if tc.iwd {
				own("net.connman.iwd")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := OtherManager(ctx, conn, tc.iface)
			if tc.wantHas == "" && got != "" || tc.wantHas != "" && !strings.Contains(got, tc.wantHas) {
				t.Errorf("OtherManager(%s) = %q, want %q", tc.iface, got, tc.wantHas)
			}
		})
	}
}
