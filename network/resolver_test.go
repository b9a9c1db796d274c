package network

import "testing"

func TestResolvConfOwner(t *testing.T) {
	for _, tc := range []struct {
		exists bool
		link   string
		want   Owner
	}{
		{false, "", OwnerNobody},
		{true, "", OwnerFile},
		{true, "../tmp/resolv.conf", OwnerNobody}, // Buildroot's skeleton
		{true, "/tmp/resolv.conf", OwnerNobody},
		{true, "/run/boxagent/resolv.conf", OwnerAgent},
		{true, "../run/boxagent/resolv.conf", OwnerAgent},
		{true, "/var/run/boxagent/resolv.conf", OwnerAgent},
		{true, "../run/systemd/resolve/stub-resolv.conf", OwnerResolved},
		{true, "/run/systemd/resolve/resolv.conf", OwnerResolved},
		{true, "../run/resolvconf/resolv.conf", OwnerResolvconf},
		{true, "/etc/resolvconf/run/resolv.conf", OwnerResolvconf},
		{true, "/var/run/NetworkManager/resolv.conf", OwnerNetworkManager},
		{true, "/run/connman/resolv.conf", OwnerConnman},
		{true, "/run/boxagent/../systemd/resolve/stub-resolv.conf", OwnerResolved},
		{true, "/run/boxagentx/resolv.conf", OwnerNobody},
	} {
		if got := ResolvConfOwner(tc.exists, tc.link); got != tc.want {
			t.Errorf("ResolvConfOwner(%v, %q) = %q, want %q", tc.exists, tc.link, got, tc.want)
		}
	}
}
