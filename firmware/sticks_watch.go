package firmware

import (
	"errors"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// ueventSource is where Watcher reads uevents: the netlink socket, or a
// test's list.
type ueventSource interface {
	read() (uevent, error)
	close() error
	// udevPending says udevd runs and has not finished with block device
	// majmin yet: its rules may still give the agent access.
	udevPending(majmin string) bool
}

// Watcher keeps the list of USB sticks current: a sysfs scan at start,
// then kernel uevents (NETLINK_KOBJECT_UEVENT), with a full rescan when
// the kernel reports it dropped some (ENOBUFS). It needs no udev; where
// udevd runs, the kernel's "add" comes before udev has given the node its
// group, so a stick whose node refused the agent is read again on udev's
// own "add" or "change" for the disk.
type Watcher struct {
	hp      HostPaths
	onEvent func(StickEvent)
	log     *slog.Logger
	src     ueventSource

	mu     sync.Mutex
	sticks map[string]Stick
	done   chan struct{}
}

// WatchOptions configure WatchSticks.
type WatchOptions struct {
	Paths HostPaths
	// OnEvent is called, from the watcher's goroutine, for every stick
	// added, removed or changed after the first scan.
	OnEvent func(StickEvent)
	Logger  *slog.Logger
}

// WatchSticks opens the uevent socket, then scans sysfs, so a stick
// plugged in between is seen either way.
func WatchSticks(o WatchOptions) (*Watcher, error) {
	c, err := openUevents()
	if err != nil {
		return nil, err
	}
	return newWatcher(o, c)
}

func newWatcher(o WatchOptions, src ueventSource) (*Watcher, error) {
	w := &Watcher{hp: o.Paths, onEvent: o.OnEvent, log: o.Logger, src: src,
		sticks: map[string]Stick{}, done: make(chan struct{})}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.onEvent == nil {
		w.onEvent = func(StickEvent) {}
	}
	found, err := Scan(w.hp)
	if err != nil {
		src.close()
		return nil, err
	}
	for _, s := range found {
		w.note(&s)
		w.sticks[s.Name] = s
	}
	go w.loop()
	return w, nil
}

// List returns the sticks present, by kernel name.
func (w *Watcher) List() []Stick {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Collect(maps.Values(w.sticks))
	slices.SortFunc(out, func(a, b Stick) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns the stick whose disk is name ("sda"), or that holds
// partition name ("sda1").
func (w *Watcher) Get(name string) (Stick, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.sticks[name]; ok {
		return s, true
	}
	for _, s := range w.sticks {
		if _, ok := s.Partition(name); ok {
			return s, true
		}
	}
	return Stick{}, false
}

// Close stops following uevents.
func (w *Watcher) Close() error {
	err := w.src.close()
	<-w.done
	return err
}

func (w *Watcher) loop() {
	defer close(w.done)
	for {
		ev, err := w.src.read()
		switch {
		case errors.Is(err, errOverrun):
			w.log.Warn("uevents were lost; rescanning the USB sticks")
			w.Rescan()
			continue
		case err != nil:
			if !errors.Is(err, os.ErrClosed) {
				w.log.Error("cannot read uevents; USB sticks are no longer followed", "err", err)
			}
			return
		}
		w.handle(ev)
	}
}

// handle applies one uevent. Only block devices matter: a disk added or
// removed, a medium changed, or a partition table re-read (its partitions
// come and go); from udev, only a disk whose node refused the agent.
func (w *Watcher) handle(ev uevent) {
	if ev.Subsystem != "block" {
		return
	}
	name := ev.DevName
	if ev.Udev {
		// udev's events repeat the kernel's, once its rules ran: they
		// matter only to a stick the agent could not open, and only the
		// disk's (the agent opens the disk's node, not its partitions').
		name = ev.DevPath[strings.LastIndexByte(ev.DevPath, '/')+1:]
		w.mu.Lock()
		s, known := w.sticks[name]
		w.mu.Unlock()
		if !known || !s.denied || ev.DevType != "disk" || ev.Action != "add" && ev.Action != "change" {
			return
		}
		w.log.Debug("udev has finished with a USB stick the agent could not open; reading it again", "name", name)
		ev.Action = "change"
	} else if ev.DevType == "partition" {
		// sdX1 -> its disk, from the devpath: …/block/sdX/sdX1
		parts := strings.Split(ev.DevPath, "/")
		if len(parts) < 2 {
			return
		}
		name = parts[len(parts)-2]
		w.mu.Lock()
		_, known := w.sticks[name]
		w.mu.Unlock()
		if !known {
			return
		}
		ev.Action = "change"
	}
	switch ev.Action {
	case "add", "change":
		s, ok := ReadStick(w.hp, name)
		if !ok {
			return
		}
		inspectStick(w.hp, &s)
		w.note(&s)
		w.mu.Lock()
		old, had := w.sticks[name]
		w.sticks[name] = s
		w.mu.Unlock()
		switch {
		case !had:
			w.emit(StickEvent{Type: StickAdded, Stick: s})
		case !reflect.DeepEqual(old, s):
			w.emit(StickEvent{Type: StickChanged, Stick: s})
		}
	case "remove":
		w.mu.Lock()
		old, had := w.sticks[name]
		delete(w.sticks, name)
		w.mu.Unlock()
		if had {
			w.emit(StickEvent{Type: StickRemoved, Stick: old})
		}
	}
}

// Rescan reads sysfs again and reports the differences as events.
func (w *Watcher) Rescan() {
	found, err := Scan(w.hp)
	if err != nil {
		w.log.Error("cannot rescan the USB sticks", "err", err)
		return
	}
	now := map[string]Stick{}
	for i := range found {
		w.note(&found[i])
		now[found[i].Name] = found[i]
	}
	w.mu.Lock()
	old := w.sticks
	w.sticks = now
	w.mu.Unlock()
	for name, s := range old {
		if _, ok := now[name]; !ok {
			w.emit(StickEvent{Type: StickRemoved, Stick: s})
		}
	}
	for _, s := range found {
		o, had := old[s.Name]
		switch {
		case !had:
			w.emit(StickEvent{Type: StickAdded, Stick: s})
		case !reflect.DeepEqual(o, s):
			w.emit(StickEvent{Type: StickChanged, Stick: s})
		}
	}
}

// note tells, in the Problem of a stick whose node refused the agent,
// that udev has not finished with it yet: udev's event will bring a new
// read. Once udev is done, or without udev, the refusal stands as is.
func (w *Watcher) note(s *Stick) {
	if s.denied && w.src.udevPending(s.MajMin) {
		s.Problem += " (waiting for udev to set its permissions)"
	}
}

func (w *Watcher) emit(ev StickEvent) {
	w.log.Info("USB stick "+ev.Type, "name", ev.Stick.Name, "serial", ev.Stick.Serial, "size", ev.Stick.Size)
	w.onEvent(ev)
}
