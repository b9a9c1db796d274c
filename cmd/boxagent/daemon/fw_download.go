package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Downloads of packages (fw add URL). The LAN-only rule is checked on the
// address each connection dials, so neither a redirect nor a DNS answer
// that changes between a check and the dial reaches beyond the LAN; a
// server that stops sending ends the download instead of holding the
// firmware lock.
var (
	// errNotLAN: the URL, a redirect or a DNS answer led off the LAN.
	errNotLAN = errors.New("not on the LAN: packages come from the local network only")
	// errStalled: the server sent too little for too long.
	errStalled = errors.New("the download stalled")
)

// Download limits; tests shorten them.
var (
	dialTimeout   = 10 * time.Second
	headerTimeout = 30 * time.Second
	// stallTimeout is how long a download may go without stallBytes
	// arriving: a trickle counts as stalled too.
	stallTimeout = 60 * time.Second
	stallBytes   = int64(64 << 10)
	maxRedirects = 5
)

// lanAddr reports whether ip is private, loopback or link-local.
func lanAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()
}

// lanOnly is a net.Dialer Control: it refuses every address off the LAN
// after DNS, just before the connect.
func lanOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %s", errNotLAN, address)
	}
	if !lanAddr(ap.Addr()) {
		return fmt.Errorf("%s %w", ap.Addr(), errNotLAN)
	}
	return nil
}

// downloadClient is the HTTP client of package downloads: no proxy from the
// environment (it would dial off the LAN for us), LAN-only dials, a bounded
// wait for the headers and at most maxRedirects http(s) redirects.
func downloadClient() *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, Control: lanOnly}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			TLSHandshakeTimeout:    dialTimeout,
			ResponseHeaderTimeout:  headerTimeout,
			MaxResponseHeaderBytes: 64 << 10,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %q: not an http(s) URL", req.URL.Redacted())
			}
			if ip, err := netip.ParseAddr(req.URL.Hostname()); err == nil && !lanAddr(ip) {
				return fmt.Errorf("redirect to %s: %s %w", redactURL(req.URL.String()), ip, errNotLAN)
			}
			return nil // a name is checked when dialled
		},
	}
}

// download GETs rawURL and returns its body, which fails with errStalled
// when fewer than stallBytes arrive in stallTimeout. The caller closes it.
func download(ctx context.Context, rawURL string) (io.ReadCloser, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		cancel(nil)
		return nil, 0, err
	}
	// The headers are bounded by the transport; the body by the watch.
	resp, err := downloadClient().Do(req)
	if err != nil {
		cancel(nil)
		if errors.Is(err, errNotLAN) {
			return nil, 0, fmt.Errorf("cannot download the package: %w", unwrapURL(err))
		}
		return nil, 0, fmt.Errorf("cannot download the package: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel(nil)
		return nil, 0, fmt.Errorf("cannot download the package: %s answered %s", redactURL(rawURL), resp.Status)
	}
	w := &stallWatch{body: resp.Body, ctx: ctx, cancel: cancel}
	w.timer = time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	return w, resp.ContentLength, nil
}

// unwrapURL drops the *url.Error around a refused dial or redirect: its
// message repeats the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// stallWatch cancels the download when it makes too little progress.
type stallWatch struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	since  int64 // bytes since the timer was last reset
}

func (w *stallWatch) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if w.since += int64(n); w.since >= stallBytes {
		w.since = 0
		w.timer.Reset(stallTimeout)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(w.ctx); errors.Is(cause, errStalled) {
			return n, fmt.Errorf("%w: less than %d KiB in %s", errStalled, stallBytes>>10, stallTimeout)
		}
	}
	return n, err
}

func (w *stallWatch) Close() error {
	w.timer.Stop()
	w.cancel(nil)
	return w.body.Close()
}

// redactURL hides a URL's password (user:xxxxx@), for the journal, the
// history and messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}
