package daemon

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the API's servers. A slow or idle client cannot hold a
// connection for long; event streams set their own deadline per write
// (localapi.SSEWriteTimeout).
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts: bodies are small (1 MiB at most), answers quick (long
// operations answer 202 and report by events), so a minute covers any
// honest client.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute, Idle: 60 * time.Second}

// Connection caps: the page opens a handful (its event stream, a few
// fetches), the CLI one or two per command; scripts on the box may run
// many commands at once (make bench's 50 clients), and at the cap each new
// connection closes an idle one, so every caller dials again. A connection
// costs ~10 kB and a goroutine: 64 bound the socket as they bound TCP.
const (
	maxTCPConns   = 64
	maxUnixConns  = 64
	maxSetupConns = 16
)

// newServer is one of the API's HTTP servers.
func newServer(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// limitListener lets at most n connections be open at a time. At the cap
// a new connection takes the place of the longest-idle keep-alive one of
// the server it serves (a client holding idle connections must not lock
// others out until the idle timeout: 60 s); with none idle it waits until
// one closes or goes idle between two requests (timeouts bound how long).
type limitListener struct {
	net.Listener
	sem chan struct{}

	closed    chan struct{}
	closeOnce sync.Once
	wentIdle  chan struct{} // a connection went idle: one may take its slot

	mu   sync.Mutex
	idle map[net.Conn]time.Time // the server's connections between requests
}

// limitConns caps l at n connections for srv, which reports to it which
// of them are idle (srv.ConnState; an existing hook is kept).
func limitConns(srv *http.Server, l net.Listener, n int) net.Listener {
	ll := &limitListener{Listener: l, sem: make(chan struct{}, n), closed: make(chan struct{}), wentIdle: make(chan struct{}, 1), idle: map[net.Conn]time.Time{}}
	if srv != nil {
		prev := srv.ConnState
		srv.ConnState = func(c net.Conn, st http.ConnState) {
			ll.track(c, st)
			if prev != nil {
				prev(c, st)
			}
		}
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
		}
		l.closeIdlest()
		// Wait for a slot, or for a connection to go idle between two
		// requests (busy clients reuse theirs at once and never close
		// them); but not past Close: http.Server.Close waits for Serve
		// to leave Accept before it closes the connections that would
		// free one.
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		case <-l.wentIdle:
		case <-l.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *limitListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle {
		l.idle[c] = time.Now()
		select {
		case l.wentIdle <- struct{}{}:
		default:
		}
	} else {
		delete(l.idle, c)
	}
}

// closeIdlest closes the connection idle the longest, if any: its slot is
// free when Close returns.
func (l *limitListener) closeIdlest() {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
