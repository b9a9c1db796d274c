//go:build unix

package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The helper process: TestKill9 runs the test binary again with these set.
const (
	helperModeEnv = "BOXAGENT_JOURNAL_HELPER"
	helperPathEnv = "BOXAGENT_JOURNAL_PATH"
)

// TestHelperProcess is not a test: it is the agent that TestKill9 kills. It
// opens the journal, begins an operation with progress, prints "ready" and
// then either blocks ("block") or keeps writing progress ("busy"), so the
// kill lands between or in the middle of commits.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperModeEnv)
	if mode == "" {
		t.Skip("helper process of TestKill9")
	}
	s, err := Open(os.Getenv(helperPathEnv), Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	op, err := s.Begin(Operation{
		Kind: "fw.stage", Origin: OriginWeb, Summary: "stage update.zip",
		Request: json.RawMessage(`{"stick":"/dev/sda1"}`), Snapshot: testSnapshot,
	})
	if err == nil {
		err = s.AddProgress(op.ID, Progress{Message: "copying", Done: 1, Total: 1000})
	}
	if err != nil {
		fmt.Println("begin:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	if mode == "busy" {
		for i := int64(2); ; i++ {
			if err := s.AddProgress(op.ID, Progress{Message: "copying", Done: i, Total: 1000}); err != nil {
				fmt.Println("progress:", err)
				os.Exit(2)
			}
		}
	}
	time.Sleep(time.Hour)
	os.Exit(2)
}

func TestKill9(t *testing.T) {
	if os.Getenv(helperModeEnv) != "" {
		t.Skip("inside the helper process")
	}
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped with -short (cross tests under qemu-user)")
	}
	tests := []struct {
		mode      string
		killAfter time.Duration
	}{
		{mode: "block"},
		{mode: "busy", killAfter: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			path := dbPath(t)

			// An operation finished before the crash.
			s := open(t, path, Options{})
			before := begin(t, s, "bt.pair", OriginCLI)
			if err := s.AddProgress(before.ID, Progress{Message: "pairing"}); err != nil {
				t.Fatal(err)
			}
			before, err := s.Finish(before.ID, json.RawMessage(`{"paired":true}`), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			s.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperModeEnv+"="+tt.mode, helperPathEnv+"="+path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })

			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			timeout := time.After(30 * time.Second)
		wait:
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatalf("helper ended before ready; stderr:\n%s", stderr.String())
					}
					if line == "ready" {
						break wait
					}
					t.Logf("helper: %s", line)
				case <-timeout:
					t.Fatal("helper not ready after 30s")
				}
			}
			time.Sleep(tt.killAfter)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines {
				}
			}()
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("helper Wait = %v, want killed", err)
			}
			if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper ended with %v, not by SIGKILL; stderr:\n%s", err, stderr.String())
			}

			s = open(t, path, Options{})
			if n := s.Recovered(); n != 1 {
				t.Errorf("Recovered = %d, want 1", n)
			}
			got, err := s.Get(before.ID + 1)
			if err != nil {
				t.Fatalf("operation begun by the killed agent: %v", err)
			}
			if got.Kind != "fw.stage" || got.Origin != OriginWeb || got.Summary != "stage update.zip" || string(got.Request) != `{"stick":"/dev/sda1"}` {
				t.Errorf("operation lost its request: %+v", got)
			}
			if mustJSON(t, got.Snapshot) != mustJSON(t, testSnapshot) {
				t.Errorf("snapshot = %s, want %s", mustJSON(t, got.Snapshot), mustJSON(t, testSnapshot))
			}
			if got.State != StateInterrupted || got.Ended == nil || got.Error == nil || got.Error.Code != "journal.interrupted" {
				t.Errorf("operation not marked interrupted: state %q, ended %v, error %+v", got.State, got.Ended, got.Error)
			}
			if len(got.Progress) == 0 || got.Progress[0].Message != "copying" || got.Progress[0].Done != 1 {
				t.Fatalf("progress lost: %+v", got.Progress)
			}
			// Entry 1, then a run without holes: no commit was torn.
			for i := 1; i < len(got.Progress); i++ {
				want := got.Progress[i-1].Done + 1
				if i == 1 {
					want = 2 + got.ProgressDropped
				}
				if got.Progress[i].Done != want {
					t.Errorf("progress entry %d is step %d, want %d", i, got.Progress[i].Done, want)
					break
				}
			}
			t.Logf("%s: %d progress entries kept, %d dropped", tt.mode, len(got.Progress), got.ProgressDropped)

			if after, err := s.Get(before.ID); err != nil || mustJSON(t, after) != mustJSON(t, before) {
				t.Errorf("finished operation after the crash = %s, %v\nwant %s", mustJSON(t, after), err, mustJSON(t, before))
			}
			// The journal goes on.
			if next := begin(t, s, "config.reload", OriginCLI); next.ID != got.ID+1 {
				t.Errorf("next id = %d, want %d", next.ID, got.ID+1)
			}
		})
	}
}
