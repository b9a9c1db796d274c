//go:build !linux

package kernelhash

import (
	"crypto"
	"errors"
)

var errNoAFALG = errors.New("AF_ALG is Linux only")

func probe(crypto.Hash) backend { return backend{why: errNoAFALG} }

func newKernel(crypto.Hash) (*Hash, error) { return nil, errNoAFALG }
