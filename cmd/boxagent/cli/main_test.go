package cli_test

import (
	"os"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
)

// TestMain lets the test binary stand in for the boxagent binary: with
// BOXAGENT_AS_MAIN=1 it runs the real command line, so the integration
// tests start the real daemon as a real process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("BOXAGENT_TEST_HTTP") == "1" {
		os.Exit(httpProbe(os.Args[1:]))
	}
	if os.Getenv("BOXAGENT_AS_MAIN") == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}
