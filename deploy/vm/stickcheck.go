package vm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
)

// Host-side checks of a stick image after the guest has written it (after
// the run, or after the stick was unplugged).

// CheckFAT runs fsck.fat -n (read-only) on the image's first partition; it
// returns fsck's report, and an error when fsck found a problem.
func CheckFAT(img string) (string, error) {
	off, err := PartitionOffset(img)
	if err != nil {
		return "", err
	}
	// fsck.fat has no offset option: copy the partition out.
	src, err := os.Open(img)
	if err != nil {
		return "", fmt.Errorf("cannot open %s: %w", img, err)
	}
	defer src.Close()
	part, err := os.CreateTemp("", "stick-part-")
	if err != nil {
		return "", fmt.Errorf("cannot extract the partition: %w", err)
	}
	defer os.Remove(part.Name())
	_, err = io.Copy(part, io.NewSectionReader(src, off, 1<<62))
	if cerr := part.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("cannot extract the partition of %s: %w", img, err)
	}
	out, err := exec.Command("fsck.fat", "-n", part.Name()).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("cannot pass fsck.fat -n on %s: %w: %s", img, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// mtoolsImage is the -i argument of mtools for the image's first partition.
func mtoolsImage(img string) (string, error) {
	off, err := PartitionOffset(img)
	if err != nil {
		return "", err
	}
	return img + "@@" + strconv.FormatInt(off, 10), nil
}

func mtools(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("cannot run %s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// StickDir lists a directory of the stick (mdir), e.g. "/update".
func StickDir(img, dir string) (string, error) {
	i, err := mtoolsImage(img)
	if err != nil {
		return "", err
	}
	out, err := mtools("mdir", "-i", i, "::"+dir)
	return string(out), err
}

// StickRead returns a file's content from the stick (mcopy to stdout).
func StickRead(img, path string) ([]byte, error) {
	i, err := mtoolsImage(img)
	if err != nil {
		return nil, err
	}
	return mtools("mcopy", "-n", "-i", i, "::"+path, "-")
}
