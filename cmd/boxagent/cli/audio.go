package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

func audioCmd() *Command {
	return &Command{
		Name: "audio", Short: "sound (PulseAudio or PipeWire): cards and headset modes, default devices, volume, a play-and-record test",
		Usage: "show | mode CARD music|call|off|PROFILE | default sink|source NAME | volume NAME PERCENT | mute NAME on|off | test [--seconds N] [--sink NAME] [--source NAME] [--no-play]",
		Verbs: []string{"show", "mode", "default", "volume", "mute", "test"},
		Long: `CARD is a card name (alsa_card.…, bluez_card.…) or a headset's Bluetooth
address. music is A2DP (stereo, no microphone); call is HFP, or HSP when
the headset has only that (mono, with the microphone); off frees the link.
After a switch the card's sink (and for call its source) become the
defaults. test plays a tone into the default sink (or --sink) and records
the default source (or --source; a sink's monitor is SINK.monitor), and
reports the recorded level: a silent microphone shows as 0 % non-zero.`,
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			o.values["seconds"] = fs.Float64("seconds", 3, "test: seconds to record")
			o.values["sink"] = fs.String("sink", "", "test: play into this sink (default: the default sink)")
			o.values["source"] = fs.String("source", "", "test: record from this source (default: the default source)")
			o.values["no-play"] = fs.Bool("no-play", false, "test: only record, play no tone")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: show, mode, default, volume, mute or test")
			}
			c := o.client()
			verb, args := args[0], args[1:]
			switch verb {
			case "show":
				if len(args) != 0 {
					return usagef("audio show takes no arguments")
				}
				s, err := c.Audio(ctx)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, s)
				}
				return printAudio(e, s)
			case "mode":
				if len(args) != 2 {
					return usagef("audio mode takes CARD and music, call, off or a profile")
				}
				res, op, err := c.AudioMode(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "%s: profile %s", res.Card, res.Profile)
				if res.Mode != "" {
					fmt.Fprintf(e.Stdout, " (%s)", res.Mode)
				}
				fmt.Fprintln(e.Stdout)
				if res.FallbackSink != "" {
					fmt.Fprintf(e.Stdout, "default sink:   %s\n", res.FallbackSink)
				}
				if res.FallbackSource != "" {
					fmt.Fprintf(e.Stdout, "default source: %s\n", res.FallbackSource)
				}
				if res.WaitedSeconds > 0 {
					fmt.Fprintf(e.Stderr, "waited %.1fs for the headset to offer the profile\n", res.WaitedSeconds)
				}
				return nil
			case "default":
				if len(args) != 2 || args[0] != "sink" && args[0] != "source" {
					return usagef("audio default takes sink or source, and a NAME")
				}
				_, op, err := c.AudioDefault(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "default %s: %s\n", args[0], args[1])
				return nil
			case "volume", "mute":
				if len(args) != 2 {
					return usagef("audio %s takes NAME and %s", verb, map[string]string{"volume": "PERCENT", "mute": "on or off"}[verb])
				}
				var pct *float64
				var mute *bool
				if verb == "volume" {
					v, err := strconv.ParseFloat(strings.TrimSuffix(args[1], "%"), 64)
					if err != nil || v < 0 || v > audio.MaxVolumePercent {
						return usagef("volume %q is not a percentage from 0 to %d", args[1], audio.MaxVolumePercent)
					}
					pct = &v
				} else {
					switch args[1] {
					case "on", "off":
						m := args[1] == "on"
						mute = &m
					default:
						return usagef("mute takes on or off, not %q", args[1])
					}
				}
				d, op, err := c.AudioVolume(ctx, args[0], pct, mute)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "%s: volume %s%s\n", d.Name, volumeText(d.Volume), map[bool]string{true: ", muted", false: ""}[d.Muted])
				return nil
			case "test":
				if len(args) != 0 {
					return usagef("audio test takes flags only")
				}
				play := !*o.values["no-play"].(*bool)
				req := apitype.AudioTestRequest{Seconds: *o.values["seconds"].(*float64), Sink: *o.values["sink"].(*string),
					Source: *o.values["source"].(*string), Play: &play}
				if req.Seconds <= 0 || req.Seconds > audio.MaxTestSeconds {
					return usagef("--seconds must be more than 0 and at most %d", audio.MaxTestSeconds)
				}
				res, op, err := c.AudioTest(ctx, req, func(p journal.Progress) {
					if !o.JSON {
						fmt.Fprintf(e.Stderr, "%s (%d/%ds)\n", p.Message, p.Done, p.Total)
					}
				})
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				return printAudioTest(e, res)
			}
			return usagef("unknown verb %q", verb)
		},
	}
}

func volumeText(v audio.Volume) string {
	s := fmt.Sprintf("%g%%", v.Percent)
	if v.DB != nil {
		s += fmt.Sprintf(" (%.2f dB)", *v.DB)
	} else {
		s += " (-inf dB)"
	}
	if len(v.Channels) > 1 {
		var per []string
		for _, c := range v.Channels {
			per = append(per, fmt.Sprintf("%g%%", c.Percent))
		}
		s += " [" + strings.Join(per, " ") + "]"
	}
	return s
}

func printAudio(e *Env, s audio.State) error {
	how, at := "D-Bus", s.Server.DBus
	if s.Server.Backend == audio.BackendPipeWire {
		how, at = "native protocol", s.Server.Native
	}
	fmt.Fprintf(e.Stdout, "server: %s %s (%s, %s at %s)\n", s.Server.Name, s.Server.Version, orDash(s.Server.Backend), how, at)
	fmt.Fprintf(e.Stdout, "default sink: %s\ndefault source: %s\n", orDash(s.FallbackSink), orDash(s.FallbackSource))
	if len(s.Cards) > 0 {
		fmt.Fprintln(e.Stdout)
		t := newTable(e.Stdout, "CARD", "PROFILE", "MODE", "PROFILES (* available)")
		for _, c := range s.Cards {
			var ps []string
			for _, p := range c.Profiles {
				n := p.Name
				if p.Available {
					n += "*"
				}
				ps = append(ps, n)
			}
			t.row(c.Name, c.ActiveProfile, orDash(c.Mode), strings.Join(ps, " "))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, group := range []struct {
		kind string
		ds   []audio.Device
	}{{"SINK", s.Sinks}, {"SOURCE", s.Sources}} {
		if len(group.ds) == 0 {
			continue
		}
		fmt.Fprintln(e.Stdout)
		t := newTable(e.Stdout, group.kind, "STATE", "VOLUME", "MUTE", "PORT", "CARD")
		for _, d := range group.ds {
			t.row(d.Name, d.State, volumeText(d.Volume), map[bool]string{true: "yes", false: "no"}[d.Muted], orDash(d.ActivePort), orDash(d.Card))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

func printAudioTest(e *Env, r audio.TestResult) error {
	l := r.Recorded
	db := func(p *float64) string {
		if p == nil {
			return "-inf"
		}
		return fmt.Sprintf("%.1f", *p)
	}
	if r.Sink != "" {
		fmt.Fprintf(e.Stdout, "played:   %g Hz tone into %s for %gs\n", r.ToneHz, r.Sink, r.PlayedSeconds)
	}
	fmt.Fprintf(e.Stdout, "recorded: %s for %gs (%d samples)\n", r.Source, l.Seconds, l.Samples)
	fmt.Fprintf(e.Stdout, "level:    RMS %s dBFS, peak %s dBFS, %.1f%% non-zero samples", db(l.RMSdBFS), db(l.PeakdBFS), l.NonZeroPercent)
	if l.FrequencyHz > 0 {
		fmt.Fprintf(e.Stdout, ", %.0f Hz", l.FrequencyHz)
	}
	fmt.Fprintln(e.Stdout)
	if l.Silent() {
		fmt.Fprintln(e.Stdout, "result:   SILENT: nothing was recorded")
		return errSilent
	}
	fmt.Fprintln(e.Stdout, "result:   sound recorded")
	return nil
}
