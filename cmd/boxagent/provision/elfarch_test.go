package provision

import (
	"bytes"
	"os"
	"runtime"
	"testing"
)

func TestElfArch(t *testing.T) {
	header := func(class, data byte, machine uint16) []byte {
		h := make([]byte, 64)
		copy(h, "\x7fELF")
		h[4], h[5] = class, data
		if data == 2 {
			h[18], h[19] = byte(machine>>8), byte(machine)
		} else {
			h[18], h[19] = byte(machine), byte(machine>>8)
		}
		return h
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string // "" wants an error
	}{
		{"arm", header(1, 1, 40), "arm"},
		{"arm64", header(2, 1, 183), "arm64"},
		{"amd64", header(2, 1, 62), "amd64"},
		{"riscv64", header(2, 1, 243), "riscv64"},
		{"mipsle", header(1, 1, 8), "mipsle"},
		{"mips big-endian", header(1, 2, 8), ""},
		{"mips64", header(2, 1, 8), ""},
		{"riscv32", header(1, 1, 243), ""},
		{"i386", header(1, 1, 3), ""},
		{"bad byte order", header(1, 3, 40), ""},
		{"a script", []byte("#!/bin/sh\necho hello, this is not an ELF file\n"), ""},
		{"short", []byte("\x7fELF\x01"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := elfArch(bytes.NewReader(tc.file))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("elfArch = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("elfArch = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// The test binary itself: a real ELF file of the host's architecture.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := elfArch(f); err != nil || got != runtime.GOARCH {
		t.Errorf("elfArch(the test binary) = %q, %v; want %q", got, err, runtime.GOARCH)
	}
}
