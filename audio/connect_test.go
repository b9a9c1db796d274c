package audio

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jfreymuth/pulse"
	"github.com/jfreymuth/pulse/proto"
)

// connectNative tries a second time only on the failures a second try
// cures (its doc says why), and never a third.
func TestConnectNativeTriesAgain(t *testing.T) {
	other := errors.New("dial unix /run/pulse/native: connect: no such file or directory")
	denied := fmt.Errorf("pulseaudio: %w", proto.ErrAccessDenied)
	deadline := fmt.Errorf("pulseaudio: %w", context.DeadlineExceeded)
	cases := []struct {
		name  string
		errs  []error // each try's result; nil connects
		calls int
		want  error
	}{
		{"connects at once", []error{nil}, 1, nil},
		{"a missed deadline", []error{deadline, nil}, 2, nil},
		{"the credentials race", []error{denied, nil}, 2, nil},
		{"denied twice: not in the group", []error{denied, denied}, 2, proto.ErrAccessDenied},
		{"no server: no second try", []error{other}, 1, other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			pc, err := connectNative(func() (*pulse.Client, error) {
				err := c.errs[calls]
				calls++
				if err != nil {
					return nil, err
				}
				return &pulse.Client{}, nil
			})
			if calls != c.calls {
				t.Errorf("%d tries, want %d", calls, c.calls)
			}
			if c.want == nil && (err != nil || pc == nil) {
				t.Errorf("got %v, %v; want a client", pc, err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}
