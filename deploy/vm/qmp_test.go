package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/inotify"
	"golang.org/x/sys/unix"
)

// fakeQEMU speaks enough QMP for the stick commands, with QEMU's rule that
// a drive cannot be deleted while its device exists.
type fakeQEMU struct {
	mu      sync.Mutex
	log     []string
	nodes   map[string]bool
	devices map[string]string // id -> drive
}

func (f *fakeQEMU) serve(conn net.Conn) {
	defer conn.Close()
	enc := json.NewEncoder(conn)
	enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{}}})
	s := bufio.NewScanner(conn)
	for s.Scan() {
		var req struct {
			Execute   string         `json:"execute"`
			Arguments map[string]any `json:"arguments"`
			ID        any            `json:"id"`
		}
		if err := json.Unmarshal(s.Bytes(), &req); err != nil {
			return
		}
		f.mu.Lock()
		f.log = append(f.log, req.Execute)
		var qerr string
		var event map[string]any
		switch req.Execute {
		case "qmp_capabilities":
		case "blockdev-add":
			f.nodes[req.Arguments["node-name"].(string)] = true
		case "device_add":
			drive := req.Arguments["drive"].(string)
			if !f.nodes[drive] {
				qerr = "drive not found"
			} else {
				f.devices[req.Arguments["id"].(string)] = drive
			}
		case "device_del":
			id := req.Arguments["id"].(string)
			if _, ok := f.devices[id]; !ok {
				qerr = "device not found"
			} else {
				delete(f.devices, id)
				event = map[string]any{"event": "DEVICE_DELETED", "data": map[string]any{"device": id}}
			}
		case "blockdev-del":
			n := req.Arguments["node-name"].(string)
			for _, d := range f.devices {
				if d == n {
					qerr = "node is in use"
				}
			}
			delete(f.nodes, n)
		default:
			qerr = "unknown command"
		}
		f.mu.Unlock()
		if qerr != "" {
			enc.Encode(map[string]any{"error": map[string]any{"class": "GenericError", "desc": qerr}, "id": req.ID})
			continue
		}
		enc.Encode(map[string]any{"return": map[string]any{}, "id": req.ID})
		if event != nil {
			enc.Encode(event) // like QEMU: after the reply, once the guest let go
		}
	}
}

func startFakeQEMU(t *testing.T) (*QMP, *fakeQEMU) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	qf := os.NewFile(uintptr(fds[1]), "fake")
	qc, err := net.FileConn(qf)
	qf.Close()
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeQEMU{nodes: map[string]bool{}, devices: map[string]string{}}
	go fake.serve(qc)
	hf := os.NewFile(uintptr(fds[0]), "host")
	defer hf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := dialQMP(ctx, hf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, fake
}

func TestQMPStick(t *testing.T) {
	q, fake := startFakeQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.PlugStick(ctx, "s1", "/tmp/none.img"); err != nil {
		t.Fatal(err)
	}
	if err := q.UnplugStick(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	want := "qmp_capabilities blockdev-add device_add device_del blockdev-del"
	if got := strings.Join(fake.log, " "); got != want {
		t.Errorf("commands %q, want %q", got, want)
	}
	var qe *QMPError
	if _, err := q.Execute(ctx, "no-such", nil); !errors.As(err, &qe) || qe.Desc != "unknown command" {
		t.Errorf("Execute(no-such) = %v, want a QMPError", err)
	}
	if err := q.UnplugStick(ctx, "s1"); err == nil {
		t.Error("unplugging an absent stick succeeded")
	}
}

func TestQMPClosed(t *testing.T) {
	q, _ := startFakeQEMU(t)
	q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err == nil {
		t.Error("Execute on a closed connection succeeded")
	}
}

// TestRequests: a request file renamed into the requests folder is acted
// upon and answered.
func TestRequests(t *testing.T) {
	q, fake := startFakeQEMU(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, requestsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvGuest, "1")
	t.Setenv(EnvResults, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serveRequests(ctx, dir, q, map[string]string{"s1": "/tmp/s1.img"}, log) }()
	// A request sent before serveRequests watches is answered too.
	for _, tc := range []struct {
		req     Request
		wantErr string
	}{
		{Request{Op: OpPlug, Stick: "nope"}, "not in Options.Sticks"},
		{Request{Op: OpPlug, Stick: "s1"}, ""},
		{Request{Op: OpUnplug, Stick: "s1"}, ""},
		{Request{Op: "dance"}, "unknown operation"},
	} {
		id, err := SendRequest(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if err := inotify.WaitExist(ctx, filepath.Join(dir, requestsDir, id+".reply")); err != nil {
			t.Fatalf("%+v: %v", tc.req, err)
		}
		r, err := ReadReply(id)
		if err != nil {
			t.Fatal(err)
		}
		if (tc.wantErr == "") != (r.Error == "") || !strings.Contains(r.Error, tc.wantErr) {
			t.Errorf("%+v: reply %q, want %q", tc.req, r.Error, tc.wantErr)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("serveRequests = %v, want context.Canceled", err)
	}
	if len(fake.devices) != 0 || len(fake.nodes) != 0 {
		t.Errorf("left behind: %v %v", fake.devices, fake.nodes)
	}
}
