package bluetooth

import (
	"sort"
	"strings"

	"github.com/godbus/dbus/v5"
)

// BlueZ's names.
const (
	busName       = "org.bluez"
	ifaceAdapter  = "org.bluez.Adapter1"
	ifaceDevice   = "org.bluez.Device1"
	ifaceAgentMgr = "org.bluez.AgentManager1"
	ifaceAgent    = "org.bluez.Agent1"
	ifaceObjMgr   = "org.freedesktop.DBus.ObjectManager"
	ifaceProps    = "org.freedesktop.DBus.Properties"
	bluezRoot     = dbus.ObjectPath("/org/bluez")
)

// Service UUIDs a headset offers.
const (
	UUIDA2DPSink = "0000110b-0000-1000-8000-00805f9b34fb"
	UUIDHFPHF    = "0000111e-0000-1000-8000-00805f9b34fb"
	UUIDHSPHS    = "00001108-0000-1000-8000-00805f9b34fb"
)

// Adapter is a Bluetooth controller as BlueZ reports it.
type Adapter struct {
	Name                string `json:"name"` // hci0
	Path                string `json:"path"`
	Address             string `json:"address"`
	Alias               string `json:"alias"`
	Class               uint32 `json:"class"`
	Powered             bool   `json:"powered"`
	Discoverable        bool   `json:"discoverable"`
	DiscoverableTimeout uint32 `json:"discoverable_timeout"`
	Pairable            bool   `json:"pairable"`
	PairableTimeout     uint32 `json:"pairable_timeout"`
	Discovering         bool   `json:"discovering"`
}

// Device is a remote device an adapter knows.
type Device struct {
	Address          string   `json:"address"`
	Adapter          string   `json:"adapter"` // hci0
	Path             string   `json:"path"`
	Name             string   `json:"name,omitempty"`
	Alias            string   `json:"alias,omitempty"`
	Class            uint32   `json:"class,omitempty"`
	Icon             string   `json:"icon,omitempty"`
	RSSI             *int16   `json:"rssi,omitempty"`
	Paired           bool     `json:"paired"`
	Bonded           bool     `json:"bonded,omitempty"`
	Trusted          bool     `json:"trusted"`
	Blocked          bool     `json:"blocked,omitempty"`
	Connected        bool     `json:"connected"`
	ServicesResolved bool     `json:"services_resolved,omitempty"`
	LegacyPairing    bool     `json:"legacy_pairing,omitempty"`
	UUIDs            []string `json:"uuids,omitempty"`
	// What it offers, from its UUIDs (and, before they are known, its
	// class of device).
	A2DPSink bool `json:"a2dp_sink"`
	HFPHF    bool `json:"hfp_hf"`
	HSPHS    bool `json:"hsp_hs"`
}

// Headset says whether the device is an audio sink or a headset: it offers
// one of the three profiles, or its class of device says audio/video
// headset, hands-free or headphones.
func (d Device) Headset() bool {
	if d.A2DPSink || d.HFPHF || d.HSPHS {
		return true
	}
	major := (d.Class >> 8) & 0x1f
	minor := (d.Class >> 2) & 0x3f
	if major == 0x04 { // audio/video
		switch minor {
		case 0x01, 0x02, 0x06: // wearable headset, hands-free, headphones
			return true
		}
	}
	return strings.HasPrefix(d.Icon, "audio-headset") || d.Icon == "audio-headphones"
}

// DisplayName is the alias, else the name, else the address.
func (d Device) DisplayName() string {
	switch {
	case d.Alias != "":
		return d.Alias
	case d.Name != "":
		return d.Name
	}
	return d.Address
}

// SortDevices puts headsets first, then the strongest signal, then by
// address, so a scan's list starts with what the user is looking for.
func SortDevices(ds []Device) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Headset() != b.Headset() {
			return a.Headset()
		}
		ra, rb := rssiOr(a.RSSI), rssiOr(b.RSSI)
		if ra != rb {
			return ra > rb
		}
		return a.Address < b.Address
	})
}

func rssiOr(r *int16) int {
	if r == nil {
		return -1000
	}
	return int(*r)
}

// props is one interface's properties as BlueZ sent them.
type props map[string]dbus.Variant

// merge applies a PropertiesChanged.
func (p props) merge(changed map[string]dbus.Variant, invalidated []string) {
	for k, v := range changed {
		p[k] = v
	}
	for _, k := range invalidated {
		delete(p, k)
	}
}

// The decoders are tolerant: a property of an unexpected type (or one this
// code does not know, like Bonded before 5.66) is ignored, never an error.
func (p props) str(k string) string {
	if v, ok := p[k]; ok {
		switch s := v.Value().(type) {
		case string:
			return s
		case dbus.ObjectPath:
			return string(s)
		}
	}
	return ""
}

func (p props) boolean(k string) bool {
	b, _ := p[k].Value().(bool)
	return b
}

func (p props) u32(k string) uint32 {
	switch n := p[k].Value().(type) {
	case uint32:
		return n
	case int32:
		return uint32(n)
	case uint16:
		return uint32(n)
	}
	return 0
}

func (p props) i16(k string) *int16 {
	switch n := p[k].Value().(type) {
	case int16:
		return &n
	case int32:
		m := int16(n)
		return &m
	}
	return nil
}

func (p props) strs(k string) []string {
	switch l := p[k].Value().(type) {
	case []string:
		return l
	case []any:
		var out []string
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func decodeAdapter(path dbus.ObjectPath, p props) Adapter {
	return Adapter{
		Name: adapterName(path), Path: string(path),
		Address: p.str("Address"), Alias: p.str("Alias"), Class: p.u32("Class"),
		Powered: p.boolean("Powered"), Discoverable: p.boolean("Discoverable"),
		DiscoverableTimeout: p.u32("DiscoverableTimeout"), Pairable: p.boolean("Pairable"),
		PairableTimeout: p.u32("PairableTimeout"), Discovering: p.boolean("Discovering"),
	}
}

func decodeDevice(path dbus.ObjectPath, p props) Device {
	d := Device{
		Address: strings.ToUpper(p.str("Address")), Path: string(path),
		Adapter: adapterName(dbus.ObjectPath(p.str("Adapter"))),
		Name:    p.str("Name"), Alias: p.str("Alias"), Class: p.u32("Class"), Icon: p.str("Icon"),
		RSSI: p.i16("RSSI"), Paired: p.boolean("Paired"), Bonded: p.boolean("Bonded"),
		Trusted: p.boolean("Trusted"), Blocked: p.boolean("Blocked"), Connected: p.boolean("Connected"),
		ServicesResolved: p.boolean("ServicesResolved"), LegacyPairing: p.boolean("LegacyPairing"),
		UUIDs: p.strs("UUIDs"),
	}
	if d.Address == "" {
		d.Address = addressFromPath(path)
	}
	if d.Adapter == "" {
		d.Adapter = adapterName(dbus.ObjectPath(string(path)[:strings.LastIndex(string(path), "/")]))
	}
	for _, u := range d.UUIDs {
		switch strings.ToLower(u) {
		case UUIDA2DPSink:
			d.A2DPSink = true
		case UUIDHFPHF:
			d.HFPHF = true
		case UUIDHSPHS:
			d.HSPHS = true
		}
	}
	return d
}
