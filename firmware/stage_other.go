//go:build !linux

package firmware

import (
	"errors"
	"io"
	"os"
)

type fsSpace struct {
	Free     int64
	Cluster  int64
	ReadOnly bool
}

var errStageOS = errors.New("staging onto a stick is Linux only")

func statSpace(dir string) (fsSpace, error) { return fsSpace{}, errStageOS }
func dropCache(f *os.File) error            { return errStageOS }
func syncFS(dir string) error               { return errStageOS }
func goneErr(err error) bool                { return false }
func noSpaceErr(err error) bool             { return false }

func adviseSequential(io.ReaderAt) {}

func settleRange(f *os.File, off, n int64) error { return errStageOS }
func dropRange(f *os.File, off, n int64)         {}
