package network

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRetryDump(t *testing.T) {
	calls := 0
	v, err := retryDump("links", func() (int, error) {
		calls++
		if calls < 3 {
			return 0, netlink.ErrDumpInterrupted
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 3 {
		t.Errorf("retryDump = %d, %v after %d calls; want 7, nil after 3", v, err, calls)
	}
	calls = 0
	_, err = retryDump("routes", func() (int, error) {
		calls++
		return 0, fmt.Errorf("dump: %w", netlink.ErrDumpInterrupted)
	})
	if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpTries || err.Error() != "cannot list routes: dump: "+netlink.ErrDumpInterrupted.Error() {
		t.Errorf("retryDump kept interrupted: %v after %d calls; want the error after %d", err, calls, dumpTries)
	}
}

func TestEgressMap(t *testing.T) {
	m := egressMap(ptr(6))
	if len(m) != 8 {
		t.Fatalf("map %v", m)
	}
	for prio, pcp := range m {
		if pcp != 6 {
			t.Errorf("priority %d → PCP %d, want 6", prio, pcp)
		}
	}
	for _, pcp := range egressMap(nil) {
		if pcp != 0 {
			t.Errorf("no priority: map %v, want all 0", egressMap(nil))
		}
	}
}

func TestOwnership(t *testing.T) {
	for alias, want := range map[string]string{
		"boxagent:eth0.45": "eth0.45",
		"boxagent:":        "",
		"uplink":           "",
		"":                 "",
	} {
		l := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "eth0.45", Alias: alias}}
		if got := ownedBy(l); got != want {
			t.Errorf("ownedBy(alias %q) = %q, want %q", alias, got, want)
		}
	}
	if ownerAlias("eth0.45") != "boxagent:eth0.45" {
		t.Errorf("ownerAlias = %q", ownerAlias("eth0.45"))
	}
}

func TestSameVLAN(t *testing.T) {
	want := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{ParentIndex: 2}, VlanId: 45}
	for _, tc := range []struct {
		cur  netlink.Link
		same bool
	}{
		{&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{ParentIndex: 2}, VlanId: 45, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}, true},
		{&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{ParentIndex: 2}, VlanId: 46}, false},
		{&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{ParentIndex: 3}, VlanId: 45}, false},
		{&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{ParentIndex: 2}, VlanId: 45, VlanProtocol: netlink.VLAN_PROTOCOL_8021AD}, false},
		{&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{ParentIndex: 2}}, false},
	} {
		if got := sameVLAN(tc.cur, want); got != tc.same {
			t.Errorf("sameVLAN(%+v) = %v", tc.cur, got)
		}
	}
}

func TestLinkErrorHint(t *testing.T) {
	e := &LinkError{Link: "eth0.45", Op: "create", Err: fmt.Errorf("%w (operation not supported)", ErrNoVLANSupport)}
	if e.Error() != "cannot create eth0.45: the kernel has no 8021q module (operation not supported)" || e.Hint() == "" || !errors.Is(e, ErrNoVLANSupport) {
		t.Errorf("%q hint %q", e, e.Hint())
	}
}
