package firmware

import (
	"os"
	"strings"
	"testing"
)

// FuzzUevent: any datagram on the kernel's or udev's uevent socket (a
// process on the box can send to udev's group) decodes or is dropped,
// never a panic; a decoded one has no NUL inside its fields.
func FuzzUevent(f *testing.F) {
	f.Add([]byte("add@/devices/pci0000:00/usb1/1-1/host0/block/sda\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/usb1/1-1/host0/block/sda\x00SUBSYSTEM=block\x00DEVNAME=sda\x00DEVTYPE=disk\x00MAJOR=8\x00MINOR=0\x00SEQNUM=1\x00"))
	f.Add(append([]byte("libudev\x00\xfe\xed\xca\xfe"), make([]byte, 32)...))
	f.Add([]byte("remove@/x\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (uevent, bool){parseMessage, parseUdevMessage} {
			u, ok := parse(b)
			if !ok {
				continue
			}
			for _, s := range []string{u.Action, u.DevPath, u.Subsystem, u.DevType, u.DevName} {
				if strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("a NUL inside a field of %+v", u)
				}
			}
		}
	})
}

// FuzzMountinfo: any line of /proc/self/mountinfo (a mount point's name is
// the user's: a stick's label) decodes or is refused; unescaping never
// grows a path.
func FuzzMountinfo(f *testing.F) {
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`)
	f.Add(`40 25 8:1 / /media/MY\040STICK rw,nosuid shared:7 - vfat /dev/sda1 rw,fmask=0022`)
	f.Add(`1 2 3:4 / /a\134\ rw - x y`)
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := parseMountinfo(line)
		if !ok {
			return
		}
		if len(m.Dir) > len(line) || len(m.Source) > len(line) {
			t.Fatalf("unescaped %+v is longer than its line %q", m, line)
		}
		if unescapeMount(m.Dir) == "" && m.Dir != "" {
			t.Fatalf("unescaping %q twice lost it all", m.Dir)
		}
	})
}

// FuzzKeyFiles: a key or certificate file in the image's key folder (the
// boot partition is anyone's at flash time) is loaded or refused, never a
// panic.
func FuzzKeyFiles(f *testing.F) {
	k := key(f, "rsa2048")
	cert, err := os.ReadFile(k.certPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// No certificate and no error is LoadCerts' ErrNoCerts.
		if cs, err := parseCerts(b); err == nil {
			for _, c := range cs {
				if c == nil {
					t.Fatal("a nil certificate")
				}
			}
		}
		parseEd25519(b)
		newMinisignChecker(nil, b)
	})
}
