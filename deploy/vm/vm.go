// Package vm is boxagent's virtual board: a Debian kernel in QEMU (TCG)
// running the host's own userland and daemons, for the tests this host's
// kernel cannot run (8021q, dummy, bluetooth, vfat, mac80211_hwsim, ppp,
// USB hot-plug).
//
// The guest boots the kernel that deploy/vm/lab-deps.sh unpacked into
// .cache/lab, with the host / read-only over virtio-9p under a RAM overlay.
// A second 9p share, the results folder, is read-write at the same path in
// the guest: knobs, the command and test binaries go in, the serial console,
// the command's output, its exit status and daemon logs come out. A QMP
// connection lets the host hot-plug USB sticks when the guest asks for one.
//
// Run boots one guest and runs one command; RunGoTests runs a package's
// lab-tagged tests in the guest and reports each as a host subtest. Guest
// fixtures (daemons, namespaces, sticks) are in package
// github.com/boxagent/boxagent/deploy/vm/guest.
package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/boxagent/boxagent/deploy/vm/internal/pdeath"
	"golang.org/x/sys/unix"
)

const qemuBinary = "qemu-system-x86_64"

// persistImage is the ext4 disk of Options.Persist in the results folder.
const persistImage = "persist.img"

// Options describe one boot of the virtual board.
type Options struct {
	// Command runs in the guest (argv, not a shell line) with its output in
	// Result.Output. Empty with Interactive: a shell on the console.
	Command []string
	// Background commands start before Command, each in its own session,
	// with output in Dir/bg-N.log.
	Background [][]string
	// Env are knobs for the guest: environment variables do not cross into
	// it, so they are written to a file its init sources.
	Env map[string]string
	// WorkDir is the guest command's working directory (default /).
	WorkDir string
	// Dir is the results folder (host path, shared read-write); it must
	// exist. Default: a new temporary folder.
	Dir string
	// Timeout ends the run: QEMU is killed and Run says so. Default 5
	// minutes; 0 with Interactive means none.
	Timeout time.Duration
	// Sticks are USB stick images the guest may ask to plug, by name.
	// Any stick (or USB) adds an xHCI controller.
	Sticks map[string]string
	USB    bool
	// HostFwd enables QEMU user networking (guest eth0 10.0.2.15) with
	// these forwards, e.g. "tcp:127.0.0.1:8080-:8080".
	HostFwd []string
	// Net enables user networking without forwards.
	Net bool
	// Interactive attaches the serial console to this terminal (Ctrl-C
	// ends QEMU); the console is still logged to Dir/console.log.
	Interactive bool
	// SMP and MemoryMB default to 2 and 2048 (the RAM overlay, tmpfs daemons and test binaries of one package share it).
	SMP      int
	MemoryMB int
	// Systemd boots /lib/systemd/systemd as PID 1 (systemd-board.sh): a
	// small target with journald, dbus and udevd, the command run from a
	// unit. Persist keeps these guest paths between boots with the same
	// Dir: an ext4 image Dir/persist.img (made on first use; a disk, since
	// bbolt cannot mmap a 9p file) is bound over each. BootImage is a disk
	// image (vm.MakeStick) attached as a virtio disk whose first partition
	// is mounted on /boot before systemd starts.
	Systemd   bool
	Persist   []string
	BootImage string
	// ExtraArgs are appended to QEMU's command line.
	ExtraArgs []string
	// Cache defaults to FindCache().
	Cache *Cache
	// Logger gets the harness's progress; default slog.Default().
	Logger *slog.Logger
}

// Result is what a finished run left.
type Result struct {
	Dir      string        // the results folder
	ExitCode int           // the guest command's exit status; -1 if it reported none
	Boot     time.Duration // guest uptime when stage 2 of init started
	Booted   time.Duration // systemd boards: guest uptime when the run's unit started
	Wall     time.Duration // QEMU start to exit
	Console  string        // Dir/console.log, the serial console
	Output   string        // Dir/output.log, the command's stdout and stderr
}

// Err is nil when the guest command exited 0.
func (r *Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	if r.ExitCode < 0 {
		return fmt.Errorf("guest command reported no exit status; console:\n%s", r.ConsoleTail(40))
	}
	return fmt.Errorf("guest command exited %d", r.ExitCode)
}

// ConsoleTail returns the last n lines of the serial console.
func (r *Result) ConsoleTail(n int) string { return tail(r.Console, n) }

// OutputTail returns the last n lines of the command's output.
func (r *Result) OutputTail(n int) string { return tail(r.Output, n) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrTimeout is wrapped by Run's error when the run outlived its timeout.
var ErrTimeout = errors.New("virtual board timed out")

// Run boots the virtual board, runs opts.Command and powers off. A non-zero
// exit status of the command is in Result.ExitCode, not in the error; the
// error reports a harness failure or a timeout (QEMU killed).
func Run(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "vm")
	c := opts.Cache
	if c == nil {
		var err error
		if c, err = FindCache(); err != nil {
			return nil, err
		}
	}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "boxagent-lab-")
		if err != nil {
			return nil, fmt.Errorf("cannot create a results folder: %w", err)
		}
		opts.Dir = d
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the results folder: %w", err)
	}
	if strings.ContainsAny(dir+c.Dir+c.Init+c.Root+strings.Join(c.Binds, ""), " \t\n,:\"'") {
		return nil, fmt.Errorf("cannot boot: paths with blanks, commas or quotes do not survive the kernel command line (%s)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the results folder: %w", err)
	}
	res := &Result{Dir: dir, ExitCode: -1, Console: filepath.Join(dir, "console.log"), Output: filepath.Join(dir, "output.log")}
	if err := writeInputs(dir, c, opts); err != nil {
		return nil, err
	}
	unlock, err := lockBoard(ctx, c, log)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if opts.Timeout == 0 && !opts.Interactive {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()

	// QMP over a socket pair: no socket file to wait for.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot create the QMP socket pair: %w", err)
	}
	qemuEnd := os.NewFile(uintptr(fds[1]), "qmp-qemu")
	hostEnd := os.NewFile(uintptr(fds[0]), "qmp-host")
	defer hostEnd.Close()

	cmd := exec.CommandContext(ctx, c.Arch.QEMU(), qemuArgs(c, dir, opts)...)
	cmd.ExtraFiles = []*os.File{qemuEnd} // fd 3
	cmd.WaitDelay = 5 * time.Second
	if opts.Interactive {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		// QEMU sets the terminal raw; a killed QEMU cannot set it back.
		if tio, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
			defer unix.IoctlSetTermios(int(os.Stdin.Fd()), unix.TCSETS, tio)
		}
		// Ctrl-C reaches QEMU (same process group), which shuts down; we
		// stay to clean up. SIGTERM is for us alone: pass it on as a kill.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer func() {
			signal.Stop(sig)
			close(sig)
		}()
		go func() {
			for s := range sig {
				if s == syscall.SIGTERM {
					cancelRun()
				}
			}
		}()
	} else {
		ql, err := os.Create(filepath.Join(dir, "qemu.log"))
		if err != nil {
			return nil, fmt.Errorf("cannot create qemu.log: %w", err)
		}
		defer ql.Close()
		cmd.Stdout, cmd.Stderr = ql, ql
	}
	start := time.Now()
	log.Debug("booting", "dir", dir, "kernel", c.KernelVersion)
	exited, err := pdeath.Start(cmd) // QEMU dies with us
	qemuEnd.Close()
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", c.Arch.QEMU(), err)
	}

	q, err := dialQMP(ctx, hostEnd)
	if err != nil {
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("cannot talk QMP to the virtual board: %w (qemu.log: %s)", err, tail(filepath.Join(dir, "qemu.log"), 5))
	}
	defer q.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- serveRequests(watchCtx, dir, q, opts.Sticks, log) }()

	waitErr := <-exited
	res.Wall = time.Since(start)
	stopWatch()
	if werr := <-watchDone; werr != nil && !errors.Is(werr, context.Canceled) && !errors.Is(werr, context.DeadlineExceeded) {
		log.Warn("request watcher stopped", "err", werr)
	}
	readResults(res)
	log.Debug("powered off", "wall", res.Wall, "boot", res.Boot, "exit", res.ExitCode)
	if ctx.Err() == context.DeadlineExceeded {
		return res, fmt.Errorf("cannot finish the guest run: %w after %s (QEMU killed); console:\n%s", ErrTimeout, opts.Timeout, res.ConsoleTail(20))
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("cannot finish the guest run: %w (QEMU killed)", ctx.Err())
	}
	if waitErr != nil && !opts.Interactive {
		return res, fmt.Errorf("cannot run %s: %w; qemu.log:\n%s", c.Arch.QEMU(), waitErr, tail(filepath.Join(dir, "qemu.log"), 10))
	}
	return res, nil
}

func readResults(res *Result) {
	if b, err := os.ReadFile(filepath.Join(res.Dir, "exit")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			res.ExitCode = n
		}
	}
	for name, d := range map[string]*time.Duration{"boot": &res.Boot, "systemd-boot": &res.Booted} {
		if b, err := os.ReadFile(filepath.Join(res.Dir, name)); err == nil {
			if f, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil {
				*d = time.Duration(f * float64(time.Second))
			}
		}
	}
}

// writeInputs lays out the results folder: knobs, command, background
// commands and the requests folder; it removes what a former run left.
func writeInputs(dir string, c *Cache, opts Options) error {
	for _, f := range []string{"exit", "exit.tmp", "boot", "systemd-boot", "output.log", "console.log", "cmd.sh", "env"} {
		os.Remove(filepath.Join(dir, f))
	}
	old, _ := filepath.Glob(filepath.Join(dir, "bg-*"))
	for _, f := range old {
		os.Remove(f)
	}
	os.RemoveAll(filepath.Join(dir, requestsDir))
	if err := os.Mkdir(filepath.Join(dir, requestsDir), 0o755); err != nil {
		return fmt.Errorf("cannot create the requests folder: %w", err)
	}
	env := map[string]string{
		EnvKernelVersion: c.KernelVersion,
		EnvBtvirtShim:    c.BtvirtShim,
		EnvArch:          string(c.archOrDefault()),
		"LAB_TTY":        c.Arch.tty(),
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	if opts.Interactive {
		env["LAB_INTERACTIVE"] = "1"
	}
	if opts.Net || len(opts.HostFwd) > 0 {
		env["LAB_NET"] = "user"
	}
	if opts.WorkDir != "" {
		env["LAB_WORKDIR"] = opts.WorkDir
	}
	if opts.Systemd {
		env["LAB_INIT"] = "systemd"
	}
	if len(opts.Persist) > 0 {
		env["LAB_PERSIST"] = strings.Join(opts.Persist, " ")
	}
	if opts.BootImage != "" {
		env["LAB_BOOTDISK"] = "labboot" // virtio serial, found in /sys/block
	}
	if len(opts.Persist) > 0 {
		env["LAB_PERSISTDISK"] = "labpersist"
		img := filepath.Join(dir, persistImage)
		if _, err := os.Stat(img); err != nil {
			out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-L", "labpersist", img, "64M").CombinedOutput()
			if err != nil {
				return fmt.Errorf("cannot make the persistent disk: %v: %s", err, out)
			}
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if !validEnvName(k) {
			return fmt.Errorf("cannot pass knob %q: not a shell variable name", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write the knobs: %w", err)
	}
	if len(opts.Command) > 0 {
		if err := writeScript(filepath.Join(dir, "cmd.sh"), opts.Command); err != nil {
			return err
		}
	}
	for i, bg := range opts.Background {
		if err := writeScript(filepath.Join(dir, fmt.Sprintf("bg-%d.sh", i)), bg); err != nil {
			return err
		}
	}
	return nil
}

func writeScript(path string, argv []string) error {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	s := "exec " + strings.Join(q, " ") + "\n"
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func qemuArgs(c *Cache, dir string, opts Options) []string {
	armhf := c.archOrDefault() == ArchArmhf
	smp, mem := opts.SMP, opts.MemoryMB
	if smp == 0 {
		// armhf: one vCPU. With two (MTTCG) every module load of the
		// armmp kernel is 2-4x slower and btvirt's first controller
		// misses its HCI Reset (lab spike, 10 boots of 10).
		smp = 2
		if armhf {
			smp = 1
		}
	}
	if mem == 0 {
		// armmp is a non-LPAE kernel: highmem=off keeps RAM and the PCI
		// windows below 4 GiB.
		mem = 2048
		if armhf {
			mem = 1536
		}
	}
	args := []string{
		"console=" + c.Arch.tty() + ",115200", "panic=-1", "loglevel=3", "mitigations=off",
		"lab.kroot=" + c.KernelRoot, "lab.results=" + dir, "lab.init=" + c.Init,
	}
	// virtio over PCI on both: q35's, and the generic PCIe host of virt
	// (xHCI, virtio-net and virtio-blk are PCI devices there too).
	var a []string
	if armhf {
		// cryptomgr.notests: loading bluetooth pulls in ecdh_generic,
		// whose self-test alone takes 11-13 s under TCG. The board root
		// is the armhf one; the host paths it needs are bound into it.
		args = append(args, "cryptomgr.notests=1", "lab.root=board", "lab.bind="+strings.Join(c.Binds, ":"))
		a = []string{"-accel", "tcg,thread=multi", "-M", "virt,highmem=off", "-cpu", "cortex-a15",
			"-fsdev", "local,id=boardroot,path=" + c.Root + ",security_model=none,readonly=on,multidevs=remap",
			"-device", "virtio-9p-pci,fsdev=boardroot,mount_tag=boardroot"}
	} else {
		a = []string{"-accel", "tcg,thread=multi", "-cpu", "max", "-M", "q35"}
	}
	console := filepath.Join(dir, "console.log")
	a = append(a, "-smp", strconv.Itoa(smp), "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", strings.Join(args, " "),
		"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
		"-fsdev", "local,id=results,path="+dir+",security_model=none,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
		"-chardev", "socket,id=qmp,fd=3", "-mon", "chardev=qmp,mode=control",
	)
	if opts.Interactive {
		a = append(a, "-chardev", "stdio,id=con,signal=on,logfile="+console, "-serial", "chardev:con")
	} else {
		a = append(a, "-chardev", "file,id=con,path="+console, "-serial", "chardev:con")
	}
	if opts.USB || len(opts.Sticks) > 0 {
		a = append(a, "-device", "qemu-xhci,id=xhci")
	}
	if opts.Net || len(opts.HostFwd) > 0 {
		nd := "user,id=net0"
		for _, f := range opts.HostFwd {
			nd += ",hostfwd=" + f
		}
		a = append(a, "-netdev", nd, "-device", "virtio-net-pci,netdev=net0")
	}
	if opts.BootImage != "" {
		a = append(a, "-drive", "if=none,id=bootimg,format=raw,file="+opts.BootImage, "-device", "virtio-blk-pci,drive=bootimg,serial=labboot")
	}
	if len(opts.Persist) > 0 {
		a = append(a, "-drive", "if=none,id=persist,format=raw,file="+filepath.Join(dir, persistImage), "-device", "virtio-blk-pci,drive=persist,serial=labpersist")
	}
	return append(a, opts.ExtraArgs...)
}
