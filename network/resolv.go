package network

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// DNSSource is what one uplink knows of DNS: the servers and search
// domains of its DHCP lease (options 6 and 15), its static dns list, or
// its PPPoE session (usepeerdns).
type DNSSource struct {
	Link    string // the uplink's link name; one source per link
	Method  string // dhcp, static, pppoe: said in the file's comments
	Metric  uint32 // the uplink's route metric: lower comes first
	Servers []netip.Addr
	Search  []string
	// IPv6 marks the uplink's IPv6 side (RDNSS and DNSSL of its router
	// advertisements, its DHCPv6 servers): an entry of its own beside the
	// IPv4 one of the same link, dropped with DropIPv6.
	IPv6 bool
}

// key is where a source is kept: its link, and its link's IPv6 side
// apart (a space cannot stand in a link name).
func (s DNSSource) key() string {
	if s.IPv6 {
		return s.Link + " ipv6"
	}
	return s.Link
}

// ResolvConf is the one resolv.conf of every uplink: each source sets or
// drops its servers, and the file is written again whenever the merge
// (see MergeDNS) changes, never when it does not. An uplink whose carrier
// is down keeps its entry but its servers leave the file until the
// carrier returns: a resolver would wait out its timeout on each of them
// first. A nil *ResolvConf writes nothing. It is safe for concurrent use.
type ResolvConf struct {
	path string

	mu      sync.Mutex
	sources map[string]DNSSource // by DNSSource.key
	down    map[string]bool      // links without carrier
	written []byte               // the file's content as last read or written; nil: unknown
	pub     DNSPublisher         // told every change besides the file; nil: none
}

// DNSPublisher is told the sources whenever they change, besides the
// file: systemd-resolved (Resolved) where it runs. Publish must not wait.
type DNSPublisher interface {
	Publish(sources []DNSSource)
}

// PublishTo makes p be told the sources now and at every change.
func (r *ResolvConf) PublishTo(p DNSPublisher) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pub = p
	p.Publish(r.active())
}

// NewResolvConf makes the resolv.conf at path; it writes nothing until a
// source changes or Sync.
func NewResolvConf(path string) *ResolvConf {
	return &ResolvConf{path: path, sources: map[string]DNSSource{}, down: map[string]bool{}}
}

// resolvFor is shared when there is one, else a resolv.conf of one
// source's own at path ("" for none): the standalone DHCP client and
// PPPoE session write the file themselves.
func resolvFor(shared *ResolvConf, path string) *ResolvConf {
	if shared != nil || path == "" {
		return shared
	}
	return NewResolvConf(path)
}

// Path is where the file is written.
func (r *ResolvConf) Path() string {
	if r == nil {
		return ""
	}
	return r.path
}

// Set replaces the source of s.Link and writes the file if the merge
// changed. A source without servers and search domains is dropped.
func (r *ResolvConf) Set(s DNSSource) error {
	if r == nil {
		return nil
	}
	if len(s.Servers) == 0 && len(s.Search) == 0 {
		return r.drop(s.key())
	}
	s.Servers, s.Search = slices.Clone(s.Servers), slices.Clone(s.Search)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources[s.key()] = s
	return r.flush()
}

// Drop removes the servers of link (its lease ended, its session went
// down, it left the config) and writes the file if the merge changed.
// The link's IPv6 side stays (DropIPv6).
func (r *ResolvConf) Drop(link string) error {
	return r.drop(DNSSource{Link: link}.key())
}

// DropIPv6 removes the servers of link's IPv6 side.
func (r *ResolvConf) DropIPv6(link string) error {
	return r.drop(DNSSource{Link: link, IPv6: true}.key())
}

func (r *ResolvConf) drop(key string) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sources[key]; !ok && r.written != nil {
		return nil
	}
	delete(r.sources, key)
	return r.flush()
}

// SetCarrier says whether link has a carrier: without one its servers
// leave the file (its source is kept for when the carrier returns).
func (r *ResolvConf) SetCarrier(link string, up bool) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down[link] == !up {
		return nil
	}
	if up {
		delete(r.down, link)
	} else {
		r.down[link] = true
	}
	_, v4 := r.sources[DNSSource{Link: link}.key()]
	_, v6 := r.sources[DNSSource{Link: link, IPv6: true}.key()]
	if !v4 && !v6 {
		return nil
	}
	return r.flush()
}

// Sync writes the file if it does not hold the merge of the sources now:
// at start, a file a former run left (with servers of an uplink since
// removed) is brought in line.
func (r *ResolvConf) Sync() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flush()
}

// Sources is every source set, lowest metric first, with those whose
// link has no carrier left out.
func (r *ResolvConf) Sources() []DNSSource {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active()
}

func (r *ResolvConf) active() []DNSSource {
	var out []DNSSource
	for _, s := range r.sources {
		if !r.down[s.Link] {
			out = append(out, s)
		}
	}
	sortSources(out)
	return out
}

// flush writes the merge when it differs from the file. Callers hold mu.
func (r *ResolvConf) flush() error {
	active := r.active()
	if r.pub != nil {
		r.pub.Publish(active)
	}
	b := RenderResolvConf(active)
	if r.written == nil {
		// First write of this run: the file may already say the same.
		old, err := os.ReadFile(r.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot read %s: %w", r.path, err)
		}
		r.written = old
		if r.written == nil {
			r.written = []byte{}
		}
	}
	if bytes.Equal(b, r.written) || len(active) == 0 && len(r.written) == 0 {
		// Unchanged; or nothing to say and no file yet: a box whose
		// uplinks hand out no DNS servers gets no empty file.
		return nil
	}
	// A reader sees the old file or the new one, never part of one, and
	// after a power cut one of them is whole.
	if err := atomicfile.Write(r.path, b, 0o644, atomicfile.Options{CreateDir: true}); err != nil {
		return err
	}
	r.written = b
	return nil
}

func sortSources(ss []DNSSource) {
	slices.SortFunc(ss, func(a, b DNSSource) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Link, b.Link), cmp.Compare(a.key(), b.key()))
	})
}

// Limits of the merged search line. glibc before 2.26 kept the first 6
// domains and 256 characters of it and dropped the rest silently; glibc
// since has no limit and musl reads 256 bytes of the line. A box's
// uplinks hand out a domain or two each, so these cost nothing and keep
// the file right for every libc: the lowest metrics' domains stay.
const (
	maxSearchDomains = 6
	maxSearchChars   = 256
)

// MergeDNS is the servers and search domains of sources in route-metric
// order (the uplink the kernel prefers for traffic is asked first; equal
// metrics go by link name, so the order is stable), each once: a server
// two uplinks hand out keeps the place of the first. Search domains are
// compared without case and a trailing dot; a name that is not a domain
// (validSearchDomain) is left out, and so is one past the limits above.
func MergeDNS(sources []DNSSource) (servers []netip.Addr, search []string) {
	ss := slices.Clone(sources)
	sortSources(ss)
	seenS := map[netip.Addr]bool{}
	seenD := map[string]bool{}
	chars := len("search")
	for _, s := range ss {
		for _, a := range s.Servers {
			a = a.Unmap()
			if !a.IsValid() || a.IsUnspecified() || seenS[a] {
				continue
			}
			seenS[a] = true
			servers = append(servers, a)
		}
		for _, d := range s.Search {
			d = strings.TrimSuffix(strings.TrimSpace(d), ".")
			key := strings.ToLower(d)
			if !validSearchDomain(d) || seenD[key] || len(search) == maxSearchDomains || chars+1+len(d) > maxSearchChars {
				continue
			}
			seenD[key] = true
			chars += 1 + len(d)
			search = append(search, d)
		}
	}
	return servers, search
}

// validSearchDomain says whether d can stand on resolv.conf's search
// line: dot-separated labels of 1 to 63 letters, digits, '-' or '_', at
// most 253 characters in all (RFC 1035's limit in text form), an
// optional trailing dot. Anything else (a space, '#', a control byte
// from a DHCP server) would break the line or the resolver.
func validSearchDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for l := range strings.SplitSeq(d, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// RenderResolvConf is the file for sources: a comment naming each
// source, the merged search line, then the nameservers. glibc and musl
// use the first three nameservers; the lowest metrics' come first.
func RenderResolvConf(sources []DNSSource) []byte {
	ss := slices.Clone(sources)
	sortSources(ss)
	var b strings.Builder
	b.WriteString("# written by boxagent: DNS servers of the uplinks, lowest route metric first\n")
	for _, s := range ss {
		fmt.Fprintf(&b, "# %s (%s, metric %d):", s.Link, s.Method, s.Metric)
		for _, a := range s.Servers {
			fmt.Fprintf(&b, " %s", a)
		}
		if len(s.Search) > 0 {
			fmt.Fprintf(&b, " search %s", strings.Join(s.Search, " "))
		}
		b.WriteString("\n")
	}
	servers, search := MergeDNS(ss)
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, a := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	return []byte(b.String())
}
