package bluetooth

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Progress reports a step of a long operation to a person.
type Progress func(message string)

// target resolves an address to a device of the configured adapter, after
// checking the address and that the adapter is there and powered.
func (c *Client) target(op, address string) (Device, Adapter, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return Device{}, Adapter{}, &Error{Op: op, Address: address, Msg: err.Error(), Kind: ErrInvalidAddress}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ap, err := c.adapterLocked()
	if err != nil {
		return Device{}, Adapter{}, err
	}
	ad := decodeAdapter(ap, c.adapters[ap])
	d, err := c.deviceLocked(op, a)
	if err != nil {
		return Device{}, ad, err
	}
	return d, ad, nil
}

func requirePowered(op string, a Adapter) error {
	if !a.Powered {
		return &Error{Op: op, Address: a.Name, Msg: a.Name + " is powered off", Kind: ErrAdapterOff}
	}
	return nil
}

// Pair pairs with a device, trusts it and connects it: the one step a
// person wants. Already paired or connected counts as done. When the
// headset refuses or the pairing times out, the half-made pairing is
// removed so the next attempt starts clean.
func (c *Client) Pair(ctx context.Context, address string, progress Progress) (Device, error) {
	if progress == nil {
		progress = func(string) {}
	}
	d, ad, err := c.target("pair", address)
	if err != nil {
		return d, err
	}
	if err := requirePowered("pair", ad); err != nil {
		return d, err
	}
	c.rc.userWants(d.Address)
	path := dbus.ObjectPath(d.Path)
	if !d.Paired {
		done := c.allowAddress(d.Address, c.o.PairTimeout+5*time.Second)
		// A non-pairable (non-bondable) adapter pairs without bonding:
		// the kernel marks the link key not to be stored, and the headset
		// is forgotten at the next restart. Bondable while the user's
		// pairing runs, then back to the window's rule.
		if !ad.Pairable {
			if err := c.setProp(ctx, dbus.ObjectPath(ad.Path), ifaceAdapter, "Pairable", true); err != nil {
				done()
				return d, callError("make pairable", ad.Name, err)
			}
		}
		progress("pairing with " + d.DisplayName())
		err := c.pairOnce(ctx, d, path)
		if isKind(err, ErrInProgress) {
			// Someone (the headset, another client) is pairing already:
			// wait for that to end, then try once more if it failed.
			progress("a pairing is already in progress; waiting for it")
			wctx, cancel := context.WithTimeout(ctx, c.o.PairTimeout)
			_, werr := c.waitDevice(wctx, path, func(d Device, ok bool) bool { return !ok || d.Paired })
			cancel()
			if werr != nil {
				err = c.pairOnce(ctx, d, path)
			} else {
				err = nil
			}
		}
		done()
		c.enforceWindow(context.WithoutCancel(ctx))
		if err != nil {
			if isKind(err, ErrAuthFailed) || isKind(err, ErrTimeout) {
				progress("pairing failed; removing the half-made pairing")
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.CallTimeout)
				if c.call(rctx, 0, dbus.ObjectPath(ad.Path), ifaceAdapter+".RemoveDevice", path).Err == nil {
					c.waitDevice(rctx, path, func(_ Device, ok bool) bool { return !ok })
				}
				cancel()
			}
			return d, err
		}
		progress("paired")
	} else {
		progress("already paired")
	}
	if !d.Trusted {
		if err := c.setProp(ctx, path, ifaceDevice, "Trusted", true); err != nil {
			return d, callError("trust", d.Address, err)
		}
		progress("trusted")
	}
	dev, err := c.connect(ctx, d, progress)
	if err != nil {
		return d, err
	}
	return dev, nil
}

func (c *Client) pairOnce(ctx context.Context, d Device, path dbus.ObjectPath) error {
	err := c.call(ctx, c.o.PairTimeout, path, ifaceDevice+".Pair").Err
	if err == nil {
		return nil
	}
	e := callError("pair", d.Address, err)
	if isKind(e, ErrAlreadyExists) {
		return nil
	}
	return e
}

// Trust marks a device trusted (or not): bluetoothd then lets it connect
// its services without asking the agent.
func (c *Client) Trust(ctx context.Context, address string, trusted bool) (Device, error) {
	d, _, err := c.target("trust", address)
	if err != nil {
		return d, err
	}
	if err := c.setProp(ctx, dbus.ObjectPath(d.Path), ifaceDevice, "Trusted", trusted); err != nil {
		return d, callError("trust", d.Address, err)
	}
	return c.Device(d.Address)
}

// Connect connects a paired device's profiles.
func (c *Client) Connect(ctx context.Context, address string, progress Progress) (Device, error) {
	if progress == nil {
		progress = func(string) {}
	}
	d, ad, err := c.target("connect", address)
	if err != nil {
		return d, err
	}
	if err := requirePowered("connect", ad); err != nil {
		return d, err
	}
	c.rc.userWants(d.Address)
	return c.connect(ctx, d, progress)
}

func (c *Client) connect(ctx context.Context, d Device, progress Progress) (Device, error) {
	if progress == nil {
		progress = func(string) {}
	}
	path := dbus.ObjectPath(d.Path)
	if d.Connected {
		progress("already connected")
		return d, nil
	}
	progress("connecting " + d.DisplayName())
	err := c.call(ctx, c.o.ConnectTimeout, path, ifaceDevice+".Connect").Err
	if err != nil {
		e := callError("connect", d.Address, err)
		if isKind(e, ErrTimeout) || ctx.Err() != nil {
			// Our wait ended, BlueZ's Connect did not: left alone it
			// answers every later Connect with InProgress, for good
			// (BlueZ 5.66, a page the headset side never took). A
			// Disconnect cancels a Connect that has not answered yet.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.CallTimeout)
			if derr := c.conn.Object(busName, path).CallWithContext(cctx, ifaceDevice+".Disconnect", 0).Err; derr != nil {
				c.log.Debug("cannot cancel BlueZ's pending Connect", "device", d.Address, "err", derr)
			}
			cancel()
		}
		if !isKind(e, ErrAlreadyConnected) {
			return d, e
		}
	}
	// Connect returns once a profile is up; the Connected property
	// follows in a signal (some BlueZ builds send it just after).
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	dev, werr := c.waitDevice(wctx, path, func(d Device, ok bool) bool { return !ok || d.Connected })
	cancel()
	if werr != nil {
		c.log.Warn("Connect returned but Connected did not follow", "device", d.Address)
		dev, _ = c.Device(d.Address)
		dev.Connected = true
	}
	progress("connected")
	return dev, nil
}

// ConnectProfile connects one profile of a device, named by its service
// UUID (UUIDHFPHF, …): a headset that came up with A2DP only gets its
// voice profile when the sound server is asked for a call. Already
// connected counts as done. Unlike Connect it is not a user's connect:
// auto-reconnect's view of the device stays as it was.
func (c *Client) ConnectProfile(ctx context.Context, address, uuid string) error {
	op := "connect " + profileName(uuid) + " of"
	d, ad, err := c.target(op, address)
	if err != nil {
		return err
	}
	if err := requirePowered(op, ad); err != nil {
		return err
	}
	err = c.call(ctx, c.o.ConnectTimeout, dbus.ObjectPath(d.Path), ifaceDevice+".ConnectProfile", uuid).Err
	if e := callError(op, d.Address, err); e != nil && !isKind(e, ErrAlreadyConnected) {
		return e
	}
	return nil
}

// profileName names a headset's profile in messages; another UUID is
// itself.
func profileName(uuid string) string {
	switch strings.ToLower(uuid) {
	case UUIDA2DPSink:
		return "A2DP"
	case UUIDHFPHF:
		return "HFP"
	case UUIDHSPHS:
		return "HSP"
	}
	return "profile " + uuid
}

// Disconnect disconnects a device; auto-reconnect leaves it alone until
// the user connects or pairs it again. Not connected counts as done.
func (c *Client) Disconnect(ctx context.Context, address string) (Device, error) {
	d, _, err := c.target("disconnect", address)
	if err != nil {
		return d, err
	}
	c.rc.userOff(d.Address)
	if err := c.call(ctx, 0, dbus.ObjectPath(d.Path), ifaceDevice+".Disconnect").Err; err != nil {
		if e := callError("disconnect", d.Address, err); !isKind(e, ErrNotConnected) {
			return d, e
		}
		d.Connected = false
		return d, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	dev, _ := c.waitDevice(wctx, dbus.ObjectPath(d.Path), func(d Device, ok bool) bool { return !ok || !d.Connected })
	cancel()
	return dev, nil
}

// Remove forgets a device: its pairing keys go, and auto-reconnect leaves
// it alone.
func (c *Client) Remove(ctx context.Context, address string) error {
	d, ad, err := c.target("forget", address)
	if err != nil {
		return err
	}
	c.rc.userOff(d.Address)
	if err := c.call(ctx, 0, dbus.ObjectPath(ad.Path), ifaceAdapter+".RemoveDevice", dbus.ObjectPath(d.Path)).Err; err != nil {
		return callError("forget", d.Address, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c.waitDevice(wctx, dbus.ObjectPath(d.Path), func(_ Device, ok bool) bool { return !ok })
	cancel()
	return nil
}

// SetPowered powers an adapter ("" for the configured one) on or off.
func (c *Client) SetPowered(ctx context.Context, adapter string, on bool) (Adapter, error) {
	return c.setAdapter(ctx, adapter, "power", "Powered", on)
}

// SetAlias sets an adapter's friendly name, what headsets show.
func (c *Client) SetAlias(ctx context.Context, adapter, alias string) (Adapter, error) {
	return c.setAdapter(ctx, adapter, "set the alias of", "Alias", alias)
}

// SetPairable makes an adapter pairable (or not) for timeout (0: no limit).
func (c *Client) SetPairable(ctx context.Context, adapter string, on bool, timeout time.Duration) (Adapter, error) {
	if on {
		if _, err := c.setAdapter(ctx, adapter, "set the pairable timeout of", "PairableTimeout", uint32(timeout/time.Second)); err != nil {
			return Adapter{}, err
		}
	}
	return c.setAdapter(ctx, adapter, "make pairable", "Pairable", on)
}

// SetDiscoverable makes an adapter visible to scans (or not) for timeout
// (0: no limit).
func (c *Client) SetDiscoverable(ctx context.Context, adapter string, on bool, timeout time.Duration) (Adapter, error) {
	if on {
		if _, err := c.setAdapter(ctx, adapter, "set the discoverable timeout of", "DiscoverableTimeout", uint32(timeout/time.Second)); err != nil {
			return Adapter{}, err
		}
	}
	return c.setAdapter(ctx, adapter, "make discoverable", "Discoverable", on)
}

func (c *Client) setAdapter(ctx context.Context, adapter, op, name string, v any) (Adapter, error) {
	a, err := c.AdapterByName(adapter)
	if err != nil {
		return a, err
	}
	// Busy: bluetoothd is making the same change (it powers adapters on
	// by itself after a restart); wait for the value like after a Set.
	var busy error
	if err := c.setProp(ctx, dbus.ObjectPath(a.Path), ifaceAdapter, name, v); err != nil {
		if busy = callError(op, a.Name, err); !isKind(busy, ErrInProgress) {
			return a, busy
		}
	}
	// The model follows from PropertiesChanged; wait for it briefly so the
	// answer shows the new state.
	want := dbus.MakeVariant(v)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ping := make(chan struct{}, 1)
	unsub := c.subscribe(func(ev Event) {
		if ev.Adapter != nil && ev.Adapter.Path == a.Path {
			select {
			case ping <- struct{}{}:
			default:
			}
		}
	})
	defer unsub()
	for {
		c.mu.Lock()
		pr := c.adapters[dbus.ObjectPath(a.Path)]
		got, ok := pr[name]
		cur := decodeAdapter(dbus.ObjectPath(a.Path), pr)
		c.mu.Unlock()
		if ok && got.String() == want.String() {
			return cur, nil
		}
		select {
		case <-wctx.Done():
			return cur, busy
		case <-ping:
		}
	}
}

// ScanOptions shape a scan.
type ScanOptions struct {
	// Duration of the scan; default 10 s.
	Duration time.Duration
	// Until ends the scan early, once a device with this address, or
	// whose name or alias is this (any case), is seen: a user looking
	// for one headset need not wait for the whole Duration.
	Until string
}

// sought says which device Until names: a match function, nil when
// Until is empty. The address is parsed once, not at every event.
func (o ScanOptions) sought() func(Device) bool {
	if o.Until == "" {
		return nil
	}
	if a, err := ParseAddress(o.Until); err == nil {
		return func(d Device) bool { return d.Address == a }
	}
	return func(d Device) bool { return strings.EqualFold(d.Name, o.Until) || strings.EqualFold(d.Alias, o.Until) }
}

// Scan discovers BR/EDR devices on the configured adapter for the
// duration (or until ctx ends): found is called, in order, for each device
// seen, and again when its name or services become known. It returns the
// devices seen, headsets first. Discovery is stopped however it ends.
func (c *Client) Scan(ctx context.Context, o ScanOptions, found func(Device)) ([]Device, error) {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	ad, err := c.adapter()
	if err != nil {
		return nil, err
	}
	if err := requirePowered("scan on", ad); err != nil {
		return nil, err
	}
	path := dbus.ObjectPath(ad.Path)
	// The subscriber runs on the signal goroutine: it only queues.
	var qmu sync.Mutex
	var queue []Event
	qch := make(chan struct{}, 1)
	unsub := c.subscribe(func(ev Event) {
		if ev.Type != EventDevice || ev.Device == nil || ev.Device.Adapter != ad.Name {
			return
		}
		qmu.Lock()
		queue = append(queue, ev)
		qmu.Unlock()
		select {
		case qch <- struct{}{}:
		default:
		}
	})
	defer unsub()

	filter := map[string]dbus.Variant{"Transport": dbus.MakeVariant("bredr")}
	if err := c.call(ctx, 0, path, ifaceAdapter+".SetDiscoveryFilter", filter).Err; err != nil {
		return nil, callError("set the discovery filter of", ad.Name, err)
	}
	if err := c.call(ctx, 0, path, ifaceAdapter+".StartDiscovery").Err; err != nil {
		if e := callError("start discovery on", ad.Name, err); !isKind(e, ErrInProgress) {
			return nil, e
		}
	}
	c.log.Info("scan started", "adapter", ad.Name, "for", o.Duration)
	defer func() {
		// A fresh context: the caller's may be what ended the scan.
		sctx := context.WithoutCancel(ctx)
		if err := c.call(sctx, 0, path, ifaceAdapter+".StopDiscovery").Err; err != nil {
			c.log.Warn("cannot stop discovery", "adapter", ad.Name, "err", callError("stop discovery on", ad.Name, err))
		}
		c.call(sctx, 0, path, ifaceAdapter+".SetDiscoveryFilter", map[string]dbus.Variant{})
		c.log.Info("scan stopped", "adapter", ad.Name)
	}()

	timer := time.NewTimer(o.Duration)
	defer timer.Stop()
	got := map[string]*scanSeen{}
	var order []string
	wanted := o.sought()
	sought := false // Until's device was seen
	drain := func() {
		qmu.Lock()
		q := queue
		queue = nil
		qmu.Unlock()
		for _, ev := range q {
			d := *ev.Device
			// A device counts once discovery reports it: BlueZ created it
			// (InterfacesAdded carries its Address) or updated its RSSI.
			s, ok := got[d.Address]
			if !ok && !slices.Contains(ev.Changed, "RSSI") && !slices.Contains(ev.Changed, "Address") {
				continue
			}
			sought = sought || wanted != nil && wanted(d)
			key := d.Name + "|" + d.Alias + "|" + d.Icon
			if d.A2DPSink || d.HFPHF || d.HSPHS {
				key += "|h"
			}
			if !ok {
				got[d.Address] = &scanSeen{d: d, key: key}
				order = append(order, d.Address)
				if found != nil {
					found(d)
				}
				continue
			}
			s.d = d
			if s.key != key {
				s.key = key
				if found != nil {
					found(d)
				}
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			drain()
			return result(got, order), nil
		case <-timer.C:
			drain()
			return result(got, order), nil
		case <-qch:
			drain()
			if sought {
				c.log.Info("scan found the device it was looking for", "until", o.Until)
				return result(got, order), nil
			}
		}
	}
}

type scanSeen struct {
	d   Device
	key string
}

func result(got map[string]*scanSeen, order []string) []Device {
	out := make([]Device, 0, len(order))
	for _, a := range order {
		out = append(out, got[a].d)
	}
	SortDevices(out)
	return out
}
