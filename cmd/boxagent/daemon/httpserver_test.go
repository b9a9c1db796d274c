package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

// TestSlowClientsAreCut runs the agent in-process with short timeouts
// (the defaults are 10 s to 2 min). Idle keep-alive and slow-body
// connections stayed open (20 of 20 after 75 s, issue 17, finding 4);
// now each is closed soon after its timeout, while an event stream lives
// on past the read and write timeouts (a deadline per write instead).
func TestSlowClientsAreCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the agent with short timeouts; skipped with -short (cross tests under qemu-user)")
	}
	root := t.TempDir()
	to := Timeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: time.Second, Idle: 600 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Paths: paths.Paths{Root: root}, Listen: "127.0.0.1:0", Version: "test",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeouts: to})
	}()
	t.Cleanup(func() { cancel(); <-done })

	sock := filepath.Join(root, "run/boxagent/api.sock")
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var st apitype.Status
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := uc.Get("http://boxagent/api/v1/status")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	addr := st.Listeners.HTTP

	// closedAfter sends what, reads everything the server answers and
	// says how long until it hung up.
	closedAfter := func(what string) (time.Duration, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte(what))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		return time.Since(start), string(got)
	}
	const slack = 3 * time.Second
	cases := []struct{ name, send, answer string }{
		{"idle keep-alive", "GET /login.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200 OK"},
		{"slow headers", "GET /login.html HTTP/1.1\r\nHost: 127.0.0.1\r\n", ""},
		{"slow body", "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"pass", ""},
	}
	for _, c := range cases {
		took, got := closedAfter(c.send)
		if took > slack || !strings.Contains(got, c.answer) {
			t.Errorf("%s: closed after %v (want under %v), answered %.60q", c.name, took.Round(time.Millisecond), slack, got)
		}
	}

	// An event stream over the socket outlives both timeouts.
	req, _ := http.NewRequest("GET", "http://boxagent/api/v1/events", nil)
	resp, err := uc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(2 * to.Write)
	r2, _ := http.NewRequest("POST", "http://boxagent/api/v1/config/reload", nil)
	if resp, err := uc.Do(r2); err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload: %v %v", resp, err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended at the server's timeouts")
			}
			if l == "event: config" {
				return
			}
		case <-timeout:
			t.Fatal("no config event on a stream older than the write timeout")
		}
	}
}

// TestConnectionCap: past the cap, a connection waits in the backlog
// until one closes.
func TestConnectionCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitConns(nil, raw, 2)
	defer l.Close()
	var accepted atomic.Int32
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d accepted with a cap of 2", n)
	}
	(<-conns).Close()
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("the third connection was not accepted after one closed (%d)", n)
	}
}

// TestConnectionCapTakesAnIdleSlot: at the cap, a new client is served at
// once when the connections holding it are idle keep-alive ones (one
// client with many idle connections must not lock the others out until
// the idle timeout, an hour here).
func TestConnectionCapTakesAnIdleSlot(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		Timeouts{ReadHeader: time.Hour, Read: time.Hour, Write: time.Hour, Idle: time.Hour}, slog.Default())
	go srv.Serve(limitConns(srv, raw, 2))
	defer srv.Close()
	url := "http://" + raw.Addr().String() + "/"
	get := func(c *http.Client) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	// The hog: two requests at once leave two idle keep-alive connections.
	hog := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); get(hog) }()
	}
	wg.Wait()
	// The guard is no timing: without the fix the answer takes the hour.
	other := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	if err := get(other); err != nil {
		t.Fatalf("a second client at the cap: %v", err)
	}
	// The hog's next request still works (on a new connection if its idle
	// one was the one closed).
	if err := get(hog); err != nil {
		t.Fatalf("the first client after its idle connection made room: %v", err)
	}
}

// TestConnectionCapCloseWithAWaiter: a connection waiting for a slot does
// not hold up the server's Close (which waits for Serve to leave Accept
// before closing the connections that would free a slot: the agent's stop
// hung until systemd killed it with the cap full of event streams).
func TestConnectionCapCloseWithAWaiter(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	busy := make(chan struct{}, 2)
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busy <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), DefaultTimeouts, slog.Default())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(limitConns(srv, raw, 2)) }()
	for range 2 {
		go http.Get("http://" + raw.Addr().String() + "/")
		<-busy
	}
	waiter, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case <-closed:
	case <-time.After(time.Minute): // a guard: Close returns at once
		t.Fatal("http.Server.Close did not return with a connection waiting for a slot")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestConnectionCapBusyClients: at the cap, with clients that keep their
// connections in use (a pause between requests, never closed), a newcomer
// that found none idle is served as soon as one goes idle between two
// requests. The bench's 50 clients on the 32-connection socket saw a p99
// of 60 s before (the idle timeout).
func TestConnectionCapBusyClients(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{}) // the busy clients' first requests wait here
	busy := make(chan struct{}, 2)
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			select {
			case busy <- struct{}{}:
			default:
			}
			<-hold
		}
		w.Write([]byte("ok"))
	}), Timeouts{ReadHeader: time.Hour, Read: time.Hour, Write: time.Hour, Idle: time.Hour}, slog.Default())
	go srv.Serve(limitConns(srv, raw, 2))
	defer srv.Close()
	get := func(c *http.Client, path string) error {
		resp, err := c.Get("http://" + raw.Addr().String() + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}}
			for {
				if err := get(c, "/busy"); err != nil {
					t.Errorf("a busy client: %v", err)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond): // idle between requests
				}
			}
		}()
	}
	defer wg.Wait()
	defer close(stop)
	<-busy
	<-busy
	// Both slots are in use: the newcomer finds none idle and waits.
	done := make(chan error, 1)
	other := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second} // a guard
	go func() { done <- get(other, "/") }()
	time.Sleep(200 * time.Millisecond) // lets it reach the wait (ordering, not timing)
	close(hold)
	if err := <-done; err != nil {
		t.Fatalf("a newcomer among busy clients at the cap: %v", err)
	}
}
