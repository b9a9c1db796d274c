package firmware

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"os/exec"
	"testing"
)

func FuzzInspect(f *testing.F) {
	mbr := make([]byte, 4*sector)
	putMBR(mbr, []mbrEntry{{0x0c, 1, 3}, {0x05, 2, 2}})
	copy(mbr[sector:], "\xeb\x58\x90mkfs.fat\x00\x02\x01\x20\x00\x02\x00\x00\x00\x00\xf8")
	mbr[2*sector-2], mbr[2*sector-1] = 0x55, 0xaa
	f.Add(mbr)
	gpt := make([]byte, 8*sector)
	putMBR(gpt, []mbrEntry{{0xee, 1, 7}})
	copy(gpt[sector:], "EFI PART\x00\x00\x01\x00\x5c\x00\x00\x00")
	f.Add(gpt)
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Inspect(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, p := range d.Partitions {
			if p.Start < 0 || p.Size < 0 {
				t.Fatalf("partition %+v", p)
			}
		}
		d.Pick()
	})
}

func FuzzFooter(f *testing.F) {
	tail := append([]byte("PK\x05\x06"), make([]byte, 16)...)
	tail = binary.LittleEndian.AppendUint16(tail, 16)
	tail = append(tail, "0123456789\x10\x00\xff\xff\x10\x00"...)
	f.Add(tail)
	f.Add([]byte{0, 0, 0xff, 0xff, 0, 0})
	if _, err := exec.LookPath("openssl"); err == nil && !testing.Short() {
		for _, name := range []string{"rsa2048", "ec256"} {
			signed := signWholeFile(f, buildZip(f, updateEntries(), ""), key(f, name), "sha256", name == "ec256")
			f.Add(signed[len(signed)-600:])
		}
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		wf, err := parseFooter(tail, int64(len(tail)))
		if err != nil {
			return
		}
		if wf.SignedLen < 0 || wf.SignedLen > int64(len(tail)) || len(wf.PKCS7) > len(tail) {
			t.Fatalf("wholeFile = %+v for %d bytes", wf, len(tail))
		}
		if s, err := parseSigner(wf.PKCS7); err == nil {
			s.verify(func(h crypto.Hash) []byte { return make([]byte, h.Size()) }, nil)
		}
	})
}

func FuzzZipStructure(f *testing.F) {
	f.Add(buildZip(f, updateEntries(), ""))
	f.Add(buildZip(f, []entry{{"a", []byte("x")}, {"b/", nil}}, "comment"))
	f.Add(buildZip(f, nil, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		zi, err := checkZip(bytes.NewReader(data), int64(len(data)), []string{"a"})
		if err != nil {
			return
		}
		if zi.EOCD < 0 || zi.EOCD+eocdLen+int64(zi.CommentLen) != int64(len(data)) {
			t.Fatalf("zipInfo = %+v for %d bytes", zi, len(data))
		}
	})
}
