package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// statusField reads a number from /proc/PID/status ("VmRSS", in kB).
func statusField(path, field string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}

// rssSamples reads VmRSS n times, every interval.
func rssSamples(pid, n int, interval time.Duration) ([]float64, error) {
	var xs []float64
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(interval)
		}
		kb, err := statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
		if err != nil {
			return nil, err
		}
		xs = append(xs, float64(kb))
	}
	return xs, nil
}

// wakeups is the process's voluntary context switches summed over its
// threads: each is a thread going to sleep (a futex, epoll, nanosleep),
// so each is followed by one wakeup (a timer, a poll, a signal). The
// involuntary ones are left out: they are a running thread preempted, the
// machine's load (2 cores shared with a QEMU board), not a wakeup. A
// thread that ended meanwhile takes its count with it: Go's rarely end.
func wakeups(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("process %d: no threads to read", pid)
	}
	var n int64
	for _, t := range tasks {
		v, err := statusField(t, "voluntary_ctxt_switches")
		if err != nil {
			continue // the thread ended meanwhile
		}
		n += v
	}
	return n, nil
}

// cpuTime is the process's time on a CPU so far, in nanoseconds, summed
// over its threads from schedstat (the clock-tick counters of stat are
// 10 ms coarse: too coarse for a call of 50 µs).
func cpuTime(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("process %d: no schedstat", pid)
	}
	var n int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		n += v
	}
	return n, nil
}
