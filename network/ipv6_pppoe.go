package network

import (
	"net"
	"sync"
	"time"
)

// pppIPv6 is a pppoe uplink's IPv6: pppd negotiates IPV6CP (+ipv6) and
// puts the session's link-local address on its PPP link; then the same
// as on an uplink's own link runs there (RAs, the kernel's SLAAC,
// DHCPv6), until the session goes down. A nil *pppIPv6 does nothing.
type pppIPv6 struct {
	m  *Manager
	u  Uplink
	hw net.HardwareAddr // the uplink's MAC, for the DHCPv6 DUID

	mu   sync.Mutex
	link string // the PPP link cur runs on
	cur  *ipv6Runner
}

// follow starts IPv6 on the session's link once IPV6CP gave it its
// link-local address, and stops it when the session goes down.
func (p *pppIPv6) follow(st PPPoEStatus) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	up := st.LinkLocal.IsValid() && st.Link != ""
	if p.cur != nil && (!up || st.Link != p.link) {
		p.cur.stop(true)
		p.cur, p.link = nil, ""
	}
	if !up || p.cur != nil {
		return
	}
	link, err := linkByName(p.m.nl, st.Link)
	if err != nil || link == nil {
		p.m.log.Warn("cannot start IPv6 on the PPPoE session", "link", st.Link, "err", err)
		return
	}
	r, err := p.m.startIPv6(p.u, link, p.hw)
	if err != nil {
		p.m.log.Warn("cannot start IPv6 on the PPPoE session", "link", st.Link, "err", err)
		p.m.emit(UplinkEvent{Uplink: p.u.LinkName(), Kind: "ipv6", Detail: "cannot start on " + st.Link + ": " + err.Error(), Time: time.Now()})
		return
	}
	p.cur, p.link = r, st.Link
}

// runner is the IPv6 of the session now; nil without one.
func (p *pppIPv6) runner() *ipv6Runner {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (p *pppIPv6) stop(unapply bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur.stop(unapply)
	p.cur, p.link = nil, ""
}
