package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/boxagent/boxagent/internal/inotify"
	"golang.org/x/sys/unix"
)

// The guest asks the host for things it cannot do itself (plug a USB stick)
// by renaming a JSON file into Dir/requests; the host sees the rename with
// inotify, acts, and writes the reply next to it. The guest learns of the
// effect from the kernel (a uevent), and reads the reply only to explain a
// failure: 9p gives it no notification of host-side writes.
const requestsDir = "requests"

// Request operations.
const (
	OpPlug   = "plug"   // hot-plug stick Request.Stick
	OpUnplug = "unplug" // unplug it (device_del, DEVICE_DELETED, blockdev-del)
)

// Request is what a guest asks of the host.
type Request struct {
	Op    string `json:"op"`
	Stick string `json:"stick,omitempty"`
}

// Reply is the host's answer; Error is empty on success.
type Reply struct {
	Error string `json:"error,omitempty"`
}

var reqSeq atomic.Uint64

// SendRequest asks the host (from the guest) and returns the request's id.
func SendRequest(r Request) (string, error) {
	dir := ResultsDir()
	if dir == "" {
		return "", errors.New("cannot send a request to the host: not inside the virtual board")
	}
	id := fmt.Sprintf("%d-%d", os.Getpid(), reqSeq.Add(1))
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("cannot encode the request: %w", err)
	}
	tmp := filepath.Join(dir, requestsDir, id+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", fmt.Errorf("cannot write request %s: %w", id, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, requestsDir, id+".req")); err != nil {
		return "", fmt.Errorf("cannot send request %s: %w", id, err)
	}
	return id, nil
}

// ReadReply returns the host's reply to request id, or an error wrapping
// os.ErrNotExist if the host has not answered yet.
func ReadReply(id string) (*Reply, error) {
	b, err := os.ReadFile(filepath.Join(ResultsDir(), requestsDir, id+".reply"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the reply to request %s: %w", id, err)
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cannot decode the reply to request %s: %w", id, err)
	}
	return &r, nil
}

// serveRequests answers the guest's requests until ctx is done.
func serveRequests(ctx context.Context, dir string, q *QMP, sticks map[string]string, log *slog.Logger) error {
	w, err := inotify.New()
	if err != nil {
		return err
	}
	defer w.Close()
	rdir := filepath.Join(dir, requestsDir)
	if _, err := w.Add(rdir, unix.IN_MOVED_TO); err != nil {
		return err
	}
	seen := map[string]bool{}
	answer := func(name string) {
		id := strings.TrimSuffix(name, ".req")
		if seen[id] {
			return
		}
		seen[id] = true
		rep := Reply{}
		if err := handleRequest(ctx, filepath.Join(rdir, name), q, sticks, log); err != nil {
			log.Warn("request failed", "id", id, "err", err)
			rep.Error = err.Error()
		}
		b, _ := json.Marshal(rep)
		tmp := filepath.Join(rdir, id+".reply.tmp")
		if err := os.WriteFile(tmp, b, 0o644); err == nil {
			os.Rename(tmp, filepath.Join(rdir, id+".reply"))
		}
	}
	// Requests sent before the watch was in place.
	old, _ := filepath.Glob(filepath.Join(rdir, "*.req"))
	for _, p := range old {
		if _, err := os.Stat(strings.TrimSuffix(p, ".req") + ".reply"); err != nil {
			answer(filepath.Base(p))
		}
	}
	for {
		evs, err := w.Read(ctx)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if strings.HasSuffix(e.Name, ".req") {
				answer(e.Name)
			}
		}
	}
}

func handleRequest(ctx context.Context, path string, q *QMP, sticks map[string]string, log *slog.Logger) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the request: %w", err)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("cannot decode the request: %w", err)
	}
	log.Debug("request", "op", r.Op, "stick", r.Stick)
	switch r.Op {
	case OpPlug:
		img, ok := sticks[r.Stick]
		if !ok {
			return fmt.Errorf("cannot plug stick %q: not in Options.Sticks", r.Stick)
		}
		return q.PlugStick(ctx, r.Stick, img)
	case OpUnplug:
		return q.UnplugStick(ctx, r.Stick)
	}
	return fmt.Errorf("cannot handle request %q: unknown operation", r.Op)
}
