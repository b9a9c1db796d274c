package journal

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWatchQuarantined: a damaged journal moved aside, or removed, is told
// at once; other names in the folder are not.
func TestWatchQuarantined(t *testing.T) {
	const journal = "operations.jsonl"
	for _, tc := range []struct {
		name string
		act  func(dir string) error
		told []string // before the marker's
	}{
		{"moved aside", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, journal+corruptSuffix+"1"), nil, 0o600)
		}, []string{journal + corruptSuffix + "1"}},
		{"moved aside, then removed", func(dir string) error {
			p := filepath.Join(dir, journal+corruptSuffix+"2")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				return err
			}
			return os.Remove(p)
		}, []string{journal + corruptSuffix + "2", journal + corruptSuffix + "2"}},
		{"another journal's, removed", func(dir string) error {
			return os.Remove(filepath.Join(dir, "other.jsonl"+corruptSuffix+"1"))
		}, nil},
		{"another file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, journal+".tmp"), nil, 0o600)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "other.jsonl"+corruptSuffix+"1"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			names := make(chan string, 8)
			if err := watchQuarantined(ctx, filepath.Join(dir, journal), func(name string) { names <- name }); err != nil {
				t.Fatal(err)
			}
			if err := tc.act(dir); err != nil {
				t.Fatal(err)
			}
			// Events come in order: once the marker is told, everything
			// the act did was.
			marker := journal + corruptSuffix + "marker"
			if err := os.WriteFile(filepath.Join(dir, marker), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			var told []string
			for {
				select {
				case n := <-names:
					if n != marker {
						told = append(told, n)
						continue
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("the marker was not told; before it: %q", told)
				}
				break
			}
			if !slices.Equal(told, tc.told) {
				t.Errorf("told %q, want %q", told, tc.told)
			}
		})
	}
}
