package audio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/jfreymuth/pulse"
	"github.com/jfreymuth/pulse/proto"
)

// Why the native protocol in-process (github.com/jfreymuth/pulse)
// rather than pacat and parec children: the agent stays one static binary
// that needs no pulseaudio-utils on the box, nothing outlives the agent
// (no child to bind with Pdeathsig or reap), and the samples arrive as
// numbers the level check reads directly, with no WAV parsing or pipes.
// The library's high-level streams are used; its PlaybackStream.Start
// waits for PulseAudio's "started" message without a deadline, so it runs
// in its own goroutine and the recording's clock bounds the test.

// TestOptions describe a play-and-record test.
type TestOptions struct {
	// Native is the native-protocol server string ("unix:/run/pulse/native"
	// or a path); empty means PULSE_SERVER or $XDG_RUNTIME_DIR/pulse/native.
	Native string
	// Play plays a tone into Sink ("" = the fallback sink) while recording.
	Play bool
	Sink string
	// Source is recorded ("" = the fallback source). To hear what a sink
	// plays, record its monitor: "SINK.monitor".
	Source string
	// Seconds of recording (default 2, at most 60).
	Seconds float64
	// Frequency of the tone in Hz (default 440).
	Frequency float64
	// Progress, when set, is told each second how far the test is.
	Progress func(message string, done, total int64)
}

// setRequestTimeout gives the library's requests d instead of the 1 s
// proto.Connect sets, which pulse.NewClient offers no option to change:
// pipewire-pulse answers CREATE_RECORD_STREAM only once WirePlumber has
// linked the new stream, which took longer than 1 s on the virtual board
// ("context deadline exceeded" before the stream existed). The field is
// reached by reflection, checked by name and type, so a library that
// renames it makes this say false (and TestSetRequestTimeout fail) rather
// than go back to 1 s unseen.
func setRequestTimeout(pc *pulse.Client, d time.Duration) bool {
	f := reflect.ValueOf(pc).Elem().FieldByName("c")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*proto.Client]() || f.IsNil() {
		return false
	}
	(*(**proto.Client)(unsafe.Pointer(f.UnsafeAddr()))).SetTimeout(d)
	return true
}

// connectNative connects with newClient, trying once more on the two
// failures that a second try cures:
//
//   - a deadline: the library's connect waits 1 s for each answer, a
//     limit it does not let us change (setRequestTimeout comes after); a
//     loaded pipewire-pulse, which opens a PipeWire connection for each
//     new client, can miss it.
//   - access denied when the agent is in the auth group: PulseAudio reads
//     the client's credentials from the Auth packet, but the kernel
//     attaches them to data sent before PulseAudio set SO_PASSCRED on the
//     accepted socket only while the socket is not yet accepted; between
//     accept and setsockopt the packet arrives as uid 65534 ("Got
//     credentials: uid=65534 … success=0", seen on the loaded virtual
//     board). libpulse sends SCM_CREDENTIALS itself with its first
//     packet; github.com/jfreymuth/pulse dials with net.Dial and does not.
//     By the second connection PulseAudio is quicker.
func connectNative(newClient func() (*pulse.Client, error)) (*pulse.Client, error) {
	pc, err := newClient()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, proto.ErrAccessDenied) {
		pc, err = newClient()
	}
	return pc, err
}

// MaxTestSeconds bounds a test's recording.
const MaxTestSeconds = 60

// startTimeout bounds the wait for playback to start.
const startTimeout = 10 * time.Second

// testRate is the sample rate of the test's streams (mono, s16).
const testRate = 48000

// Level describes recorded samples.
type Level struct {
	Samples int     `json:"samples"`
	Seconds float64 `json:"seconds"`
	// RMS and Peak are fractions of full scale (0..1).
	RMS  float64 `json:"rms"`
	Peak float64 `json:"peak"`
	// RMSdBFS and PeakdBFS are nil for pure silence (-inf).
	RMSdBFS  *float64 `json:"rms_dbfs"`
	PeakdBFS *float64 `json:"peak_dbfs"`
	// NonZeroPercent is the share of samples that are not 0: a silent
	// microphone records 0 % or near it.
	NonZeroPercent float64 `json:"nonzero_percent"`
	// FrequencyHz is the dominant frequency, estimated from zero
	// crossings over the part that holds sound; 0 when silent.
	FrequencyHz float64 `json:"frequency_hz"`
}

// Silent says whether the recording holds no sound worth the name.
func (l Level) Silent() bool { return l.Peak < 1.0/1024 }

// TestResult is what a play-and-record test measured.
type TestResult struct {
	Sink          string  `json:"sink,omitempty"`
	Source        string  `json:"source"`
	ToneHz        float64 `json:"tone_hz,omitempty"`
	PlayedSeconds float64 `json:"played_seconds,omitempty"`
	Recorded      Level   `json:"recorded"`
}

// PlayRecord records from a source for opts.Seconds, playing a tone into
// a sink at the same time when opts.Play is set, and measures the level.
func PlayRecord(ctx context.Context, opts TestOptions) (TestResult, error) {
	if opts.Seconds == 0 {
		opts.Seconds = 2
	}
	if opts.Frequency == 0 {
		opts.Frequency = 440
	}
	var res TestResult
	if opts.Seconds < 0 || opts.Seconds > MaxTestSeconds || opts.Seconds != opts.Seconds {
		return res, &Error{Op: "run the audio test", Kind: ErrInvalid, Msg: fmt.Sprintf("seconds must be more than 0 and at most %d", MaxTestSeconds)}
	}
	if opts.Frequency < 20 || opts.Frequency > testRate/4 {
		return res, &Error{Op: "run the audio test", Kind: ErrInvalid, Msg: fmt.Sprintf("the tone must be 20 to %d Hz", testRate/4)}
	}
	copts := []pulse.ClientOption{pulse.ClientApplicationName("boxagent")}
	if opts.Native != "" {
		copts = append(copts, pulse.ClientServerString(opts.Native))
	}
	pc, err := connectNative(func() (*pulse.Client, error) { return pulse.NewClient(copts...) })
	if err != nil {
		e := &Error{Op: "connect to PulseAudio's native protocol " + opts.Native, Kind: ErrUnreachable, Msg: err.Error(),
			Hint: "PulseAudio must load module-native-protocol-unix (deploy/pulseaudio/system.pa)"}
		if errors.Is(err, proto.ErrAccessDenied) {
			e.Hint = "the agent needs PulseAudio's cookie (PULSE_COOKIE) or the pulse-access group (deploy/pulseaudio/README.md)"
		}
		return res, e
	}
	defer pc.Close()
	if !setRequestTimeout(pc, startTimeout) {
		return res, &Error{Op: "run the audio test", Msg: "cannot set the native protocol's request timeout (github.com/jfreymuth/pulse changed)"}
	}

	src, err := func() (*pulse.Source, error) {
		if opts.Source == "" {
			return pc.DefaultSource()
		}
		return pc.SourceByID(opts.Source)
	}()
	if err != nil {
		return res, streamError("find source "+orFallback(opts.Source), err)
	}
	res.Source = src.ID()
	var mu sync.Mutex
	recorded := make([]int16, 0, int(opts.Seconds*testRate)+testRate)
	taking := false
	// The recording ends when it holds opts.Seconds of audio, not when
	// that much wall-clock time has passed: on a loaded board PulseAudio
	// delivers late, and a clock-bound test would measure less than asked.
	want := int(opts.Seconds * testRate)
	full := make(chan struct{})
	rec, err := pc.NewRecord(pulse.Int16Writer(func(buf []int16) (int, error) {
		mu.Lock()
		if taking && len(recorded) < want {
			recorded = append(recorded, buf[:min(len(buf), want-len(recorded))]...)
			if len(recorded) == want {
				close(full)
			}
		}
		mu.Unlock()
		return len(buf), nil
	}), pulse.RecordSource(src), pulse.RecordSampleRate(testRate), pulse.RecordLatency(0.05),
		pulse.RecordMediaName("boxagent audio test"))
	if err != nil {
		return res, streamError("record from "+res.Source, err)
	}
	defer rec.Close()

	var play *pulse.PlaybackStream
	var played int
	if opts.Play {
		sink, err := func() (*pulse.Sink, error) {
			if opts.Sink == "" {
				return pc.DefaultSink()
			}
			return pc.SinkByID(opts.Sink)
		}()
		if err != nil {
			return res, streamError("find sink "+orFallback(opts.Sink), err)
		}
		res.Sink, res.ToneHz = sink.ID(), opts.Frequency
		// The tone lasts a little longer than the recording, so the
		// recording never catches its end.
		total := int((opts.Seconds + 1) * testRate)
		step := 2 * math.Pi * opts.Frequency / testRate
		play, err = pc.NewPlayback(pulse.Int16Reader(func(buf []int16) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for n < len(buf) && played < total {
				buf[n] = int16(0.5 * 32767 * math.Sin(step*float64(played)))
				n++
				played++
			}
			if played >= total {
				return n, pulse.EndOfData
			}
			return n, nil
		}), pulse.PlaybackSink(sink), pulse.PlaybackSampleRate(testRate), pulse.PlaybackLatency(0.25),
			pulse.PlaybackMediaName("boxagent test tone"))
		if err != nil {
			return res, streamError("play into "+res.Sink, err)
		}
		defer play.Close()
	}

	rec.Start()
	if play != nil {
		// The library's Start waits for PulseAudio's "started" message
		// with no deadline: wait for it here with one. The measurement
		// begins once the tone plays, so what comes before (a sink
		// waking up) does not count.
		started := make(chan struct{})
		go func() { play.Start(); close(started) }()
		select {
		case <-started:
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(startTimeout):
			return res, &Error{Op: "play into " + res.Sink, Kind: ErrUnavailable,
				Msg: fmt.Sprintf("PulseAudio did not start the tone within %s", startTimeout), Hint: "is the sink suspended or its card off?"}
		}
	}
	mu.Lock()
	taking = true
	mu.Unlock()
	// A source that stalls ends the test at twice its length plus a
	// margin, with what was recorded by then.
	dur := time.Duration(opts.Seconds * float64(time.Second))
	total := int64(math.Ceil(opts.Seconds))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(2*dur + startTimeout)
	defer deadline.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-full:
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
			if opts.Progress != nil {
				mu.Lock()
				got := int64(len(recorded) / testRate)
				mu.Unlock()
				opts.Progress("recording from "+res.Source, got, total)
			}
		}
	}
	mu.Lock()
	taking = false
	samples := recorded
	if opts.Play {
		res.PlayedSeconds = math.Round(float64(min(played, int(opts.Seconds*testRate)))/testRate*100) / 100
	}
	mu.Unlock()
	if err := rec.Error(); err != nil {
		return res, streamError("record from "+res.Source, err)
	}
	res.Recorded = Measure(samples, testRate)
	if opts.Progress != nil {
		opts.Progress("recorded from "+res.Source, total, total)
	}
	return res, nil
}

// Measure computes the level of mono samples recorded at rate Hz.
func Measure(s []int16, rate int) Level {
	l := Level{Samples: len(s)}
	if rate > 0 {
		l.Seconds = math.Round(float64(len(s))/float64(rate)*100) / 100
	}
	if len(s) == 0 {
		return l
	}
	var sum float64
	var peak, nonzero int
	first, last := -1, -1
	const threshold = 32 // below this a sample is noise, not sound
	for i, v := range s {
		x := int(v)
		if x != 0 {
			nonzero++
		}
		if x < 0 {
			x = -x
		}
		if x > peak {
			peak = x
		}
		if x > threshold {
			if first < 0 {
				first = i
			}
			last = i
		}
		sum += float64(v) * float64(v)
	}
	l.RMS = round4(math.Sqrt(sum/float64(len(s))) / 32768)
	l.Peak = round4(float64(peak) / 32768)
	l.RMSdBFS = dbfs(math.Sqrt(sum/float64(len(s))) / 32768)
	l.PeakdBFS = dbfs(float64(peak) / 32768)
	l.NonZeroPercent = math.Round(float64(nonzero)*1000/float64(len(s))) / 10
	if first >= 0 && last > first && rate > 0 {
		// Periods between rising zero crossings, with hysteresis so noise
		// does not count; the median period is robust to gaps (an
		// underrun, a dropped packet).
		var periods []int
		low := false
		prev := -1
		for i := first; i <= last; i++ {
			v := int(s[i])
			if v < -threshold {
				low = true
			} else if v > threshold && low {
				low = false
				if prev >= 0 {
					periods = append(periods, i-prev)
				}
				prev = i
			}
		}
		if len(periods) > 0 {
			slices.Sort(periods)
			med := periods[len(periods)/2]
			// Average the periods near the median for sub-sample precision.
			var sum, n int
			for _, p := range periods {
				if p >= med-1 && p <= med+1 {
					sum += p
					n++
				}
			}
			l.FrequencyHz = math.Round(float64(rate)*float64(n)/float64(sum)*10) / 10
		}
	}
	return l
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

func dbfs(x float64) *float64 {
	if x <= 0 {
		return nil
	}
	d := math.Round(20*math.Log10(x)*100) / 100
	return &d
}

func orFallback(s string) string {
	if s == "" {
		return "(the default)"
	}
	return s
}

// streamError keeps the native protocol's own words.
func streamError(op string, err error) error {
	e := &Error{Op: op, Msg: err.Error()}
	var pe proto.Error
	if errors.As(err, &pe) {
		switch pe {
		case proto.ErrNoSuchEntity:
			e.Kind = ErrNotFound
			e.Hint = "boxagent audio show lists the sinks and sources"
		case proto.ErrAccessDenied:
			e.Kind = ErrUnreachable
			e.Hint = "the native socket refuses the agent: see auth-group in deploy/pulseaudio/system.pa"
		}
	}
	return e
}
