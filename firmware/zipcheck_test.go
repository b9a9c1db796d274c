package firmware

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// eocdAt returns the offset of the last EOCD record of an uncommented zip.
func eocdAt(b []byte) int { return bytes.LastIndex(b, eocdMagic) }

func withStoredBzip2(t *testing.T) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	w.RegisterCompressor(12, func(out io.Writer) (io.WriteCloser, error) { return nopCloser{out}, nil })
	f, err := w.CreateHeader(&zip.FileHeader{Name: "x", Method: 12})
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	w.Close()
	return buf.Bytes()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestCheckZip(t *testing.T) {
	base := buildZip(t, updateEntries(), "")
	e := eocdAt(base)
	cdOff := int(binary.LittleEndian.Uint32(base[e+16:]))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(base)) }

	// A fake EOCD in the comment whose own comment length also runs to EOF.
	fake := make([]byte, eocdLen)
	copy(fake, eocdMagic)
	twoEOCD := buildZip(t, updateEntries(), "xx"+string(fake))

	tests := []struct {
		name     string
		data     []byte
		required []string
		wantMsg  string // "" means valid
	}{
		{"valid", base, []string{AndroidUpdateBinary}, ""},
		{"valid empty zip", buildZip(t, nil, ""), nil, ""},
		{"valid with comment", buildZip(t, updateEntries(), "just a comment"), nil, ""},
		{"stored entries", func() []byte {
			var buf bytes.Buffer
			w := zip.NewWriter(&buf)
			f, _ := w.CreateHeader(&zip.FileHeader{Name: "a/b.txt", Method: zip.Store})
			f.Write([]byte("stored"))
			w.Close()
			return buf.Bytes()
		}(), []string{"a/b.txt"}, ""},
		{"dotdot", buildZip(t, []entry{{"a/../../etc/passwd", nil}}, ""), nil, ".. component"},
		{"absolute", buildZip(t, []entry{{"/etc/passwd", nil}}, ""), nil, "absolute"},
		{"backslash", buildZip(t, []entry{{`a\b`, nil}}, ""), nil, "backslash"},
		{"drive letter", buildZip(t, []entry{{"C:x", nil}}, ""), nil, "drive letter"},
		{"duplicate names", buildZip(t, []entry{{"a", []byte("1")}, {"a", []byte("2")}}, ""), nil, "duplicate entry"},
		{"missing required", base, []string{"payload.bin"}, "payload.bin"},
		{"two EOCDs", twoEOCD, nil, "more than one end-of-central-directory"},
		{"EOCD in comment", buildZip(t, updateEntries(), "PK\x05\x06"), nil, "EOCD marker occurs after start of EOCD"},
		{"prepended stub", append([]byte("#!/bin/sh\nexit 0\n"), base...), nil, "not a zip file"},
		{"prepended zip header", append([]byte("PK\x03\x04 self-extractor"), base...), nil, "does not end at the EOCD"},
		{"appended junk", append(bytes.Clone(base), "junk"...), nil, "no end-of-central-directory"},
		{"zip64 count", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[e+8:], 0xffff)
			binary.LittleEndian.PutUint16(b[e+10:], 0xffff)
			return b
		}), nil, "zip64"},
		{"entry count mismatch", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[e+8:], 2)
			binary.LittleEndian.PutUint16(b[e+10:], 2)
			return b
		}), nil, "EOCD says 2"},
		{"spanned", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[e+4:], 1); return b }), nil, "multi-disk"},
		{"local name differs", mutate(func(b []byte) []byte { b[localLen] = 'X'; return b }), nil, "disagrees with central name"},
		{"local method differs", mutate(func(b []byte) []byte { b[8] = 0; return b }), nil, "disagrees with the central directory"},
		{"encrypted", mutate(func(b []byte) []byte { b[cdOff+8] |= flagEncrypt; return b }), nil, "encrypted"},
		{"central offset wrong", mutate(func(b []byte) []byte { b[cdOff+42]++; return b }), nil, "gap or overlap"},
		{"central size wrong", mutate(func(b []byte) []byte { b[cdOff+20]++; return b }), nil, ""},
		{"bad central signature", mutate(func(b []byte) []byte { b[cdOff] = 'X'; return b }), nil, "bad central directory header"},
		{"bzip2", withStoredBzip2(t), nil, "compression method 12"},
		{"truncated", base[:len(base)-1], nil, "no end-of-central-directory"},
		{"tiny", []byte("PK"), nil, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zi, err := checkZip(bytes.NewReader(tt.data), int64(len(tt.data)), tt.required)
			if tt.name == "central size wrong" {
				// The compressed size is cross-checked through the tiling of
				// entries: a wrong size leaves a gap or an overlap.
				if !errors.Is(err, ErrStructure) {
					t.Fatalf("err = %v, want ErrStructure", err)
				}
				return
			}
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("checkZip: %v", err)
				}
				if zi.EOCD+eocdLen+int64(zi.CommentLen) != int64(len(tt.data)) {
					t.Errorf("zipInfo = %+v", zi)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantMsg)
			}
			if !errors.Is(err, ErrStructure) && !errors.Is(err, ErrMissingEntry) {
				t.Errorf("err = %v is neither ErrStructure nor ErrMissingEntry", err)
			}
		})
	}
}

func TestParseFooter(t *testing.T) {
	body := []byte("PK\x05\x06" + strings.Repeat("\x00", 16)) // EOCD without comment length
	mk := func(sigStart, marker, size uint16, comment []byte) []byte {
		b := append(bytes.Clone(body), 0, 0)
		binary.LittleEndian.PutUint16(b[len(b)-2:], uint16(len(comment)+footerLen))
		b = append(b, comment...)
		b = binary.LittleEndian.AppendUint16(b, sigStart)
		b = binary.LittleEndian.AppendUint16(b, marker)
		return binary.LittleEndian.AppendUint16(b, size)
	}
	sig := []byte("0123456789")
	tests := []struct {
		name    string
		tail    []byte
		wantErr error
		wantMsg string
	}{
		{"ok", mk(16, 0xffff, 16, sig), nil, ""},
		{"no comment", append(bytes.Clone(body), 0, 0), ErrUnsigned, "no signature in file"},
		{"too short", []byte{0xff, 0xff}, ErrFooter, "footer is wrong"},
		{"no marker", mk(16, 0x1234, 16, sig), ErrFooter, "0xFFFF"},
		{"start past comment", mk(40, 0xffff, 16, sig), ErrFooter, "larger than comment size"},
		{"start in footer", mk(6, 0xffff, 16, sig), ErrFooter, "in the footer"},
		{"comment larger than file", mk(16, 0xffff, 4000, sig), ErrFooter, "larger than the file"},
		{"size mismatch", append([]byte("abcd"), mk(16, 0xffff, 18, sig)...), ErrFooter, "doesn't match EOCD marker"},
		{"EOCD in signature", mk(16, 0xffff, 16, []byte("PK\x05\x06456789")), ErrStructure, "EOCD marker occurs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := parseFooter(tt.tail, int64(len(tt.tail)))
			if !errors.Is(err, tt.wantErr) || err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v %q", err, tt.wantErr, tt.wantMsg)
			}
			if err == nil && (string(wf.PKCS7) != string(sig) || wf.SignedLen != int64(len(body))) {
				t.Errorf("wholeFile = %+v", wf)
			}
		})
	}
}
