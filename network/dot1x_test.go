package network

import (
	"io"
	"log/slog"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// TestDot1XSignals: the session's state from wpa_supplicant's signals,
// in the orders wpa_supplicant sends them.
func TestDot1XSignals(t *testing.T) {
	const path = dbus.ObjectPath("/fi/w1/wpa_supplicant1/Interfaces/3")
	eap := func(status, param string) *dbus.Signal {
		return &dbus.Signal{Path: path, Name: wpabus.Iface + ".EAP", Body: []any{status, param}}
	}
	state := func(s string) *dbus.Signal {
		return &dbus.Signal{Path: path, Name: wpabus.Props + ".PropertiesChanged",
			Body: []any{wpabus.Iface, map[string]dbus.Variant{"State": dbus.MakeVariant(s)}, []string{}}}
	}
	owner := func(new string) *dbus.Signal {
		return &dbus.Signal{Path: "/org/freedesktop/DBus", Name: "org.freedesktop.DBus.NameOwnerChanged", Body: []any{wpabus.Service, ":1.4", new}}
	}
	type want struct{ state, method, reason string }
	cases := []struct {
		name    string
		signals []*dbus.Signal
		want    want
		events  int
	}{
		{"md5 success", []*dbus.Signal{state("associated"), eap("started", ""), eap("accept proposed method", "MD5"), eap("completion", "success"), state("completed")},
			want{Dot1XAuthorized, "MD5", ""}, 5}, // supplicant state, started, method, completion, supplicant state
		{"wrong password", []*dbus.Signal{eap("started", ""), eap("accept proposed method", "PEAP"), eap("completion", "failure")},
			want{Dot1XFailed, "PEAP", "EAP-PEAP: the authenticator sent EAP-Failure: wrong identity or password, or the account is refused"}, 3},
		{"server certificate", []*dbus.Signal{eap("started", ""), eap("accept proposed method", "PEAP"),
			eap("remote certificate verification", "self-signed certificate in certificate chain"), eap("completion", "failure")},
			want{Dot1XFailed, "PEAP", "the server's certificate does not verify against ca_cert (self-signed certificate in certificate chain)"}, 3},
		{"a new exchange forgets the certificate", []*dbus.Signal{eap("started", ""), eap("remote certificate verification", "bad"), eap("completion", "failure"),
			eap("started", ""), eap("accept proposed method", "MD5"), eap("completion", "failure")},
			want{Dot1XFailed, "MD5", "EAP-MD5: the authenticator sent EAP-Failure: wrong identity or password, or the account is refused"}, 5},
		{"re-authentication keeps the port", []*dbus.Signal{eap("started", ""), eap("completion", "success"), eap("started", ""), eap("completion", "success")},
			want{Dot1XAuthorized, "", ""}, 3},
		{"refused at a re-authentication", []*dbus.Signal{eap("started", ""), eap("completion", "success"), eap("started", ""), eap("completion", "failure")},
			want{Dot1XFailed, "", "the authenticator sent EAP-Failure: wrong identity or password, or the account is refused"}, 3},
		{"link lost", []*dbus.Signal{eap("completion", "success"), state("completed"), state("disconnected")},
			want{Dot1XStarting, "", "wpa_supplicant's link state is disconnected"}, 3},
		{"wpa_supplicant leaves", []*dbus.Signal{eap("completion", "success"), owner("")},
			want{Dot1XAbsent, "", "wpa_supplicant left the bus"}, 2},
		{"another interface", []*dbus.Signal{{Path: path + "0", Name: wpabus.Iface + ".EAP", Body: []any{"completion", "success"}}},
			want{Dot1XStarting, "", ""}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			s := &dot1xSession{path: path, log: slog.New(slog.NewTextHandler(io.Discard, nil)), changed: make(chan struct{}),
				st: Dot1XStatus{State: Dot1XStarting}, emit: func(Dot1XStatus) { n++ }}
			for _, sig := range c.signals {
				s.handle(sig)
			}
			st := s.Status()
			if got := (want{st.State, st.Method, st.Reason}); got != c.want || n != c.events {
				t.Errorf("got %+v after %d events, want %+v after %d", got, n, c.want, c.events)
			}
		})
	}
}
