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
// fetches), the CLI one or two per command.
const (
	maxTCPConns   = 64
	maxUnixConns  = 32
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

// limitListener accepts at most n connections at a time; the next waits
// in the kernel's backlog until one closes (timeouts bound how long).
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func limitConns(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
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
