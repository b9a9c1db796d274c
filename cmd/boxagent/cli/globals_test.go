package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestGlobalsAfterNoun(t *testing.T) {
	tests := []struct {
		args []string
		want []string
		err  string
	}{
		{[]string{"status"}, []string{"status"}, ""},
		{[]string{"--socket", "/s", "status", "--json"}, []string{"status", "--socket", "/s", "--json"}, ""},
		{[]string{"--socket=/s", "--json", "fw", "list"}, []string{"fw", "--socket=/s", "--json", "list"}, ""},
		{[]string{"--json", "--help"}, []string{"--help", "--json"}, ""},
		{[]string{"--version"}, []string{"--version"}, ""},
		{[]string{"--socket"}, nil, "--socket needs a path"},
		{[]string{"--json"}, nil, "missing command"},
		{[]string{"--timeout", "5s", "bt", "scan"}, nil, `unknown flag "--timeout" before the command`},
	}
	for _, tt := range tests {
		got, err := globalsAfterNoun(tt.args)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
		case tt.err == "" && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("%q = %q, %v; want %q", tt.args, got, err, tt.want)
		}
	}
}
