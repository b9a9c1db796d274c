package firmware_test

import (
	"context"
	"fmt"
	"os"

	"github.com/boxagent/boxagent/firmware"
)

// A board profile says "verify = signapk" with its keys; a package is
// imported into the store, verified, and later staged; a rollback takes the
// exact bytes staged before.
func Example() {
	ctx := context.Background()
	policy, err := firmware.NewPolicy("signapk", []string{"/etc/boxagent/keys/otacerts.zip"},
		[]string{firmware.AndroidUpdateBinary})
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := firmware.OpenStore("/var/lib/boxagent/artifacts")
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Open("update.zip")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	a, err := store.Import(ctx, f, policy, firmware.WithProgress(func(phase string, done, total int64) {
		fmt.Printf("%s %d/%d\n", phase, done, total)
	}))
	if err != nil {
		fmt.Println(err) // e.g. "footer is wrong: …", "signature verification failed: …"
		return
	}
	// … stage it, then:
	_ = store.RecordStaged(a.SHA256, firmware.StagedRecord{Serial: "4C530001", Label: "UPDATES"})
	if prev, err := store.Previous(); err == nil {
		fmt.Println("rollback would re-stage", prev.SHA256)
	}
}

func ExampleInspect() {
	dev, err := os.Open("/dev/sdb")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	size, _ := dev.Seek(0, 2)
	disk, err := firmware.Inspect(dev, size)
	if err != nil {
		fmt.Println(err)
		return
	}
	part, err := disk.Pick("vfat")
	if err != nil {
		fmt.Println(err) // "exFAT is not readable by this board's recovery; format the stick FAT32"
		return
	}
	fmt.Printf("stage on partition %d (%s, label %q)\n", part.Index, part.MountType(), part.Label)
}
