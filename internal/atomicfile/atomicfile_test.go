package atomicfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     string // content of the file before, "" for none
		target  string // relative to the test folder
		opt     Options
		wantErr bool
		want    []string // names in the test folder afterwards
	}{
		{name: "new file", target: "a.conf", want: []string{"a.conf"}},
		{name: "replace", old: "old", target: "a.conf", want: []string{"a.conf"}},
		{name: "own prefix", old: "old", target: "a.conf", opt: Options{TempPrefix: ".tmp-"}, want: []string{"a.conf"}},
		{name: "missing folder refused", target: "sub/dir/a.conf", wantErr: true},
		{name: "missing folder created", target: "sub/dir/a.conf", opt: Options{CreateDir: true}, want: []string{"sub"}},
		{name: "no file name", target: "sub/", opt: Options{CreateDir: true}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := dir + "/" + tc.target // not Join: it drops the trailing slash of "sub/"
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(path, []byte("new content\n"), 0o640, tc.opt)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Write succeeded")
				}
				if got := names(t, dir); len(got) != 0 {
					t.Errorf("a refused write left %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != "new content\n" {
				t.Errorf("file = %q, %v", b, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, %v (umask must not apply)", fi.Mode(), err)
			}
			if got := names(t, dir); !slices.Equal(got, tc.want) {
				t.Errorf("folder holds %v, want %v", got, tc.want)
			}
		})
	}
}

// A failure before the rename leaves the final name as it was and removes
// the temporary file: here the final name is a folder, so the rename fails.
func TestWriteFailedRenameLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Write(target, []byte("x"), 0o600, Options{})
	if err == nil {
		t.Fatal("Write over a non-empty folder succeeded")
	}
	if !strings.Contains(err.Error(), target) {
		t.Errorf("error %q does not name the file", err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"busy"}) {
		t.Errorf("folder holds %v: the temporary file was not removed", got)
	}
	if got := names(t, target); !slices.Equal(got, []string{"inside"}) {
		t.Errorf("target folder changed: %v", got)
	}
}

func TestWriteKeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root")
	}
	const uid, gid = 4321, 4322
	for _, keep := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "owned")
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := Write(path, []byte("new"), 0o600, Options{KeepOwner: keep}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		owned := st.Uid == uid && st.Gid == gid
		if owned != keep {
			t.Errorf("KeepOwner %v: owner %d:%d", keep, st.Uid, st.Gid)
		}
	}
	// No old file: the process's owner, no error.
	path := filepath.Join(t.TempDir(), "fresh")
	if err := Write(path, []byte("new"), 0o600, Options{KeepOwner: true}); err != nil {
		t.Fatal(err)
	}
}

// TestHelperWrite is the child of TestWriteCrashSafety: it runs one Write
// under strace, which records the system calls or makes one of them fail.
func TestHelperWrite(t *testing.T) {
	path := os.Getenv("ATOMICFILE_HELPER_PATH")
	if path == "" {
		t.Skip("run by TestWriteCrashSafety")
	}
	opt := Options{TempPrefix: ".tmp-", KeepOwner: os.Getenv("ATOMICFILE_HELPER_KEEPOWNER") != ""}
	if err := Write(path, []byte("new content\n"), 0o600, opt); err != nil {
		os.Stderr.WriteString("helper: " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Exit(0)
}

// needStrace is the path of strace, or skips: the tests run the test binary
// under it.
func needStrace(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the test binary under strace; skipped with -short")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed")
	}
	return strace
}

// TestWriteCrashSafety checks, on the real system calls, the order that
// makes a write crash-safe (the data is synced before the rename, the
// folder after it), and that a failing step leaves the old content under
// the final name and no temporary file: strace makes fsync or the rename
// fail as a dying disk or a full filesystem would.
func TestWriteCrashSafety(t *testing.T) {
	strace := needStrace(t)
	for _, tc := range []struct {
		name   string
		inject string // strace -e inject=…, "" for none
		// onlyFolder injects into the folder's system calls alone (strace
		// -P): an injection's when= counts per thread, and the Go runtime
		// may make the file's and the folder's fsync on different threads.
		onlyFolder bool
		wantErr    string
		want       string // content under the final name afterwards
	}{
		{name: "ok", want: "new content\n"},
		{name: "file fsync fails", inject: "fsync:error=EIO:when=1", wantErr: "input/output error", want: "old\n"},
		{name: "rename fails", inject: "rename,renameat,renameat2:error=EXDEV", wantErr: "invalid cross-device link", want: "old\n"},
		// The rename is done: the new content is whole, but the caller
		// must hear that it may not survive a power cut.
		{name: "folder fsync fails", inject: "fsync:error=EIO", onlyFolder: true, wantErr: "cannot sync folder", want: "new content\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			trace := filepath.Join(t.TempDir(), "trace")
			args := []string{"-f", "-y", "-qq", "-o", trace, "-e", "trace=fsync,rename,renameat,renameat2,openat,write,close"}
			if tc.inject != "" {
				args = append(args, "-e", "inject="+tc.inject)
			}
			if tc.onlyFolder {
				args = append(args, "-P", dir)
			}
			args = append(args, os.Args[0], "-test.run=^TestHelperWrite$", "-test.count=1")
			cmd := exec.Command(strace, args...)
			cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER_PATH="+path)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("helper: %v: %s", err, out)
			case tc.wantErr != "" && !errors.As(err, &exit):
				t.Fatalf("helper = %v, want a failure: %s", err, out)
			case tc.wantErr != "" && !strings.Contains(string(out), tc.wantErr):
				t.Fatalf("helper output %q lacks %q", out, tc.wantErr)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != tc.want {
				t.Errorf("final name holds %q, %v; want %q", b, err, tc.want)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"state.json"}) {
				t.Errorf("folder holds %v: a temporary file was left", got)
			}
			if tc.name == "ok" {
				checkOrder(t, trace, dir, path)
			}
		})
	}
}

// checkOrder reads the strace log of a successful Write and checks that
// the temporary file is written and synced before the rename onto path,
// and the folder synced after it.
func checkOrder(t *testing.T, trace, dir, path string) {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp-state.json.")
	step := 0
	steps := []struct {
		what string
		ok   func(line string) bool
	}{
		{"write to the temporary file", func(l string) bool { return strings.Contains(l, "write(") && strings.Contains(l, "<"+tmp) }},
		{"fsync of the temporary file", func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+tmp) }},
		{"rename onto the final name", func(l string) bool {
			return strings.Contains(l, "rename") && strings.Contains(l, `"`+tmp) && strings.Contains(l, `"`+path+`"`)
		}},
		{"fsync of the folder", func(l string) bool { return strings.Contains(l, "fsync(") && strings.Contains(l, "<"+dir+">") }},
	}
	for _, line := range strings.Split(string(b), "\n") {
		if step < len(steps) && steps[step].ok(line) {
			step++
		}
	}
	if step < len(steps) {
		t.Errorf("strace log has no %s after the steps before it:\n%s", steps[step].what, b)
	}
}

// TestKeepOwnerUnderChownFilter runs Write with KeepOwner where every
// chown fails with EPERM, as under boxagent.service's
// SystemCallFilter=~@privileged: rewriting a file the process already owns
// must not call chown at all, and a file of another owner must fail with
// the owner named and the old content kept.
func TestKeepOwnerUnderChownFilter(t *testing.T) {
	strace := needStrace(t)
	for _, tc := range []struct {
		name    string
		foreign bool // the old file belongs to another user (needs root to set up)
		wantErr string
		want    string
	}{
		{name: "own file", want: "new content\n"},
		{name: "foreign owner", foreign: true, wantErr: "cannot keep the owner 4321:4321", want: "old\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.foreign {
				if os.Geteuid() != 0 {
					t.Skip("giving the file another owner needs root")
				}
				if err := os.Chown(path, 4321, 4321); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(strace, "-f", "-qq", "-o", os.DevNull,
				"-e", "trace=chown,fchown,fchownat,lchown", "-e", "inject=chown,fchown,fchownat,lchown:error=EPERM",
				os.Args[0], "-test.run=^TestHelperWrite$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER_PATH="+path, "ATOMICFILE_HELPER_KEEPOWNER=1")
			out, err := cmd.CombinedOutput()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("helper: %v: %s", err, out)
			case tc.wantErr != "" && (err == nil || !strings.Contains(string(out), tc.wantErr)):
				t.Fatalf("helper = %v, %q; want a failure with %q", err, out, tc.wantErr)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != tc.want {
				t.Errorf("final name holds %q, %v; want %q", b, err, tc.want)
			}
			if got := names(t, dir); !slices.Equal(got, []string{"config.toml"}) {
				t.Errorf("folder holds %v: a temporary file was left", got)
			}
		})
	}
}
