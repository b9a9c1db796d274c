package firmware

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSeveralSticks: no device was named and more than one stick is plugged
// in, so which one to use is the caller's to say.
var ErrSeveralSticks = errors.New("several USB sticks are plugged in")

// ChooseStick finds the stick dev names, as a disk ("sda") or one of its
// partitions ("sda1"), with or without /dev/; with dev empty, the only
// stick present. None that fits is ErrNoStick; several with dev empty are
// ErrSeveralSticks, the message naming them.
func ChooseStick(sticks []Stick, dev string) (Stick, error) {
	if dev != "" {
		dev = strings.TrimPrefix(dev, "/dev/")
		for _, s := range sticks {
			if _, ok := s.Partition(dev); ok || s.Name == dev {
				return s, nil
			}
		}
		return Stick{}, fmt.Errorf("%w: no USB stick %s", ErrNoStick, dev)
	}
	switch len(sticks) {
	case 0:
		return Stick{}, fmt.Errorf("%w is plugged in", ErrNoStick)
	case 1:
		return sticks[0], nil
	}
	names := make([]string, len(sticks))
	for i, s := range sticks {
		names[i] = s.Name
	}
	return Stick{}, fmt.Errorf("%w (%s)", ErrSeveralSticks, strings.Join(names, ", "))
}

// ChoosePartition is the partition of st a staging onto dev uses, and its
// kernel name: the partition dev names ("sda1", with or without /dev/),
// or, when dev is empty or names the disk itself, the first one the
// board's recovery can read (Disk.Pick). A named partition is not checked
// for its filesystem here; Stage checks it.
func ChoosePartition(st Stick, dev string, t Target) (Partition, string, error) {
	dev = strings.TrimPrefix(dev, "/dev/")
	if dev == st.Name {
		dev = ""
	}
	if dev != "" {
		p, ok := st.Partition(dev)
		if !ok {
			return p, "", fmt.Errorf("%w: %s is not a partition of %s", ErrNoStick, dev, st.Name)
		}
		return p, dev, nil
	}
	p, err := st.Disk.Pick(t.Filesystems...)
	if err != nil {
		return p, "", err
	}
	return p, st.PartitionDevice(p), nil
}

// choose is ChoosePartition for Stage, which refuses besides a stick that
// could not be inspected and a named partition whose filesystem the
// board's recovery cannot read.
func choose(st Stick, dev string, t Target) (Partition, string, error) {
	if st.Problem != "" {
		return Partition{}, "", &StickError{ErrNoFilesystem, fmt.Sprintf("cannot read the stick %s: %s", st.Name, st.Problem)}
	}
	p, dev, err := ChoosePartition(st, dev, t)
	if err != nil {
		return Partition{}, "", err
	}
	if _, err := (Disk{Scheme: st.Disk.Scheme, Partitions: []Partition{p}}).Pick(t.Filesystems...); err != nil {
		return Partition{}, "", err
	}
	return p, dev, nil
}
