package network

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/internal/names"
	"github.com/boxagent/boxagent/internal/nofollow"
	"github.com/boxagent/boxagent/internal/peercred"
)

// The PPPoE helper is the root side of unitRunner: PID 1 runs `boxagent
// pppoe-helper INSTANCE` as boxagent-pppoe@INSTANCE.service. It takes from
// the agent, whose user is less trusted than root, a PPPoESession and
// nothing else: no pppd path, no plugin folder, no extra option (pppd
// options can run programs as root), and builds pppd's command line
// itself.

const (
	// helperPasswordFD is where pppd reads the password from in the unit.
	helperPasswordFD = 3
	// maxSecret is pppd's MAXSECRETLEN (and MAXNAMELEN for the user).
	maxSecret = 256
	// maxSessionLine bounds the settings the helper reads.
	maxSessionLine = 4096
)

// PPPoESession is what the agent hands the helper for one session.
type PPPoESession struct {
	Link     string `json:"link"`
	User     string `json:"user"`
	Password string `json:"password"`
	Service  string `json:"service,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	Unit     int    `json:"unit"`
	Holdoff  int    `json:"holdoff,omitempty"` // seconds
	IPv6     bool   `json:"ipv6,omitempty"`    // +ipv6
}

// session is c's session with password.
func (c PPPoEConfig) session(password string) PPPoESession {
	return PPPoESession{Link: c.Link, User: c.User, Password: password, Service: c.Service, MTU: c.MTU,
		Unit: c.Unit, Holdoff: int(c.Holdoff / time.Second), IPv6: c.IPv6}
}

// Check bounds every field: the helper runs pppd as root with them.
func (s PPPoESession) Check() error {
	text := func(name, v string, max int) error {
		if len(v) > max || strings.ContainsAny(v, "\x00\n\r") {
			return fmt.Errorf("the session's %s is longer than %d bytes or holds NUL or a line break", name, max)
		}
		return nil
	}
	var errs []error
	if msg := names.LinkNameProblem(s.Link); msg != "" {
		errs = append(errs, fmt.Errorf("the session's link: %s", msg))
	}
	if s.User == "" {
		errs = append(errs, errors.New("the session has no user"))
	}
	errs = append(errs, text("user", s.User, maxSecret), text("password", s.Password, maxSecret), text("service", s.Service, maxSecret))
	if s.MTU != 0 && (s.MTU < 128 || s.MTU > 1500) {
		errs = append(errs, fmt.Errorf("the session's mtu %d is out of range 128..1500", s.MTU))
	}
	if s.Unit < 0 || s.Unit > 4095 {
		errs = append(errs, fmt.Errorf("the session's unit %d is out of range 0..4095", s.Unit))
	}
	if s.Holdoff < 0 || s.Holdoff > 3600 {
		errs = append(errs, fmt.Errorf("the session's holdoff %d s is out of range 0..3600", s.Holdoff))
	}
	return errors.Join(errs...)
}

// config is the session as pppd's settings: Debian's pppd and its own
// plugins, whatever the agent would have liked.
func (s PPPoESession) config() PPPoEConfig {
	return PPPoEConfig{Link: s.Link, User: s.User, Service: s.Service, MTU: s.MTU, Unit: s.Unit,
		Holdoff: time.Duration(s.Holdoff) * time.Second, PPPD: DefaultPPPD, IPv6: s.IPv6}
}

// serveHelper waits on ln for the session's helper (a root process: any
// other caller is turned away), sends it sess and copies what comes back,
// pppd's output, to out until pppd ends.
func serveHelper(ln *net.UnixListener, sess PPPoESession, out io.Writer) error {
	line, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return err
		}
		if cred, _, err := peercred.Of(conn); err != nil || cred.Uid != 0 {
			conn.Close()
			continue
		}
		if _, err := conn.Write(append(line, '\n')); err != nil {
			conn.Close()
			return fmt.Errorf("cannot send the session to its helper: %w", err)
		}
		conn.CloseWrite()
		_, err = io.Copy(out, conn)
		conn.Close()
		return err
	}
}

// RunPPPoEHelper is the helper: it connects to the agent's socket for
// instance in dir (a socket of agentUID's, reached without following any
// link), reads the session, checks it, and execs pppd with the password on
// helperPasswordFD and its output on the socket. It returns only on error.
func RunPPPoEHelper(instance, dir string, agentUID int) error {
	c, sess, err := readSession(instance, dir, agentUID)
	if err != nil {
		return err
	}
	return execPPPD(c, sess)
}

// readSession connects to the agent's socket and reads a checked session.
func readSession(instance, dir string, agentUID int) (*net.UnixConn, PPPoESession, error) {
	var sess PPPoESession
	if instance == "" || strings.ContainsAny(instance, "/\x00") || instance == "." || instance == ".." {
		return nil, sess, fmt.Errorf("%q is not a session instance", instance)
	}
	path := sessionSocket(dir, instance)
	f, err := nofollow.Open(path, 0)
	if err != nil {
		return nil, sess, fmt.Errorf("the agent's session socket: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, sess, fmt.Errorf("cannot check %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || int(st.Uid) != agentUID {
		return nil, sess, fmt.Errorf("%s is not a socket of the agent's user: refusing it", path)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: fmt.Sprintf("/proc/self/fd/%d", fd), Net: "unix"})
	if err != nil {
		return nil, sess, fmt.Errorf("cannot connect to the agent: %w", err)
	}
	r := bufio.NewReaderSize(io.LimitReader(c, maxSessionLine), maxSessionLine)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, sess, fmt.Errorf("cannot read the session from the agent: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sess); err != nil {
		return nil, sess, fmt.Errorf("the agent's session is not one: %w", err)
	}
	if err := sess.Check(); err != nil {
		return nil, sess, err
	}
	return c, sess, nil
}

// execPPPD replaces the helper with pppd: stdout and stderr on conn, the
// password in a pipe on helperPasswordFD (written whole first: it fits a
// pipe's buffer).
func execPPPD(conn *net.UnixConn, sess PPPoESession) error {
	f, err := conn.File()
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, sess.Password); err != nil {
		return err
	}
	pw.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	for _, d := range [][2]int{{int(null.Fd()), 0}, {int(f.Fd()), 1}, {int(f.Fd()), 2}, {int(pr.Fd()), helperPasswordFD}} {
		if err := unix.Dup3(d[0], d[1], 0); err != nil {
			return fmt.Errorf("cannot arrange pppd's descriptors: %w", err)
		}
	}
	args := append([]string{"pppd"}, sess.config().args(helperPasswordFD)...)
	return syscall.Exec(DefaultPPPD, args, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"})
}
