package bluetooth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	headsetAddr = "00:1B:66:AA:BB:CC"
	phoneAddr   = "11:22:33:44:55:66"
)

func TestModelFollowsSignals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	if !f.c.AgentRegistered() {
		t.Fatal("agent not registered at start")
	}
	f.m.addAdapter("hci0")
	f.ev.wait(t, "adapter hci0", func(ev Event) bool { return ev.Type == EventAdapter && ev.Adapter.Name == "hci0" })
	dev := f.m.addDevice("hci0", headsetAddr, "Office Headset")
	// The template sends ManufacturerData, ServiceData, AdvertisingFlags
	// and AdvertisingData with the wrong types, and BlueZ 5.66 adds
	// Bonded: the decoder must shrug at both.
	f.m.must(dev, "org.freedesktop.DBus.Mock.AddProperty", ifaceDevice, "Bonded", dbus.MakeVariant(false))
	f.m.update(dev, ifaceDevice, map[string]dbus.Variant{
		"Bonded": dbus.MakeVariant(true),
		"UUIDs":  dbus.MakeVariant([]string{UUIDA2DPSink, UUIDHFPHF}),
		"Class":  dbus.MakeVariant(uint32(0x240404)),
	})
	f.ev.wait(t, "device bonded with UUIDs", isDevice(headsetAddr, func(d Device) bool { return d.Bonded && d.A2DPSink }))

	ads, err := f.c.Adapters()
	if err != nil || len(ads) != 1 || ads[0].Address != "00:01:02:03:04:05" || !ads[0].Powered {
		t.Fatalf("Adapters() = %+v, %v", ads, err)
	}
	devs, err := f.c.Devices()
	if err != nil || len(devs) != 1 {
		t.Fatalf("Devices() = %+v, %v", devs, err)
	}
	d := devs[0]
	if d.Name != "Office Headset" || d.RSSI == nil || *d.RSSI != -79 || !d.HFPHF || d.HSPHS || !d.Headset() || d.Adapter != "hci0" {
		t.Errorf("device = %+v", d)
	}
	if h := f.c.Health(); h.State != HealthOK {
		t.Errorf("health = %+v", h)
	}

	f.m.must("/", "org.bluez.Mock.RemoveAdapterWithDevices", "hci0")
	f.ev.wait(t, "device removed", func(ev Event) bool { return ev.Type == EventDeviceRemoved })
	f.ev.wait(t, "adapter removed", func(ev Event) bool { return ev.Type == EventAdapterRemoved })
	if _, err := f.c.Devices(); !errors.Is(err, ErrNoAdapter) {
		t.Errorf("Devices() without an adapter: %v, want ErrNoAdapter", err)
	}
	if h := f.c.Health(); h.State != HealthDegraded {
		t.Errorf("health without adapter = %+v", h)
	}
}

func TestScanStreamsDevicesHeadsetsFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ad := f.m.addAdapter("hci0")
	f.ev.wait(t, "adapter", func(ev Event) bool { return ev.Type == EventAdapter })
	// Known before the scan and not seen during it: not in the result.
	f.m.addDevice("hci0", "22:22:22:22:22:22", "old printer")
	f.ev.wait(t, "old device", isDevice("22:22:22:22:22:22", func(Device) bool { return true }))

	found := make(chan Device, 10)
	type res struct {
		ds  []Device
		err error
	}
	done := make(chan res, 1)
	go func() {
		ds, err := f.c.Scan(context.Background(), ScanOptions{Duration: 2 * time.Second}, func(d Device) { found <- d })
		done <- res{ds, err}
	}()
	f.ev.wait(t, "discovering", func(ev Event) bool { return ev.Type == EventAdapter && ev.Adapter.Discovering })
	f.m.addDevice("hci0", phoneAddr, "phone")
	hs := f.m.addDevice("hci0", headsetAddr, "headset")
	f.m.update(hs, ifaceDevice, map[string]dbus.Variant{"UUIDs": dbus.MakeVariant([]string{UUIDA2DPSink})})
	first := <-found
	if first.Address != phoneAddr {
		t.Errorf("first found %s, want the phone (stream order)", first.Address)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.ds) != 2 || r.ds[0].Address != headsetAddr || !r.ds[0].A2DPSink || r.ds[1].Address != phoneAddr {
		t.Fatalf("scan result %+v, want headset then phone", r.ds)
	}
	// The template records the filter; discovery ended cleanly.
	if v := f.m.get(ad, ifaceAdapter, "Discovering"); v != false {
		t.Errorf("Discovering after the scan = %v", v)
	}
	log := f.m.callLog(ad)
	var calls []string
	for _, c := range log {
		calls = append(calls, c.Name)
	}
	want := []string{"SetDiscoveryFilter", "StartDiscovery", "StopDiscovery", "SetDiscoveryFilter"}
	if !slices.Equal(calls, want) {
		t.Fatalf("adapter calls %v, want %v", calls, want)
	}
	// BR/EDR only (headsets are classic devices; LE advertisers would
	// flood the list), and the filter cleared after the scan so that
	// other discovery clients of bluetoothd are not narrowed by ours.
	if f := callFilter(t, log[0]); len(f) != 1 || f["Transport"].Value() != "bredr" {
		t.Errorf("discovery filter at the start = %v, want exactly Transport=bredr", f)
	}
	if f := callFilter(t, log[3]); len(f) != 0 {
		t.Errorf("discovery filter after the scan = %v, want it cleared (empty)", f)
	}
}

// callFilter is the argument of a logged SetDiscoveryFilter call.
func callFilter(t *testing.T, c mockCall) map[string]dbus.Variant {
	t.Helper()
	if len(c.Args) != 1 {
		t.Fatalf("%s logged with %d arguments: %v", c.Name, len(c.Args), c.Args)
	}
	var f map[string]dbus.Variant
	if err := dbus.Store([]any{c.Args[0].Value()}, &f); err != nil {
		t.Fatalf("%s argument %v: %v", c.Name, c.Args[0], err)
	}
	return f
}

// TestScanUntil: a scan for one device ends when it is seen, by address or
// by name, not after its whole duration.
func TestScanUntil(t *testing.T) {
	t.Parallel()
	for _, until := range []string{headsetAddr, "HEADSET"} {
		f := newFixture(t, Options{})
		f.m.addAdapter("hci0")
		f.ev.wait(t, "adapter", func(ev Event) bool { return ev.Type == EventAdapter })
		done := make(chan []Device, 1)
		start := time.Now()
		go func() {
			ds, err := f.c.Scan(context.Background(), ScanOptions{Duration: time.Minute, Until: until}, nil)
			if err != nil {
				t.Error(err)
			}
			done <- ds
		}()
		f.ev.wait(t, "discovering", func(ev Event) bool { return ev.Type == EventAdapter && ev.Adapter.Discovering })
		f.m.addDevice("hci0", phoneAddr, "phone")
		f.m.addDevice("hci0", headsetAddr, "headset")
		select {
		case ds := <-done:
			if !slices.ContainsFunc(ds, func(d Device) bool { return d.Address == headsetAddr }) {
				t.Errorf("until %s: result %+v lacks the headset", until, ds)
			}
			t.Logf("until %s: ended after %s", until, time.Since(start).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatalf("until %s: the scan went on after the device was seen", until)
		}
	}
}

func TestScanNeedsPower(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ad := f.m.addAdapter("hci0")
	f.m.update(ad, ifaceAdapter, map[string]dbus.Variant{"Powered": dbus.MakeVariant(false)})
	f.ev.wait(t, "adapter off", func(ev Event) bool { return ev.Type == EventAdapter && !ev.Adapter.Powered })
	_, err := f.c.Scan(context.Background(), ScanOptions{Duration: time.Second}, nil)
	if !errors.Is(err, ErrAdapterOff) {
		t.Fatalf("scan on a powered-off adapter: %v", err)
	}
	if calls := f.m.calls(ad); len(calls) != 0 {
		t.Errorf("calls made on a powered-off adapter: %v", calls)
	}
}
