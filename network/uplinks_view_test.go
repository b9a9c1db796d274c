package network

import "testing"

func TestFillDefault(t *testing.T) {
	tests := []struct {
		name   string
		v      View
		want   *DefaultRoute
		uplink string
	}{
		{"none", View{Routes: []RouteInfo{{Dst: "10.0.0.0/8", Link: "eth0"}}}, nil, ""},
		{"pppoe holds it beside iptv", View{
			Uplinks: []UplinkStatus{{Name: "iptv"}, {Name: "internet", PPPoE: &PPPoEStatus{Link: "ppp0"}}},
			Routes: []RouteInfo{
				{Dst: "default", Link: "iptv", Gateway: "10.45.0.1", Metric: 600},
				{Dst: "default", Link: "ppp0", Metric: 50},
				{Dst: "239.0.0.0/8", Link: "iptv", Metric: 600},
			}}, &DefaultRoute{RouteInfo: RouteInfo{Dst: "default", Link: "ppp0", Metric: 50}, Uplink: "internet", Others: 1}, "internet"},
		{"wifi", View{WiFi: &UplinkStatus{Name: "wlan0"}, Routes: []RouteInfo{{Dst: "default", Link: "wlan0", Gateway: "192.168.1.1", Metric: 1024}}},
			&DefaultRoute{RouteInfo: RouteInfo{Dst: "default", Link: "wlan0", Gateway: "192.168.1.1", Metric: 1024}, Uplink: "wifi"}, "wifi"},
		{"someone else's", View{Routes: []RouteInfo{{Dst: "default", Link: "usb0", Metric: 100}}},
			&DefaultRoute{RouteInfo: RouteInfo{Dst: "default", Link: "usb0", Metric: 100}}, ""},
	}
	for _, tt := range tests {
		tt.v.FillDefault()
		switch {
		case tt.want == nil && tt.v.Default != nil, tt.want != nil && (tt.v.Default == nil || *tt.v.Default != *tt.want):
			t.Errorf("%s: Default = %+v, want %+v", tt.name, tt.v.Default, tt.want)
		}
	}
}
