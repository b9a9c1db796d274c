//go:build lab

package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/inotify"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestUserNet: QEMU user networking with host forwards (what make demo
// uses) reaches a server in the guest, and background commands run.
func TestUserNet(t *testing.T) {
	c := RequireLab(t)
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755)
	os.WriteFile(filepath.Join(www, "hello.txt"), []byte("hello from the board\n"), 0o644)
	// GET /cgi-bin/done ends the guest command: no polling on either side.
	os.WriteFile(filepath.Join(www, "cgi-bin", "done"), []byte("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nbye\\n'\nkill $(cat "+filepath.Join(dir, "fg.pid")+")\n"), 0o755)
	web := freePort(t)
	ready := filepath.Join(dir, "ready")
	type result struct {
		res *Result
		err error
	}
	ran := make(chan result, 1)
	// The wait for "ready" ends when the run ends: the run has its own
	// timeout, and may first wait for another board to power off.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		res, err := Run(context.Background(), Options{
			Cache:      c,
			Dir:        dir,
			Timeout:    2 * time.Minute,
			HostFwd:    []string{fmt.Sprintf("tcp:127.0.0.1:%d-:8080", web)},
			Background: [][]string{{"echo", "background ran"}},
			// busybox httpd binds before it daemonizes.
			Command: []string{"sh", "-c", `busybox httpd -p 8080 -h "$1" || exit 1
echo $$ >"$LAB_RESULTS/fg.pid"
trap 'exit 0' TERM
touch "$LAB_RESULTS/ready"
sleep 300 &
wait $!`, "sh", www},
		})
		ran <- result{res, err}
		cancel()
	}()
	if err := inotify.WaitExist(ctx, ready); err != nil {
		r := <-ran
		if r.res != nil {
			t.Fatalf("guest never got ready: %v; run: %v; output:\n%s\nconsole:\n%s", err, r.err, r.res.OutputTail(20), r.res.ConsoleTail(20))
		}
		t.Fatalf("guest never got ready: %v; run: %v", err, r.err)
	}
	for path, want := range map[string]string{"/hello.txt": "hello from the board\n", "/cgi-bin/done": "bye\n"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", web, path))
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("GET %s = %d %q, want %q", path, resp.StatusCode, b, want)
		}
	}
	r := <-ran
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.ExitCode != 0 {
		t.Errorf("guest exit %d; output:\n%s", r.res.ExitCode, r.res.OutputTail(20))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bg-0.log")); err != nil || string(b) != "background ran\n" {
		t.Errorf("bg-0.log = %q, %v", b, err)
	}
}
