package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// server is a process that answers GET /api/v1/status on a unix socket and
// says READY=1 on NOTIFY_SOCKET: the agent, or the floor beside it.
type server struct {
	name   string
	argv   []string
	env    []string
	socket string
	notify *net.UnixConn // the bench's end of NOTIFY_SOCKET
	npath  string
	cmd    *exec.Cmd
	http   *http.Client
	// started is when the process was last started.
	started time.Time
}

func newServer(name, dir string, argv, env []string, socket string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	npath := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: npath, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	s := &server{name: name, argv: argv, env: env, socket: socket, notify: nc, npath: npath}
	s.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.socket)
		},
		MaxIdleConnsPerHost: 64,
	}}
	return s, nil
}

// start starts the process and returns the time from exec to READY=1.
func (s *server) start() (time.Duration, error) {
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.Env = append(append(os.Environ(), s.env...), "NOTIFY_SOCKET="+s.npath)
	s.cmd.Stderr = os.Stderr
	t := time.Now()
	s.started = t
	if err := s.cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	s.notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := s.notify.Read(buf)
		if err != nil {
			s.stop()
			return 0, fmt.Errorf("%s: no READY=1: %w", s.name, err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return time.Since(t), nil
		}
	}
}

// stop stops the process; nil (no -before binary) or stopped, it does
// nothing.
func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	s.cmd = nil
	s.http.CloseIdleConnections()
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// status makes one GET /api/v1/status and reads the whole answer.
func (s *server) status() ([]byte, error) {
	req, _ := http.NewRequest("GET", "http://local/api/v1/status", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: status: %w", s.name, err)
	}
	return body, nil
}

// load is one round of calls over n concurrent clients: each call's time,
// and the server's CPU time per call over the round.
func (s *server) load(n, calls int) (lat []time.Duration, cpuPerCall time.Duration, err error) {
	before, err := cpuTime(s.pid())
	if err != nil {
		return nil, 0, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, calls/n)
			for i := 0; i < calls/n; i++ {
				t := time.Now()
				if _, e := s.status(); e != nil {
					mu.Lock()
					err = e
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err != nil {
		return nil, 0, err
	}
	after, err := cpuTime(s.pid())
	if err != nil {
		return nil, 0, err
	}
	return lat, time.Duration((after - before) / int64(len(lat))), nil
}

// Floor: the least a Go program that does this job can be, the bench's
// own binary run again: net/http on a unix socket answering GET
// /api/v1/status with the agent's own answer (the same bytes), READY=1 on
// NOTIFY_SOCKET, nothing else.
const (
	envFloorSocket = "BOXAGENT_BENCH_FLOOR_SOCKET"
	envFloorBody   = "BOXAGENT_BENCH_FLOOR_BODY"
)

func serveFloor(socket, bodyFile string) error {
	body, _ := os.ReadFile(bodyFile) // none yet: the start-up rounds
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	if ns := os.Getenv("NOTIFY_SOCKET"); ns != "" {
		c, err := net.Dial("unixgram", ns)
		if err != nil {
			return err
		}
		c.Write([]byte("READY=1"))
		c.Close()
	}
	// One collection, after READY=1 (start-up is not slowed): the agent
	// has collected by then (its start-up heap passes the first 4 MB
	// goal), and the runtime forces a collection every 2 minutes only on
	// a process that has collected before. Without it the floor would be
	// spared the periodic collection and its scavenging that the agent,
	// like any Go program that ever collected, pays while idle.
	runtime.GC()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		notifyInterrupt(sig)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
