package pdeath

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary play the parent that dies.
func TestMain(m *testing.M) {
	if os.Getenv("PDEATH_HELPER") == "1" {
		cmd := exec.Command("sleep", "1000")
		if _, err := Start(cmd); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		os.Exit(0) // the parent dies; sleep must die with it
	}
	os.Exit(m.Run())
}

func TestChildDiesWithParent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes (not with -short)")
	}
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "PDEATH_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	helper.Wait()
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone and reaped
	}
	defer unix.Close(fd)
	// A pidfd becomes readable when its process exits.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int((10 * time.Second).Milliseconds()))
	if err != nil || n != 1 {
		unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("sleep %d outlived its parent (poll %d, %v)", pid, n, err)
	}
}
