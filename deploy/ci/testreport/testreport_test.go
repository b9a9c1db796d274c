package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ev writes go test -json lines for the collector.
func ev(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

const passSkipFail = `{"Action":"start","Package":"github.com/boxagent/boxagent/firmware"}
{"Action":"run","Package":"github.com/boxagent/boxagent/firmware","Test":"TestA"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"github.com/boxagent/boxagent/firmware","Test":"TestA"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB","Output":"    fixtures_test.go:119: mkfs.exfat is not installed\n"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestC/sub","Output":"    x_test.go:9: want 1, have 2\n"}
{"Action":"fail","Package":"github.com/boxagent/boxagent/firmware","Test":"TestC/sub"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestC","Output":"--- FAIL: TestC (0.00s)\n"}
{"Action":"fail","Package":"github.com/boxagent/boxagent/firmware","Test":"TestC"}
{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Output":"FAIL\tgithub.com/boxagent/boxagent/firmware\t0.1s\n"}
{"Action":"fail","Package":"github.com/boxagent/boxagent/firmware"}`

func TestCollectorCountsAndFirstFailure(t *testing.T) {
	c := newCollector()
	other := 0
	if err := readEvents(strings.NewReader(passSkipFail+"\nnot json\n"), c, func(string) { other++ }); err != nil {
		t.Fatal(err)
	}
	runs := c.runs()
	if len(runs) != 1 {
		t.Fatalf("want one package, have %d", len(runs))
	}
	p := runs[0]
	if pass, fail, skip := p.counts(); pass != 1 || fail != 2 || skip != 1 {
		t.Errorf("counts: %d passed, %d failed, %d skipped; want 1, 2, 1", pass, fail, skip)
	}
	if !p.failed() {
		t.Error("the package failed")
	}
	r, ok := p.firstFailure()
	if !ok || r.Test != "TestC/sub" || r.Message != "x_test.go:9: want 1, have 2" {
		t.Errorf("first failure: %+v; want TestC/sub with its message", r)
	}
	if other != 1 {
		t.Errorf("%d non-JSON lines, want 1", other)
	}
	if p.Tests[1].Message != "fixtures_test.go:119: mkfs.exfat is not installed" {
		t.Errorf("skip message %q", p.Tests[1].Message)
	}
}

func TestPackageThatNeverEndedFails(t *testing.T) {
	c := newCollector()
	readEvents(strings.NewReader(ev(`{"Action":"run","Package":"p","Test":"TestA"}`)), c, nil)
	if !c.runs()[0].failed() {
		t.Error("a test binary killed before its end must count as failed")
	}
}

func TestBuildFailure(t *testing.T) {
	c := newCollector()
	readEvents(strings.NewReader(ev(
		`{"ImportPath":"p [p.test]","Action":"build-output","Output":"x.go:1: syntax error\n"}`,
		`{"Action":"fail","Package":"p","FailedBuild":"p [p.test]"}`)), c, nil)
	for _, p := range c.runs() {
		if p.Package == "p" && !p.failed() {
			t.Error("a build failure fails the package")
		}
	}
}

const skipList = `# Skips that stay

| stage | test | the skip says | why |
| --- | --- | --- | --- |
| cross-* | * | short | qemu-user runs no processes |
| unit | ` + "`journal.TestKill9Helper`" + ` | helper | the helper process's entry |
| lab | bluetooth.TestLab/*/TestOutside | L2CAP oopses | a kernel bug |

text after the table
`

func TestSkipList(t *testing.T) {
	list, err := readSkipList(strings.NewReader(skipList))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d rows, want 3", len(list))
	}
	for _, tc := range []struct {
		stage, name, msg string
		ok               bool
	}{
		{"cross-arm", "firmware.TestX/y", "runs openssl; skipped with -short", true},
		{"unit", "firmware.TestX/y", "runs openssl; skipped with -short", false},
		{"unit", "journal.TestKill9Helper", "helper process of TestKill9", true},
		{"unit", "journal.TestKill9HelperX", "helper process", false},
		{"lab", "bluetooth.TestLab/Guest/TestOutside", "guest: skipped:\nL2CAP oopses in l2cap_info_timeout", true},
		{"lab", "bluetooth.TestLab/Guest/TestOutside", "guest: skipped:\npairing succeeded", false},
	} {
		if got := allowed(list, tc.stage, tc.name, tc.msg) != nil; got != tc.ok {
			t.Errorf("allowed(%s, %s, %q) = %v, want %v", tc.stage, tc.name, tc.msg, got, tc.ok)
		}
	}
}

func TestSkipListErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no reason":  "| stage | test | the skip says | why |\n|--|--|--|--|\n| unit | a.TestB | x | |\n",
		"bad header": "| test | why |\n|--|--|\n| a | b |\n",
		"cells":      "| stage | test | the skip says | why |\n|--|--|--|--|\n| unit | a | b |\n",
	} {
		if _, err := readSkipList(strings.NewReader(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSummaryRetryAndUnexpectedSkip runs the summary over a stage whose
// package failed, then passed on its retry, with an unlisted skip.
func TestSummaryRetryAndUnexpectedSkip(t *testing.T) {
	dir := t.TempDir()
	retried := ev(
		`{"Action":"run","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB"}`,
		`{"Action":"output","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB","Output":"    skip because mkfs.exfat is missing\n"}`,
		`{"Action":"skip","Package":"github.com/boxagent/boxagent/firmware","Test":"TestB"}`,
		`{"Action":"pass","Package":"github.com/boxagent/boxagent/firmware","Test":"TestC"}`,
		`{"Action":"pass","Package":"github.com/boxagent/boxagent/firmware"}`)
	os.WriteFile(attemptFile(dir, "lab", 1), []byte(passSkipFail), 0o644)
	os.WriteFile(attemptFile(dir, "lab", 2), []byte(retried), 0o644)
	stages, err := loadStages(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := readSkipList(strings.NewReader(skipList))
	var out strings.Builder
	tot := summarize(&out, stages, list)
	if tot.Retried != 1 || tot.FailedPkgs != 0 || tot.Unexpected != 1 || tot.Passed != 1 || tot.Skipped != 1 {
		t.Errorf("totals %+v", tot)
	}
	for _, want := range []string{
		"lab firmware: first try failed in TestC/sub: x_test.go:9: want 1, have 2",
		"NOT in docs/SKIPS.md",
		"lab firmware.TestB: skip because mkfs.exfat is missing",
		"\n1 passed, 0 failed, 1 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFindTools(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "os/exec"

const qemu = "qemu-system-x86_64"

func needTool(t any, name string) {}

func f(name string) {
	exec.Command("mkfs.vfat", "-F", "32")
	exec.CommandContext(nil, qemu, "-M", "q35")
	exec.LookPath("dnsmasq")
	needTool(nil, "openssl")
	exec.Command(name)
	exec.Command("sh", "-c", "not a tool")
	run(nil, "sgdisk", "-n", "1")
}

// run is a wrapper: its name parameter is a program.
func run(t any, name string, args ...string) { exec.Command(name, args...) }

func (im *image) mkfs(size int, tool string) { needTool(nil, tool) }

func g(im *image) {
	im.mkfs(1, "mkfs.exfat")
	run := func(args ...string) {}
	run("fw", "add")
}
`
	os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(src), 0o644)
	uses, err := findTools(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range uses {
		names = append(names, u.Name)
	}
	if got, want := strings.Join(names, " "), "dnsmasq mkfs.exfat mkfs.vfat openssl qemu-system-x86_64 sgdisk sh"; got != want {
		t.Errorf("tools %q, want %q", got, want)
	}
}

func TestCheckTools(t *testing.T) {
	owners := map[string][]string{
		"/usr/sbin/dnsmasq": {"dnsmasq-base"},
		"/bin/sh":           {"dash"},
		"/usr/bin/mkimage":  {"u-boot-tools"},
		"/opt/hand/x":       nil,
	}
	sys := system{
		LookPath: func(n string) (string, error) {
			for p := range owners {
				if filepath.Base(p) == n {
					return p, nil
				}
			}
			return "", errors.New("not found")
		},
		Owners:    func(p string) ([]string, error) { return owners[p], nil },
		Essential: func(p string) bool { return p == "dash" },
	}
	list := packageList{Packages: map[string]string{"dnsmasq-base": "DHCP"}, Tools: map[string]string{"go": "the toolchain"}}
	uses := []toolUse{{"dnsmasq", "a:1"}, {"sh", "a:2"}, {"mkimage", "a:3"}, {"x", "a:4"}, {"mkfs.exfat", "a:5"}, {"go", "a:6"}}
	problems := checkTools(sys, uses, list)
	got := strings.Join(problems, "\n")
	for _, want := range []string{"mkimage (a:3): /usr/bin/mkimage comes from u-boot-tools", "x (a:4): /opt/hand/x is in no Debian package", "mkfs.exfat (a:5): not installed"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if len(problems) != 3 {
		t.Errorf("%d problems, want 3 (dnsmasq is listed, sh Essential, go a listed tool):\n%s", len(problems), got)
	}
}

func TestCandidatesMergedUsr(t *testing.T) {
	got := strings.Join(candidates("/usr/sbin/nonexistent-tool"), " ")
	if got != "/sbin/nonexistent-tool /usr/sbin/nonexistent-tool" {
		t.Errorf("candidates %q", got)
	}
}

func TestFirstSkipReason(t *testing.T) {
	for msg, want := range map[string]string{
		"lab_test.go:9: no radio":                                     "lab_test.go:9: no radio",
		"gotest.go:231: guest: skipped:\n=== RUN x\nlab.go:3: a knob": "guest: lab.go:3: a knob",
		"guest: skipped:\nfirst\nlast words":                          "guest: last words",
	} {
		if got := firstSkipReason(message(msg)); got != want {
			t.Errorf("firstSkipReason(%q) = %q, want %q", msg, got, want)
		}
	}
}

// The armhf board's root packages (armhf:NAME) are not the host's: make
// deps must not install them, nor may they cover a host program.
func TestReadPackageListArmhf(t *testing.T) {
	l, err := readPackageList(strings.NewReader("# c\nbluez   the host's\narmhf:bluez   the armhf root's\ntool:go   the toolchain\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Packages["armhf:bluez"]; ok || l.Armhf["bluez"] != "the armhf root's" || l.Packages["bluez"] != "the host's" || len(l.Packages) != 1 {
		t.Errorf("packages %v, armhf %v", l.Packages, l.Armhf)
	}
}
