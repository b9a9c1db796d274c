package daemon

import (
	"errors"
	"net/http"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/network"
)

const threeUplinks = `# the box
board = "auto"

[[network.uplink]] # the carrier's IPTV
parent = "eth0"
vlan = 45
[network.uplink.ipv4]
method = "dhcp"
default_route = false
[network.uplink.ipv4.options]
125 = "hex:00"

[[network.uplink]]
parent = "eth0"
vlan = 35
[network.uplink.ipv4]
method = "pppoe"
user = "u"
route_metric = 100

# Internet, untagged
[[network.uplink]]
parent = "eth1"
[network.uplink.ipv4]
method = "dhcp"

[journal]
keep = 100
`

func TestDropUplinkBlock(t *testing.T) {
	full, err := config.Parse("c.toml", []byte(threeUplinks))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		out, ok := dropUplinkBlock([]byte(threeUplinks), i)
		if !ok {
			t.Fatalf("block %d not found", i)
		}
		got, err := config.Parse("c.toml", out)
		if err != nil {
			t.Fatalf("without block %d: %v\n%s", i, err, out)
		}
		want := append(append([]network.Uplink{}, full.Network.Uplinks[:i]...), full.Network.Uplinks[i+1:]...)
		if len(got.Network.Uplinks) != 2 || got.Network.Uplinks[0].LinkName() != want[0].LinkName() || got.Network.Uplinks[1].LinkName() != want[1].LinkName() {
			t.Errorf("without block %d: %+v", i, got.Network.Uplinks)
		}
		if got.Journal.Keep != 100 || got.Board != "auto" {
			t.Errorf("without block %d the rest changed: %+v", i, got)
		}
	}
	if _, ok := dropUplinkBlock([]byte(threeUplinks), 3); ok {
		t.Error("a fourth block was found")
	}
	if _, ok := dropUplinkBlock([]byte("network.uplink = [{parent = \"eth0\", ipv4 = {method = \"off\"}}]\n"), 0); ok {
		t.Error("an inline array was taken for a table")
	}
}

func TestUplinkTOML(t *testing.T) {
	u := network.Uplink{Parent: "eth0", VLAN: new(int), IPv4: network.IPv4{Method: "pppoe", User: "u", Password: "p w"}}
	*u.VLAN = 35
	b, err := uplinkTOML(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse("c.toml", append([]byte("[network]\n"), b...))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(got.Network.Uplinks) != 1 || got.Network.Uplinks[0].IPv4.Password != "p w" || *got.Network.Uplinks[0].VLAN != 35 {
		t.Errorf("read back %+v from\n%s", got.Network.Uplinks, b)
	}
}

func TestMapNetworkError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&network.InvalidError{Problems: []network.FieldError{{Key: "uplink[0].vlan", Msg: "0 is out of range 1..4094"}}}, http.StatusBadRequest, "network.invalid"},
		{&network.LinkError{Link: "eth0.45", Op: "create", Err: network.ErrNoVLANSupport}, http.StatusInternalServerError, "network.no_vlan"},
		{errors.Join(errors.New("x"), &network.LinkError{Link: "eth0.45", Op: "create", Err: network.ErrNoParent}), http.StatusInternalServerError, "network.link_failed"},
		{network.ErrNoUplink, http.StatusNotFound, "network.not_found"},
	} {
		e := mapNetworkError(tc.err)
		if e == nil || e.Status != tc.status || e.Code != tc.code || e.Hint == "" {
			t.Errorf("mapNetworkError(%v) = %+v, want %d %s with a hint", tc.err, e, tc.status, tc.code)
		}
	}
	if mapNetworkError(errors.New("other")) != nil {
		t.Error("an unknown error was mapped")
	}
}
