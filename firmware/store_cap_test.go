package firmware

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
)

// zeros is an endless source of zero bytes (an endless URL, a device
// file) that counts what was read from it; it ends after max bytes so a
// store without a cap fails the test instead of filling the disk.
type zeros struct{ n, max int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n >= z.max {
		return 0, io.EOF
	}
	m := int(min(int64(len(p)), z.max-z.n))
	clear(p[:m])
	z.n += int64(m)
	return m, nil
}

// TestStoreImportCap: an endless source wrote 354 MB in 7 s into the
// store, with no end but the disk's. Import stops past the store's free
// space (less a reserve) or FAT32's 4 GiB - 1, whichever is smaller, and
// refuses a package announced larger before reading a byte.
func TestStoreImportCap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "artifacts")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	const room = 4 << 20
	s.free = func() (int64, error) { return storeReserve + room, nil }
	before := dirNames(t, dir)

	src := &zeros{max: 64 << 20}
	_, err = s.Import(context.Background(), src, Policy{Method: MethodNone})
	if !errors.Is(err, ErrStoreSpace) {
		t.Errorf("Import of an endless source = %v, want ErrStoreSpace", err)
	}
	if src.n > room+2*passBuf {
		t.Errorf("read %d bytes of an endless source, want about %d", src.n, room)
	}
	if after := dirNames(t, dir); !slices.Equal(after, before) {
		t.Errorf("store changed: %v -> %v", before, after)
	}

	for _, announced := range []int64{room + 1, MaxFAT32File + 1} {
		src := &zeros{max: 64 << 20}
		if announced > MaxFAT32File {
			s.free = func() (int64, error) { return 1 << 40, nil }
		}
		_, err := s.Import(context.Background(), src, Policy{Method: MethodNone}, WithSize(announced))
		if !errors.Is(err, ErrStoreSpace) || src.n != 0 {
			t.Errorf("Import announced %d bytes = %v after reading %d, want ErrStoreSpace before reading", announced, err, src.n)
		}
	}
}
