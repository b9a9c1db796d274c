package errlist

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestFlatten(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	wrapped := fmt.Errorf("w: %w", a)
	tests := []struct {
		name string
		err  error
		want []error
	}{
		{"nil", nil, nil},
		{"one", a, []error{a}},
		{"wrapped stays whole", wrapped, []error{wrapped}},
		{"joined", errors.Join(a, b), []error{a, b}},
		{"nested", errors.Join(a, errors.Join(b, c)), []error{a, b, c}},
	}
	for _, tt := range tests {
		if got := Flatten(tt.err); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Flatten = %v, want %v", tt.name, got, tt.want)
		}
	}
}
