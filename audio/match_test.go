package audio

import (
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// onPipeWireCheck is onPipeWire against the expression it replaced, as
// FindStringSubmatch answers: the whole match and the version.
var onPipeWireCheck = matchtest.Check{Expr: `on PipeWire ([0-9][0-9.]*)`, Submatch: func(name string) []string {
	if v, ok := onPipeWire(name); ok {
		return []string{"on PipeWire " + v, v}
	}
	return nil
}}

// TestPipeWireVersion (names_test.go) has the cases.
func TestOnPipeWire(t *testing.T) {
	onPipeWireCheck.Agree(t, matchtest.All("on PipeWire 0.", 3),
		matchtest.Near("0.x \n", matchtest.Near("9.\n", "on PipeWire 0", "PulseAudio (on PipeWire 0.3.65)",
			"on PipeWire on PipeWire 1.2", "on PipeWire x on PipeWire 12", "on PipeWire .1", "on PipeWire ")...))
}

func FuzzOnPipeWire(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "PulseAudio (on PipeWire 0.3.65)", "on PipeWire x on PipeWire 1", "on PipeWire .1", "on PipeWire 1é"},
		onPipeWireCheck)
}
