package audio

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestMeasure(t *testing.T) {
	s := make([]int16, 48000)
	for i := range s {
		s[i] = int16(16384 * math.Sin(2*math.Pi*1000*float64(i)/48000))
	}
	l := Measure(s, 48000)
	if l.FrequencyHz < 995 || l.FrequencyHz > 1005 || l.Peak != 0.5 || *l.PeakdBFS != -6.02 || *l.RMSdBFS != -9.03 || l.Seconds != 1 {
		t.Errorf("sine: %+v", l)
	}
	z := Measure(make([]int16, 100), 48000)
	if !z.Silent() || z.RMSdBFS != nil || z.NonZeroPercent != 0 || z.FrequencyHz != 0 {
		t.Errorf("silence: %+v", z)
	}
	if e := Measure(nil, 48000); e.Samples != 0 {
		t.Errorf("empty: %+v", e)
	}
}

func TestVolumeConversions(t *testing.T) {
	v := newVolume([]uint32{VolumeNorm, VolumeNorm / 2, 0})
	if v.Percent != 100 || *v.DB != 0 || v.Channels[1].Percent != 50 || *v.Channels[1].DB != -18.06 || v.Channels[2].DB != nil {
		t.Errorf("%+v", v)
	}
	if rawVolume(150) != 98304 {
		t.Errorf("150%% = %d", rawVolume(150))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Server: "system"}, {Server: "user"}, {Server: "unix:path=/run/pulse/dbus-socket", Native: "/run/pulse/native"}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	err := Config{Server: "pulse", Native: "native", ModeTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	keys := map[string]bool{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		keys[e.(interface{ ConfigKey() string }).ConfigKey()] = true
	}
	if !keys["server"] || !keys["native"] || !keys["mode_timeout"] {
		t.Errorf("keys %v from %v", keys, err)
	}
}

func TestCardName(t *testing.T) {
	if got := CardName("00:1b:66:aa:bb:cc"); got != "bluez_card.00_1B_66_AA_BB_CC" {
		t.Error(got)
	}
	if got := CardName("alsa_card.dummy"); got != "alsa_card.dummy" {
		t.Error(got)
	}
}

func TestCandidates(t *testing.T) {
	env := map[string]string{"PULSE_DBUS_SERVER": "unix:path=/x/dbus-socket", "XDG_RUNTIME_DIR": "/run/user/7"}
	l := Locator{Getenv: func(k string) string { return env[k] }, RunDir: "/r"}
	var got []string
	for _, s := range l.Candidates(context.Background()) {
		got = append(got, s.How+"="+s.DBus+"|"+s.Native)
	}
	want := "PULSE_DBUS_SERVER=unix:path=/x/dbus-socket|/x/native system=unix:path=/r/pulse/dbus-socket|/r/pulse/native XDG_RUNTIME_DIR=unix:path=/run/user/7/pulse/dbus-socket|/run/user/7/pulse/native"
	if strings.Join(got, " ") != want {
		t.Errorf("auto:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	l.Config = Config{Server: "system", Native: "/n"}
	if c := l.Candidates(context.Background()); len(c) != 1 || c[0].Native != "/n" {
		t.Errorf("system: %+v", c)
	}
}

func TestHeadsetAddress(t *testing.T) {
	for card, want := range map[string]string{
		"bluez_card.00_1B_66_AA_BB_CC": "00:1B:66:AA:BB:CC",
		"bluez_card.00_1b_66_aa_bb_cc": "00:1B:66:AA:BB:CC",
		"alsa_card.dummy":              "",
		"bluez_card.dummy":             "",
		"00_1B_66_AA_BB_CC":            "",
	} {
		got, ok := HeadsetAddress(card)
		if got != want || ok != (want != "") {
			t.Errorf("HeadsetAddress(%q) = %q, %v; want %q", card, got, ok, want)
		}
		if ok && CardName(got) != "bluez_card."+strings.ToUpper(card[len("bluez_card."):]) {
			t.Errorf("CardName(%q) = %q", got, CardName(got))
		}
	}
}
