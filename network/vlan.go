package network

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Errors of link management, checked with errors.Is.
var (
	// ErrNoVLANSupport: the kernel refused an 802.1Q link because it has
	// no 8021q module (EOPNOTSUPP). LinkError.Hint says what to do.
	ErrNoVLANSupport = errors.New("the kernel has no 8021q module")
	// ErrNoParent: the uplink's parent link does not exist.
	ErrNoParent = errors.New("no such parent link")
	// ErrInvalid: the [network] table (or a request) was refused before
	// anything changed; the error also holds every *FieldError.
	ErrInvalid = errors.New("invalid network settings")
)

// LinkError is a failure to put one uplink's link in place.
type LinkError struct {
	Link string // the uplink's link ("eth0.45")
	Op   string // "create", "set up", …
	Err  error
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("cannot %s %s: %v", e.Op, e.Link, e.Err)
}

func (e *LinkError) Unwrap() error { return e.Err }

// Hint is a one-line fix, or "".
func (e *LinkError) Hint() string {
	switch {
	case errors.Is(e.Err, ErrNoVLANSupport):
		return "modprobe 8021q (and add 8021q to /etc/modules)"
	case errors.Is(e.Err, ErrNoParent):
		return "ip -br link lists the links of the box; fix parent in [[network.uplink]]"
	}
	return ""
}

// ownerPrefix marks, in a link's alias (IFLA_IFALIAS), a link the agent
// created: "boxagent:<link name>". The kernel keeps it, so an agent that
// restarts still knows which links are its own and may be removed.
const ownerPrefix = "boxagent:"

func ownerAlias(link string) string { return ownerPrefix + link }

// ownedBy is the link name in an alias set by the agent, or "".
func ownedBy(l netlink.Link) string {
	name, ok := strings.CutPrefix(l.Attrs().Alias, ownerPrefix)
	if !ok {
		return ""
	}
	return name
}

// linker is what link management needs of the kernel; *netlink.Handle
// has it.
type linker interface {
	Netlink
	LinkAdd(link netlink.Link) error
	LinkModify(link netlink.Link) error
	LinkDel(link netlink.Link) error
	LinkList() ([]netlink.Link, error)
	LinkSetUp(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkSetHardwareAddr(link netlink.Link, hwaddr net.HardwareAddr) error
	LinkSetDown(link netlink.Link) error
	LinkSetAlias(link netlink.Link, name string) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
}

var _ linker = (*netlink.Handle)(nil)

// dumpTries bounds the retries of a dump the kernel interrupted (the
// table changed while it was read: NLM_F_DUMP_INTR).
const dumpTries = 5

// retryDump runs a netlink dump again while the kernel reports it
// interrupted, at most dumpTries times.
func retryDump[T any](what string, f func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpTries {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return v, fmt.Errorf("cannot list %s: %w", what, err)
	}
	return v, nil
}

// linkByName finds a link; a missing one is (nil, nil).
func linkByName(nl Netlink, name string) (netlink.Link, error) {
	l, err := nl.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read link %s: %w", name, err)
	}
	return l, nil
}

// egressMap is the 802.1Q egress QoS map that puts PCP prio on frames of
// every socket priority 0..7 (the TC_PRIO_* values; the default is 0).
// nil prio maps them all back to 0.
func egressMap(prio *int) map[uint32]uint32 {
	m := make(map[uint32]uint32, 8)
	p := uint32(0)
	if prio != nil {
		p = uint32(*prio)
	}
	for i := range uint32(8) {
		m[i] = p
	}
	return m
}

// EnsureLink puts the link of uplink u in place and up: for a VLAN, an
// 802.1Q link on the parent with the egress priority map, the MTU and the
// agent's ownership mark, created or brought in line (a link of that name
// that is not the right VLAN is replaced); for an untagged uplink, the
// parent itself, its MTU set. u must be valid. It returns the link as it
// now is.
func EnsureLink(nl linker, u Uplink) (netlink.Link, error) {
	name := u.LinkName()
	parent, err := linkByName(nl, u.Parent)
	if err != nil {
		return nil, &LinkError{Link: name, Op: "find the parent of", Err: err}
	}
	if parent == nil {
		return nil, &LinkError{Link: name, Op: "find the parent of", Err: fmt.Errorf("%w %q", ErrNoParent, u.Parent)}
	}
	hw, err := u.HardwareAddr()
	if err != nil {
		return nil, &LinkError{Link: name, Op: "set the address of", Err: err}
	}
	if u.VLAN == nil {
		return ensureUntagged(nl, parent, u, hw)
	}
	want := &netlink.Vlan{
		LinkAttrs: netlink.LinkAttrs{
			Name: name, ParentIndex: parent.Attrs().Index, MTU: u.MTU,
			Alias: ownerAlias(name), HardwareAddr: hw,
		},
		VlanId:       *u.VLAN,
		VlanProtocol: netlink.VLAN_PROTOCOL_8021Q,
		EgressQosMap: egressMap(u.Priority),
	}
	cur, err := linkByName(nl, name)
	if err != nil {
		return nil, &LinkError{Link: name, Op: "read", Err: err}
	}
	if cur != nil && !sameVLAN(cur, want) {
		// Another link holds the name (an old VLAN id or parent, or a
		// link made by hand): replace it.
		if err := nl.LinkDel(cur); err != nil && !gone(err) {
			return nil, &LinkError{Link: name, Op: "replace", Err: err}
		}
		cur = nil
	}
	if cur == nil {
		if err := nl.LinkAdd(want); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = fmt.Errorf("%w (%w)", ErrNoVLANSupport, err)
			}
			return nil, &LinkError{Link: name, Op: "create", Err: err}
		}
		// The kernel takes no alias in a creating request.
		created, err := nl.LinkByName(name)
		if err == nil {
			err = nl.LinkSetAlias(created, want.Alias)
		}
		if err != nil {
			return nil, &LinkError{Link: name, Op: "mark", Err: err}
		}
	} else {
		// Same VLAN: bring the priority map, MTU and mark in line. The
		// request names the link without its index: with one, the kernel
		// would try to rename it, and refuse (EBUSY) while it is up.
		if err := nl.LinkModify(&netlink.Vlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index},
			VlanId:    *u.VLAN, EgressQosMap: want.EgressQosMap,
		}); err != nil {
			return nil, &LinkError{Link: name, Op: "set the egress priority of", Err: err}
		}
		if u.MTU != 0 && cur.Attrs().MTU != u.MTU {
			if err := nl.LinkSetMTU(cur, u.MTU); err != nil {
				return nil, &LinkError{Link: name, Op: "set the MTU of", Err: err}
			}
		}
		if err := ensureAddress(nl, cur, hw); err != nil {
			return nil, err
		}
		if cur.Attrs().Alias != want.Alias {
			if err := nl.LinkSetAlias(cur, want.Alias); err != nil {
				return nil, &LinkError{Link: name, Op: "mark", Err: err}
			}
		}
	}
	// The parent must be up for the VLAN to carry anything.
	if parent.Attrs().Flags&net.FlagUp == 0 {
		if err := nl.LinkSetUp(parent); err != nil {
			return nil, &LinkError{Link: name, Op: "set up the parent of", Err: err}
		}
	}
	l, err := nl.LinkByName(name)
	if err != nil {
		return nil, &LinkError{Link: name, Op: "read", Err: err}
	}
	if err := nl.LinkSetUp(l); err != nil {
		return nil, &LinkError{Link: name, Op: "set up", Err: err}
	}
	return nl.LinkByName(name)
}

func ensureUntagged(nl linker, l netlink.Link, u Uplink, hw net.HardwareAddr) (netlink.Link, error) {
	name := l.Attrs().Name
	if u.MTU != 0 && l.Attrs().MTU != u.MTU {
		if err := nl.LinkSetMTU(l, u.MTU); err != nil {
			return nil, &LinkError{Link: name, Op: "set the MTU of", Err: err}
		}
	}
	if err := ensureAddress(nl, l, hw); err != nil {
		return nil, err
	}
	if err := nl.LinkSetUp(l); err != nil {
		return nil, &LinkError{Link: name, Op: "set up", Err: err}
	}
	return nl.LinkByName(name)
}

// ensureAddress gives link l the Ethernet address hw (nil: leave it). Most
// NICs refuse a new address while up (EBUSY): the link is then taken down
// for the change and brought up again by the caller, as a box does at
// boot before its uplink carries anything.
func ensureAddress(nl linker, l netlink.Link, hw net.HardwareAddr) error {
	if hw == nil || bytes.Equal(l.Attrs().HardwareAddr, hw) {
		return nil
	}
	err := nl.LinkSetHardwareAddr(l, hw)
	if errors.Is(err, unix.EBUSY) {
		if err = nl.LinkSetDown(l); err == nil {
			err = nl.LinkSetHardwareAddr(l, hw)
		}
	}
	if err != nil {
		return &LinkError{Link: l.Attrs().Name, Op: "set the address of", Err: err}
	}
	return nil
}

// sameVLAN says whether link cur is the VLAN want (parent and id); the
// map, MTU and mark can be changed in place.
func sameVLAN(cur netlink.Link, want *netlink.Vlan) bool {
	v, ok := cur.(*netlink.Vlan)
	if !ok {
		return false
	}
	proto := v.VlanProtocol
	return v.VlanId == want.VlanId && v.Attrs().ParentIndex == want.ParentIndex &&
		(proto == netlink.VLAN_PROTOCOL_UNKNOWN || proto == netlink.VLAN_PROTOCOL_8021Q)
}

// vlanView is what `net show` says of a VLAN link.
func vlanView(l netlink.Link) (id int, egress map[uint32]uint32, ok bool) {
	v, isVLAN := l.(*netlink.Vlan)
	if !isVLAN {
		return 0, nil, false
	}
	return v.VlanId, maps.Clone(v.EgressQosMap), true
}
