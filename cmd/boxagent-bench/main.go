// Command boxagent-bench measures boxagent and writes docs/BENCHMARKS.md in
// full from one run: binary sizes and what makes them up, start-up,
// memory, idle wakeups, API latency and CPU per call, CLI round trips and
// the control page. Every timed figure stands beside a floor or a peer
// measured in the same run, interleaved round by round, as min / median /
// max and the ratio; the goals of issue "Lean and event-driven" are checked
// at the end, a line for each miss. A failed sample fails the run (nothing
// is written): it is never counted as a zero. Figures are measured, never
// asserted in tests.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
)

type options struct {
	bin, crossDir string
	sizeGoal      int64
	rounds        int
	idle          time.Duration
	idleSettle    time.Duration
	calls         int
	// only runs one part and prints it, writing no report: "status"
	// (the agent and the floor under GET /api/v1/status, interleaved).
	only string
	// before is another boxagent binary (an older commit) measured as one
	// more contestant in the same rounds: start-up, idle, status calls.
	before string
}

func main() {
	if s := os.Getenv(envFloorSocket); s != "" {
		if err := serveFloor(s, os.Getenv(envFloorBody)); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := ownNetns(); err != nil {
		log.Fatalf("boxagent-bench: %v", err)
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin/boxagent", "the boxagent binary to measure")
	flag.StringVar(&o.before, "before", "", "another boxagent binary to measure beside -bin in the same rounds (start-up, idle, status calls)")
	flag.StringVar(&o.crossDir, "cross-dir", "bin", "folder with boxagent-linux-<arch> binaries")
	out := flag.String("out", "docs/BENCHMARKS.md", "where to write the report")
	extra := flag.String("append", "", "a Markdown file whose contents are appended (e.g. the lab's figures)")
	flag.Int64Var(&o.sizeGoal, "size-goal", 10_000_000, "the goal for the linux/arm binary, in bytes")
	flag.IntVar(&o.rounds, "rounds", 10, "rounds of each interleaved figure")
	flag.DurationVar(&o.idle, "idle", 4*time.Minute, "how long the idle agent and floor are watched (in 4 windows; the runtime forces a collection every 2 minutes)")
	flag.DurationVar(&o.idleSettle, "idle-settle", defaultIdleSettle, "how long after the latest start the idle watch begins")
	flag.IntVar(&o.calls, "calls", 20000, "status calls per client count, over all rounds")
	flag.StringVar(&o.only, "only", "", "run one part only and print it, writing nothing: status")
	flag.Parse()
	r := &report{before: o.before != ""}
	if o.only != "" {
		if err := runOnly(r, o); err != nil {
			log.Fatalf("boxagent-bench: %v", err)
		}
		fmt.Print(r.String())
		return
	}
	if err := run(r, o); err != nil {
		log.Fatalf("boxagent-bench: %v (nothing written)", err)
	}
	if *extra != "" {
		data, err := os.ReadFile(*extra)
		if err != nil {
			log.Fatal(err)
		}
		r.add("%s", string(data))
	}
	if err := os.WriteFile(*out, []byte(r.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.String())
	for _, g := range r.goals {
		if !g.met {
			fmt.Fprintf(os.Stderr, "goal missed: %s: want %s, measured %s\n", g.what, g.want, g.got)
		}
	}
}

type report struct {
	b     strings.Builder
	goals []goal
	// before: the tables have the -before binary's columns.
	before bool
}

func (r *report) add(format string, a ...any) { fmt.Fprintf(&r.b, format+"\n", a...) }
func (r *report) String() string              { return r.b.String() }

// row adds a table row whose last two cells are the floor's and the ratio
// to it. With a -before binary, its cell goes ahead of the floor's and
// the after ÷ before ratio ahead of the floor's ratio; without one, the
// row is as it always was.
func (r *report) row(cells []string, beforeCell, beforeRatio string) {
	if n := len(cells); r.before && n >= 2 {
		cells = slices.Concat(cells[:n-2], []string{beforeCell, cells[n-2], beforeRatio, cells[n-1]})
	}
	r.add("| %s |", strings.Join(cells, " | "))
}
func (r *report) check(what, want, got string, met bool) {
	r.goals = append(r.goals, goal{what, want, got, met})
}

func run(r *report, o options) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	header(r, o)
	if err := sizes(r, o); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "boxagent-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	agent, floor, body, err := contestants(bin, self, dir, root)
	if err != nil {
		return err
	}
	defer agent.stop()
	defer floor.stop()
	before, err := beforeServer(o, dir)
	if err != nil {
		return err
	}
	defer before.stop()

	// The agent's first start makes its state (journal, keys): not what a
	// box does at every boot. Measured from the second start on.
	if _, err := agent.start(); err != nil {
		return err
	}
	agent.stop()
	if err := startup(r, o, agent, floor, before); err != nil {
		return err
	}
	if err := startBoth(agent, floor, body, before); err != nil {
		return err
	}
	fleetOn, bt, err := fleetAgent(bin, dir)
	defer bt.close()
	if err != nil {
		return err
	}
	err = idle(r, o, agent, fleetOn, floor, before)
	fleetOn.stop()
	if err != nil {
		return err
	}
	if err := latency(r, o, agent, floor, before); err != nil {
		return err
	}
	if err := cli(r, bin, agent.socket); err != nil {
		return err
	}
	controlPage(r, client.New(agent.socket, "cli"), root) // page.go
	goals(r)
	return nil
}

// contestants makes the agent (its root in root) and the floor, which
// answers with the agent's status as written to body.
func contestants(bin, self, dir, root string) (agent, floor *server, body string, err error) {
	agent, err = newServer("boxagent", filepath.Join(dir, "agent"),
		[]string{bin, "serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "warn"}, nil,
		filepath.Join(root, "run/boxagent/api.sock"))
	if err != nil {
		return nil, nil, "", err
	}
	body = filepath.Join(dir, "status.json")
	floor, err = newServer("floor", filepath.Join(dir, "floor"), []string{self},
		[]string{envFloorSocket + "=" + filepath.Join(dir, "floor.sock"), envFloorBody + "=" + body},
		filepath.Join(dir, "floor.sock"))
	return agent, floor, body, err
}

// beforeServer is the -before binary as a contestant (nil without one),
// its state made by a first start, as the agent's is: its own root, the
// agent's flags.
func beforeServer(o options, dir string) (*server, error) {
	if o.before == "" {
		return nil, nil
	}
	bin, err := filepath.Abs(o.before)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "before-root")
	s, err := newServer("boxagent before", filepath.Join(dir, "before"),
		[]string{bin, "serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "warn"}, nil,
		filepath.Join(root, "run/boxagent/api.sock"))
	if err != nil {
		return nil, err
	}
	if _, err := s.start(); err != nil {
		return nil, err
	}
	s.stop()
	return s, nil
}

// withBefore is the contestants with the -before binary last, if any.
func withBefore(before *server, ss ...*server) []*server {
	if before != nil {
		ss = append(ss, before)
	}
	return ss
}

// startBoth starts the agent, keeps its status answer for the floor and
// starts the floor, and the -before binary if any.
func startBoth(agent, floor *server, body string, before *server) error {
	if _, err := agent.start(); err != nil {
		return err
	}
	st, err := agent.status()
	if err != nil {
		return err
	}
	if err := os.WriteFile(body, st, 0o644); err != nil {
		return err
	}
	for _, s := range withBefore(before, floor) {
		if _, err := s.start(); err != nil {
			return err
		}
	}
	return nil
}

// runOnly runs the part o.only names (a developer's quick look, several
// times over while working on it); the report is the part's section and
// its goals.
func runOnly(r *report, o options) error {
	if o.only != "status" {
		return fmt.Errorf("-only %q: the parts are: status", o.only)
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "boxagent-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	agent, floor, body, err := contestants(bin, self, dir, filepath.Join(dir, "root"))
	if err != nil {
		return err
	}
	defer agent.stop()
	defer floor.stop()
	before, err := beforeServer(o, dir)
	if err != nil {
		return err
	}
	defer before.stop()
	// The first start makes the agent's state; measured from the second.
	if _, err := agent.start(); err != nil {
		return err
	}
	agent.stop()
	if err := startBoth(agent, floor, body, before); err != nil {
		return err
	}
	header(r, o)
	if err := latency(r, o, agent, floor, before); err != nil {
		return err
	}
	goals(r)
	return nil
}

func header(r *report, o options) {
	host, _ := os.Hostname()
	commit := "unknown commit"
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		commit = "commit " + strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			commit += " with uncommitted changes"
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	r.add("# Benchmarks")
	r.add("")
	r.add("Written by `make bench` (cmd/boxagent-bench) on %s from %s: %s, %d CPUs, %s, %s, load %s at the start.",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), commit, host, runtime.NumCPU(), cpuModel(), runtime.Version(),
		strings.Join(strings.Fields(string(load))[:3], " "))
	r.add("")
	r.add("%s", netnsNote())
	r.add("")
	r.add("Every figure below was measured in that one run. Timed figures stand beside a floor or a peer, run interleaved round by round (%d rounds unless said), as min / median / max; the ratio is of the medians. The **floor** is the least a Go program doing this job can be: net/http on a unix socket answering `GET /api/v1/status` with the agent's own answer, nothing else (this binary run again).", o.rounds)
	r.add("")
	if o.before != "" {
		r.add("**boxagent before** is `%s` (%s), another build measured as one more contestant in the same interleaved rounds as boxagent and the floor; **after ÷ before** is the ratio of boxagent's median to its.", o.before, versionOf(o.before))
		r.add("")
	}
}

// versionOf is what `BIN version` says, or why not.
func versionOf(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return fmt.Sprintf("version unknown: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func notifyInterrupt(c chan os.Signal) { signal.Notify(c, os.Interrupt) }
