package vm

import (
	"flag"
	"strings"
	"testing"
)

func TestBuildTree(t *testing.T) {
	evs := []testEvent{
		{Action: "run", Test: "TestA"},
		{Action: "output", Test: "TestA", Output: "=== RUN   TestA\n"},
		{Action: "run", Test: "TestA/sub_1"},
		{Action: "output", Test: "TestA/sub_1", Output: "    x_test.go:3: boom\n"},
		{Action: "fail", Test: "TestA/sub_1"},
		{Action: "fail", Test: "TestA"},
		{Action: "run", Test: "TestB"},
		{Action: "skip", Test: "TestB"},
		{Action: "run", Test: "TestC"},
		{Action: "output", Output: "FAIL\n"},
	}
	root := buildTree(evs)
	var got []string
	var walk func(prefix string, n *testNode)
	walk = func(prefix string, n *testNode) {
		for _, c := range n.children {
			got = append(got, prefix+c.name+"="+c.action)
			walk(prefix+c.name+"/", c)
		}
	}
	walk("", root)
	want := "TestA=fail TestA/sub_1=fail TestB=skip TestC="
	if strings.Join(got, " ") != want {
		t.Errorf("tree %q, want %q", strings.Join(got, " "), want)
	}
	if out := root.byName["TestA"].byName["sub_1"].output.String(); !strings.Contains(out, "boom") {
		t.Errorf("sub_1 output %q", out)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it'\''s'`, "": "''", "$x `y`": "'$x `y`'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	for k, ok := range map[string]bool{"LAB_X": true, "_a1": true, "1A": false, "A-B": false, "": false} {
		if validEnvName(k) != ok {
			t.Errorf("validEnvName(%q) = %v", k, !ok)
		}
	}
}

func TestGuestRunPattern(t *testing.T) {
	f := flag.Lookup("test.run")
	old := f.Value.String()
	defer f.Value.Set(old)
	for _, tc := range []struct {
		hostRun, hostTest string
		args              []string
		want              string
	}{
		{"", "TestLab", nil, ""},
		{"TestLab", "TestLab", nil, ""},
		{"TestLab/TestStick$", "TestLab", nil, "TestStick$"},
		{"TestLab/TestStickKinds/gpt", "TestLab", nil, "TestStickKinds/gpt"},
		{"TestLab/TestStick$", "TestLab", []string{"-test.run=X"}, ""},
	} {
		f.Value.Set(tc.hostRun)
		if got := guestRunPattern(tc.hostTest, tc.args); got != tc.want {
			t.Errorf("guestRunPattern(-run %q) = %q, want %q", tc.hostRun, got, tc.want)
		}
	}
}
