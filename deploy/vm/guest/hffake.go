package guest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// HFFake is a fake: the headset firmware the virtual board lacks.
// PulseAudio implements only the audio gateway (AG) side of HFP, so
// nothing on the headset-side controller (hci1) would answer it. The fake
// registers a Profile1 for the hands-free role (UUID 0x111e, Role=server)
// through ProfileManager1 before pairing, speaks the HF side of the
// service level connection on the RFCOMM socket bluetoothd hands over
// (including AT+BCS, without which PulseAudio never makes the profile
// available), and accepts the SCO link on hci1: it counts what the board
// plays and sends a 1 kHz tone (HFToneHz) back, paced to 8 kHz s16 (16 000 B/s:
// btvirt has no air clock, an unpaced sender floods it), so that the
// board's recording from the headset's microphone holds something. Its
// log is LogDir/hf-fake.log.
//
// Used by audio's headset tests and by the field engineer's day
// (deploy/systemd); the record must be registered before the pairing,
// when the board reads the headset side's SDP.
type HFFake struct {
	t      testing.TB
	accept string // device paths it serves: the headset side's
	logf   *os.File
	logMu  sync.Mutex

	slcDone chan struct{} // closed when the SLC is up
	slcOnce sync.Once
	// holdBCS, when not nil, holds the answer to PulseAudio's codec
	// selection (+BCS) until it is closed: until then PulseAudio keeps
	// the HFP profile unavailable, as with a headset still setting up.
	holdBCS     chan struct{}
	releaseOnce sync.Once
	bcsAsked    chan struct{} // closed at the first +BCS
	bcsOnce     sync.Once
	scoUp       chan struct{} // closed at the first SCO link
	scoOnce     sync.Once

	rx, rxNonZero, tx atomic.Int64

	// conn and opts register the profile again after a bluetoothd
	// restart (the registration goes with the daemon).
	conn *dbus.Conn
	opts map[string]dbus.Variant
}

// Register registers the HF profile with bluetoothd again, as after a
// bluetoothd restart (the registration goes with the daemon).
func (f *HFFake) Register() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.conn.Object("org.bluez", "/org/bluez").CallWithContext(ctx, "org.bluez.ProfileManager1.RegisterProfile", 0, hfPath, hfUUID, f.opts).Err
}

// SLCDone is closed once the HFP service level connection is up.
func (f *HFFake) SLCDone() <-chan struct{} { return f.slcDone }

// BCSAsked is closed at the sound server's first codec selection (+BCS).
func (f *HFFake) BCSAsked() <-chan struct{} { return f.bcsAsked }

// ReleaseBCS lets a fake started with holdBCS answer the codec selection;
// it may be called more than once, and does nothing on a fake that does
// not hold.
func (f *HFFake) ReleaseBCS() {
	if f.holdBCS != nil {
		f.releaseOnce.Do(func() { close(f.holdBCS) })
	}
}

// SCOUp is closed at the first SCO link the fake accepts.
func (f *HFFake) SCOUp() <-chan struct{} { return f.scoUp }

// Received is how many bytes of SCO audio the board sent the fake so far,
// and how many of them were not zero (the board's tone, not silence).
func (f *HFFake) Received() (n, nonZero int64) { return f.rx.Load(), f.rxNonZero.Load() }

// Sent is how many bytes of its tone the fake sent the board so far.
func (f *HFFake) Sent() int64 { return f.tx.Load() }

const (
	hfUUID     = "0000111e-0000-1000-8000-00805f9b34fb"
	hfPath     = dbus.ObjectPath("/org/boxagent/lab/hf")
	hfFeatures = 0x80 // codec negotiation: PulseAudio sends +BCS
	// hfToneRate is CVSD's PCM: 8 kHz, s16le, mono.
	hfToneRate = 8000
	// HFToneHz is the tone the fake sends as the headset's microphone.
	HFToneHz = 1000
	// btDeferSetup is BT_DEFER_SETUP (bluetooth.h), not in x/sys/unix.
	btDeferSetup = 7
)

// StartHFFake registers the fake on the system bus at busAddr (bluetoothd
// must run) and listens for SCO on the headset side's address
// (BtvirtAddr1). With holdBCS it answers PulseAudio's codec selection only
// once ReleaseBCS is called.
func StartHFFake(t testing.TB, busAddr string, holdBCS bool) *HFFake {
	t.Helper()
	f := &HFFake{t: t, accept: "/org/bluez/hci1/", slcDone: make(chan struct{}), scoUp: make(chan struct{}), bcsAsked: make(chan struct{})}
	if holdBCS {
		f.holdBCS = make(chan struct{})
	}
	var err error
	if f.logf, err = os.Create(filepath.Join(LogDir(t), "hf-fake.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.logf.Close() })
	conn, err := dbus.Connect(busAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(hfProfile{f}, hfPath, "org.bluez.Profile1"); err != nil {
		t.Fatal(err)
	}
	opts := map[string]dbus.Variant{
		"Name": dbus.MakeVariant("boxagent lab HF fake"), "Role": dbus.MakeVariant("server"),
		"Version": dbus.MakeVariant(uint16(0x0107)), "Features": dbus.MakeVariant(uint16(hfFeatures)),
		"RequireAuthentication": dbus.MakeVariant(false), "RequireAuthorization": dbus.MakeVariant(false),
	}
	f.conn, f.opts = conn, opts
	if err := f.Register(); err != nil {
		t.Fatalf("RegisterProfile HF: %v", err)
	}
	f.logln("registered the HF profile")
	f.listenSCO(BtvirtAddr1)
	return f
}

func (f *HFFake) logln(format string, args ...any) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	fmt.Fprintf(f.logf, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// hfProfile is the exported org.bluez.Profile1.
type hfProfile struct{ f *HFFake }

func (p hfProfile) Release() *dbus.Error { p.f.logln("Release"); return nil }

func (p hfProfile) RequestDisconnection(dev dbus.ObjectPath) *dbus.Error {
	p.f.logln("RequestDisconnection %s", dev)
	return nil
}

// NewConnection: one bluetoothd owns both controllers, so the record is on
// both adapters; only the headset side's connections are the fake's.
func (p hfProfile) NewConnection(dev dbus.ObjectPath, fd dbus.UnixFD, props map[string]dbus.Variant) *dbus.Error {
	p.f.logln("NewConnection %s fd %d", dev, fd)
	if !strings.HasPrefix(string(dev), p.f.accept) {
		unix.Close(int(fd))
		return dbus.NewError("org.bluez.Error.Rejected", []any{"not the headset side"})
	}
	if err := unix.SetNonblock(int(fd), true); err != nil {
		unix.Close(int(fd))
		return dbus.NewError("org.bluez.Error.Failed", []any{err.Error()})
	}
	go p.f.slc(os.NewFile(uintptr(fd), "rfcomm"))
	return nil
}

// slc speaks the HF side: AT+BRSF, AT+BAC, AT+CIND=?, AT+CIND?, AT+CMER,
// then answers +BCS with AT+BCS until the link closes.
func (f *HFFake) slc(rf *os.File) {
	defer rf.Close()
	r := bufio.NewReader(rf)
	line := func() (string, error) {
		for {
			rf.SetReadDeadline(time.Now().Add(30 * time.Second))
			l, err := r.ReadString('\n')
			if l = strings.TrimSpace(l); l != "" {
				f.logln("<< %s", l)
				return l, nil
			}
			if err != nil {
				return "", err
			}
		}
	}
	send := func(cmd string) error {
		f.logln(">> %s", cmd)
		_, err := rf.Write([]byte(cmd + "\r"))
		return err
	}
	cmd := func(c string) ([]string, error) {
		if err := send(c); err != nil {
			return nil, err
		}
		var out []string
		for {
			l, err := line()
			if err != nil {
				return out, err
			}
			if l == "OK" || l == "ERROR" || strings.HasPrefix(l, "+CME ERROR") {
				return out, nil
			}
			out = append(out, l)
		}
	}
	out, err := cmd(fmt.Sprintf("AT+BRSF=%d", hfFeatures))
	var ag int
	if len(out) > 0 {
		ag, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out[0], "+BRSF:")))
	}
	for _, c := range []string{"AT+BAC=1", "AT+CIND=?", "AT+CIND?", "AT+CMER=3,0,0,1"} {
		if err != nil {
			break
		}
		if c == "AT+BAC=1" && ag&0x200 == 0 {
			continue // the AG does not negotiate codecs
		}
		_, err = cmd(c)
	}
	if err != nil {
		f.logln("SLC failed: %v", err)
		return
	}
	f.logln("SLC established (AG features %#x)", ag)
	f.slcOnce.Do(func() { close(f.slcDone) })
	for {
		rf.SetReadDeadline(time.Time{})
		l, err := r.ReadString('\n')
		if l = strings.TrimSpace(l); l != "" {
			f.logln("<< %s", l)
			if n, ok := strings.CutPrefix(l, "+BCS:"); ok {
				f.bcsOnce.Do(func() { close(f.bcsAsked) })
				if f.holdBCS != nil {
					f.logln("holding AT+BCS until the test lets the headset answer")
					<-f.holdBCS
				}
				send("AT+BCS=" + strings.TrimSpace(n))
			}
		}
		if err != nil {
			f.logln("SLC ended: %v", err)
			return
		}
	}
}

// listenSCO accepts SCO links on addr (sockaddr_sco has no type in
// x/sys/unix: bind and accept are raw system calls).
func (f *HFFake) listenSCO(addr string) {
	t := f.t
	fd, err := unix.Socket(unix.AF_BLUETOOTH, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.BTPROTO_SCO)
	if err != nil {
		t.Fatalf("SCO socket: %v", err)
	}
	var sa [8]byte // sa_family_t family; bdaddr_t (little endian)
	binary.LittleEndian.PutUint16(sa[:], unix.AF_BLUETOOTH)
	for i, b := range strings.Split(addr, ":") {
		v, _ := strconv.ParseUint(b, 16, 8)
		sa[2+5-i] = byte(v)
	}
	if _, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa))); e != 0 {
		unix.Close(fd)
		t.Fatalf("bind SCO %s: %v", addr, e)
	}
	// Deferred setup, as PipeWire's own SCO listener has it: PipeWire
	// listens on BDADDR_ANY with BT_DEFER_SETUP, and the kernel takes the
	// defer decision from that listener but hands the link to this one,
	// bound to the exact address; without the flag here nobody accepts
	// the HCI link (silence both ways). With it, the first read after
	// accept accepts the link, whichever listener the kernel consults.
	// Only after bind (EINVAL before) and before listen.
	if err := unix.SetsockoptInt(fd, unix.SOL_BLUETOOTH, btDeferSetup, 1); err != nil {
		unix.Close(fd)
		t.Fatalf("BT_DEFER_SETUP on the SCO socket: %v", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		t.Fatalf("listen SCO: %v", err)
	}
	lf := os.NewFile(uintptr(fd), "sco-listen")
	t.Cleanup(func() { lf.Close() })
	rc, err := lf.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	f.logln("SCO listening on %s", addr)
	go func() {
		for {
			var nfd int
			var aerr error
			err := rc.Read(func(s uintptr) bool {
				r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, s, 0, 0, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0, 0)
				if e == unix.EAGAIN {
					return false
				}
				nfd, aerr = int(r), nil
				if e != 0 {
					aerr = e
				}
				return true
			})
			if err != nil {
				return // closed at cleanup
			}
			if aerr != nil {
				f.logln("SCO accept: %v", aerr)
				return
			}
			// The deferred link is accepted by a first read (it returns
			// 0); it is usable once the socket is writable.
			var b [1]byte
			n, rerr := unix.Read(nfd, b[:])
			pfd := []unix.PollFd{{Fd: int32(nfd), Events: unix.POLLOUT}}
			pn, perr := unix.Poll(pfd, 5000)
			f.logln("SCO link accepted (deferred: read %d %v; writable %d %v, revents %#x)", n, rerr, pn, perr, pfd[0].Revents)
			f.scoOnce.Do(func() { close(f.scoUp) })
			go f.scoIO(os.NewFile(uintptr(nfd), "sco"))
		}
	}()
}

// scoIO counts what arrives and sends the paced tone until the link
// closes.
func (f *HFFake) scoIO(s *os.File) {
	defer s.Close()
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := s.Read(buf)
			if err != nil {
				f.logln("SCO closed: rx %d bytes (%d non-zero), tx %d bytes: %v", f.rx.Load(), f.rxNonZero.Load(), f.tx.Load(), err)
				s.Close()
				return
			}
			f.rx.Add(int64(n))
			for _, b := range buf[:n] {
				if b != 0 {
					f.rxNonZero.Add(1)
				}
			}
		}
	}()
	// 48-byte packets (24 samples, three periods of 1 kHz at 8 kHz),
	// paced by elapsed time: the fake is the headset's air clock.
	pkt := make([]byte, 48)
	for i := range 24 {
		v := int16(8000 * math.Sin(2*math.Pi*HFToneHz*float64(i)/hfToneRate))
		binary.LittleEndian.PutUint16(pkt[2*i:], uint16(v))
	}
	// The pace counts this link's bytes, not the fake's total: with the
	// total, a second link stayed silent for as long as the first had
	// lasted, and PulseAudio's HFP I/O, which writes only once the
	// headset has sent, did not start a test tone within its 10 s
	// (docs/FLAKES.md).
	start := time.Now()
	var sent int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		for sent < int64(time.Since(start).Seconds()*2*hfToneRate) {
			if _, err := s.Write(pkt); err != nil {
				if !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
					f.logln("SCO write: %v", err)
				}
				return
			}
			sent += int64(len(pkt))
			f.tx.Add(int64(len(pkt)))
		}
	}
}
