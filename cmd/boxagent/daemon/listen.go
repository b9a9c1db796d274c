package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/internal/peercred"
)

// peerListener is the unix socket's second check after its mode (0660):
// the peer's credentials (SO_PEERCRED, SO_PEERGROUPS), taken by the
// kernel at connect time. Allowed: root, the agent's own user, and
// members (primary or supplementary) of the agent's group, the socket's
// group. Anyone else gets a 403 and the connection is closed, whatever
// the socket's mode was made.
type peerListener struct {
	net.Listener
	uid, gid int
	log      *slog.Logger
	// refusing bounds the refusals being answered; lastLog rate-limits
	// their log lines (one a second: a local user cannot fill the log).
	refusing chan struct{}
	lastLog  atomic.Int64
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil
		}
		cred, groups, err := peercred.Of(uc)
		if err == nil && l.allowed(cred, groups) {
			return c, nil
		}
		who := "unknown"
		if cred != nil {
			who = fmt.Sprintf("uid %d gid %d pid %d", cred.Uid, cred.Gid, cred.Pid)
		}
		if now := time.Now().Unix(); l.lastLog.Swap(now) != now {
			l.log.Warn("refused a client of the API socket", "peer", who, "err", err)
		}
		select {
		case l.refusing <- struct{}{}:
			go func() {
				defer func() { <-l.refusing }()
				refuse(c, who)
			}()
		default:
			c.Close()
		}
	}
}

func (l *peerListener) allowed(c *unix.Ucred, groups []uint32) bool {
	switch {
	case c.Uid == 0, int(c.Uid) == l.uid, int(c.Gid) == l.gid:
		return true
	}
	return slices.Contains(groups, uint32(l.gid))
}

// refuse reads the refused peer's request (so that it is not cut off
// while still writing it), answers in the API's error shape and hangs up,
// all within a second.
func refuse(c net.Conn, who string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 64<<10))); err == nil {
		io.Copy(io.Discard, io.LimitReader(req.Body, 64<<10))
	}
	body, _ := json.Marshal(map[string]any{"error": localapi.Errorf(http.StatusForbidden, "auth.peer",
		"this user may not use the agent ("+who+")", "run the command as root or as a member of the agent's group")})
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

func guardSocket(l net.Listener, log *slog.Logger) net.Listener {
	return &peerListener{Listener: l, uid: os.Geteuid(), gid: os.Getegid(), log: log, refusing: make(chan struct{}, 8)}
}

// hostAllowed says whether a Host header names this box: localhost, an IP
// address the listener answers on (any, when it listens on every
// address), the box's hostname (and .local), or a name in [http] hosts.
// A DNS-rebinding page sends its own name and is refused.
func (a *agent) hostAllowed(hostport string) bool {
	host := localapi.HostOf(hostport)
	if host == "localhost" {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsLoopback() || !a.listenIP.IsValid() || a.listenIP.IsUnspecified() || ip == a.listenIP {
			return true
		}
		return false
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = localapi.HostOf(h)
		if host == h || host == h+".local" {
			return true
		}
	}
	for _, n := range a.config().HTTP.Hosts {
		if host == localapi.HostOf(n) {
			return true
		}
	}
	return false
}
