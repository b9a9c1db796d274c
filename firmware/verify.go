package firmware

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"aead.dev/minisign"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// Errors a caller decides on. Where recovery has its own words for a
// failure, the error uses them, so the message on the console matches the
// one the user will see on the box.
var (
	ErrStructure     = errors.New("not a valid zip package")
	ErrMissingEntry  = errors.New("package lacks a required entry")
	ErrFooter        = errors.New("footer is wrong")
	ErrUnsigned      = errors.New("no signature in file")
	ErrSignature     = errors.New("signature verification failed")
	ErrUnknownSigner = errors.New("package is signed by an unknown key")
	ErrDigest        = errors.New("sha-256 does not match")
	ErrPolicy        = errors.New("invalid verification policy")
)

// Method names a verification method; the board profile chooses it.
type Method string

const (
	MethodSignApk  Method = "signapk"  // Android whole-file signature (signapk -w)
	MethodSHA256   Method = "sha256"   // a SHA-256 given by the user or a manifest
	MethodMinisign Method = "minisign" // detached minisign signature (prehashed, minisign -H)
	MethodEd25519  Method = "ed25519"  // detached Ed25519ph signature (RFC 8032, SHA-512 prehash)
	MethodNone     Method = "none"     // zip structure only
)

// Policy says how a package must be verified. It belongs to the board, not
// to one package: per-package inputs (a SHA-256, a detached signature) are
// options of Verify.
type Policy struct {
	Method Method
	Certs  []*x509.Certificate // signapk: see LoadCerts
	// AllowSignedAttributes accepts signapk signatures made over CMS
	// authenticated attributes. Android recovery verifies the signature
	// over the file digest only and refuses such packages, so leave it
	// false unless the board's recovery is known to accept them.
	AllowSignedAttributes bool
	MinisignKeys          []minisign.PublicKey // minisign
	Ed25519Keys           []ed25519.PublicKey  // ed25519
	RequiredEntries       []string             // e.g. "META-INF/com/google/android/update-binary"
}

// AndroidUpdateBinary is the entry every Android recovery package needs.
const AndroidUpdateBinary = "META-INF/com/google/android/update-binary"

// Signer identifies who signed a package.
type Signer struct {
	Subject     string `json:"subject,omitempty"` // certificate subject CN, or minisign trusted comment
	Fingerprint string `json:"fingerprint"`       // SHA-256 of the certificate DER or of the raw public key
	Key         string `json:"key"`               // "RSA-2048", "ECDSA-P-256", "minisign:<key id>", "Ed25519"
	Digest      string `json:"digest,omitempty"`  // "SHA-1" or "SHA-256" for signapk
}

// Report is what Verify found out about a package it accepted.
type Report struct {
	Method  Method  `json:"method"`
	Size    int64   `json:"size"`
	SHA256  string  `json:"sha256"`
	Signer  *Signer `json:"signer,omitempty"`
	Entries int     `json:"entries"`
}

// Progress reports bytes done out of total for a phase ("copy", "verify").
type Progress func(phase string, done, total int64)

// Option adds a per-package input or a progress callback to Verify.
type Option func(*options)

type options struct {
	sha256    []byte
	shaErr    error
	signature []byte
	progress  Progress
	size      int64 // expected size for Store.Import; -1 unknown
	hashed    *hashPass
}

// withHashed gives Verify the pass that already hashed the bytes (Stage
// hashes the copy on the stick while it is written): Verify then checks
// the structure and gives its verdict without reading the bytes again,
// provided its own plan for the pass is the same.
func withHashed(hp *hashPass) Option { return func(o *options) { o.hashed = hp } }

// WithSHA256 requires the package to have this hex SHA-256, whatever the
// method. It is mandatory for MethodSHA256.
func WithSHA256(hexSum string) Option {
	return func(o *options) {
		b, err := hex.DecodeString(strings.TrimSpace(hexSum))
		if err != nil || len(b) != sha256.Size {
			o.shaErr = fmt.Errorf("%w: %q is not a hex SHA-256", ErrPolicy, hexSum)
		}
		o.sha256 = b
	}
}

// WithSignature gives the detached signature for MethodMinisign (the text
// of a .minisig file) or MethodEd25519 (64 raw bytes).
func WithSignature(sig []byte) Option { return func(o *options) { o.signature = sig } }

// WithProgress sets a callback called as the package is hashed.
func WithProgress(p Progress) Option { return func(o *options) { o.progress = p } }

// WithSize announces the size of the stream Store.Import reads (an HTTP
// Content-Length, a file size): progress then has a total, and a stream
// that ends early or runs long is refused. Verify ignores it.
func WithSize(n int64) Option { return func(o *options) { o.size = n } }

func newOptions(opts []Option) options {
	o := options{size: -1}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Verify checks the package of the given size in r against the policy. The
// zip structure is always checked; the bytes are read once, in order, so a
// large package is never held in memory. A refused package yields an error
// that wraps one of the Err* values.
func Verify(ctx context.Context, r io.ReaderAt, size int64, p Policy, opts ...Option) (Report, error) {
	o := newOptions(opts)
	rep := Report{Method: p.Method, Size: size}
	if o.shaErr != nil {
		return rep, o.shaErr
	}
	if err := p.check(&o); err != nil {
		return rep, err
	}
	chk, err := newChecker(r, size, p, &o)
	if err != nil {
		return rep, err
	}
	zi, err := checkZip(r, size, p.RequiredEntries)
	if err != nil {
		return rep, err
	}
	rep.Entries = len(zi.Names)

	pass := newPass()
	chk.plan(pass)
	if o.hashed != nil && o.hashed.sameAs(pass) {
		pass.close()
		pass = o.hashed // these bytes were hashed already, as this pass would
	} else {
		defer pass.close()
		if err := pass.run(ctx, r, size, o.progress); err != nil {
			return rep, err
		}
	}
	sum := pass.whole[0].Sum(nil)
	if err := pass.hashErr(); err != nil {
		return rep, err
	}
	rep.SHA256 = hex.EncodeToString(sum)
	if o.sha256 != nil && subtle.ConstantTimeCompare(sum, o.sha256) != 1 {
		return rep, fmt.Errorf("%w: expected %x, got %s", ErrDigest, o.sha256, rep.SHA256)
	}
	rep.Signer, err = chk.verdict(pass)
	if herr := pass.hashErr(); herr != nil { // the verdict's own Sum (SHA-1) failed
		return rep, herr
	}
	return rep, err
}

// Precheck refuses, from what Verify reads first (the policy, a detached
// signature's form, a signapk footer and its PKCS#7), a package that Verify
// would refuse without reading it whole: an unsigned package is refused at
// once instead of after a copy of hundreds of MiB into the store. A nil
// error promises nothing; Verify decides.
func Precheck(r io.ReaderAt, size int64, p Policy, opts ...Option) error {
	o := newOptions(opts)
	if o.shaErr != nil {
		return o.shaErr
	}
	if err := p.check(&o); err != nil {
		return err
	}
	_, err := newChecker(r, size, p, &o)
	return err
}

// VerifyFile verifies the package at path (in the store, or on a mounted
// stick after staging) with Verify.
func VerifyFile(ctx context.Context, path string, p Policy, opts ...Option) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{Method: p.Method}, fmt.Errorf("cannot open package: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Report{Method: p.Method}, fmt.Errorf("cannot stat package: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Report{Method: p.Method}, fmt.Errorf("%w: %s is not a regular file", ErrStructure, path)
	}
	return Verify(ctx, f, fi.Size(), p, opts...)
}

// A checker is one verification method: it reads what it needs up front
// (a footer, a detached signature), adds its hashes to the single pass over
// the bytes, and gives its verdict once the pass is done.
type checker interface {
	plan(hp *hashPass)
	verdict(hp *hashPass) (*Signer, error)
}

func newChecker(r io.ReaderAt, size int64, p Policy, o *options) (checker, error) {
	switch p.Method {
	case MethodSignApk:
		return newSignApkChecker(r, size, p)
	case MethodMinisign:
		return newMinisignChecker(p.MinisignKeys, o.signature)
	case MethodEd25519:
		return &ed25519Checker{keys: p.Ed25519Keys, sig: o.signature}, nil
	}
	return digestOnly{}, nil // sha256 and none: the whole-file SHA-256 is always computed
}

type digestOnly struct{}

func (digestOnly) plan(*hashPass)                     {}
func (digestOnly) verdict(*hashPass) (*Signer, error) { return nil, nil }

// check refuses a policy (with its per-package options) that cannot work.
func (p Policy) check(o *options) error {
	switch p.Method {
	case MethodSignApk:
		if len(p.Certs) == 0 {
			return fmt.Errorf("%w: signapk needs at least one certificate", ErrPolicy)
		}
		for _, c := range p.Certs {
			if err := checkRecoveryCert(c); err != nil {
				return fmt.Errorf("%w: %v", ErrPolicy, err)
			}
		}
	case MethodSHA256:
		if o.sha256 == nil {
			return fmt.Errorf("%w: method sha256 needs the expected SHA-256", ErrPolicy)
		}
	case MethodMinisign:
		if len(p.MinisignKeys) == 0 {
			return fmt.Errorf("%w: minisign needs at least one public key", ErrPolicy)
		}
		if len(o.signature) == 0 {
			return fmt.Errorf("%w: no minisign signature given", ErrUnsigned)
		}
	case MethodEd25519:
		if len(p.Ed25519Keys) == 0 {
			return fmt.Errorf("%w: ed25519 needs at least one public key", ErrPolicy)
		}
		if len(o.signature) != ed25519.SignatureSize {
			return fmt.Errorf("%w: ed25519 signature must be %d bytes, got %d", ErrUnsigned, ed25519.SignatureSize, len(o.signature))
		}
	case MethodNone:
	default:
		return fmt.Errorf("%w: unknown method %q", ErrPolicy, p.Method)
	}
	return nil
}

// planPass returns the hashing pass Verify makes of the package in r under
// policy p, not run yet: Stage plans it on the store's copy and runs it
// over the copy on the stick while that is written.
func planPass(r io.ReaderAt, size int64, p Policy, opts ...Option) (*hashPass, error) {
	o := newOptions(opts)
	if err := p.check(&o); err != nil {
		return nil, err
	}
	chk, err := newChecker(r, size, p, &o)
	if err != nil {
		return nil, err
	}
	pass := newPass()
	chk.plan(pass)
	return pass, nil
}

// newPass is a pass computing the whole-file SHA-256 (the kernel's where
// it has one: see internal/kernelhash), to which a checker adds its hashes.
// Its owner closes it.
func newPass() *hashPass {
	return &hashPass{whole: []hash.Hash{kernelhash.New(crypto.SHA256)}, prefixLen: -1}
}

// sameAs says whether hp computes what fresh, a pass just planned, would:
// the same hashes over the same bytes. A checker that keeps hashes of its
// own (the detached signatures) never matches: its verdict reads them.
func (hp *hashPass) sameAs(fresh *hashPass) bool {
	return len(fresh.whole) == 1 && len(hp.whole) == 1 && hp.prefixLen == fresh.prefixLen &&
		hashKind(hp.whole[0]) == hashKind(fresh.whole[0]) && hashKind(hp.prefix) == hashKind(fresh.prefix)
}

// hashKind tells hashes apart by type and size (a kernel SHA-1 and SHA-256
// share a type).
func hashKind(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("%T/%d", h, h.Size())
}

// kernelHashes are the pass's hashes that may hold a kernel socket.
func (hp *hashPass) kernelHashes() []*kernelhash.Hash {
	var ks []*kernelhash.Hash
	for _, h := range append(slices.Clip(hp.whole), hp.prefix) {
		if k, ok := h.(*kernelhash.Hash); ok {
			ks = append(ks, k)
		}
	}
	return ks
}

// close releases the kernel's sockets of the pass's hashes.
func (hp *hashPass) close() {
	for _, k := range hp.kernelHashes() {
		k.Close()
	}
}

// hashErr is the kernel's error that made a sum of the pass wrong, if any.
func (hp *hashPass) hashErr() error {
	for _, k := range hp.kernelHashes() {
		if err := k.Err(); err != nil {
			return fmt.Errorf("cannot hash the package: %w", err)
		}
	}
	return nil
}

// hashPass feeds bytes [0, size) of a file to the whole-file hashes and
// bytes [0, prefixLen) to the signed-prefix hashes: SHA-1 when prefix is
// set, and SHA-256 by taking a snapshot of whole[0] (SHA-256) at the
// boundary instead of hashing the same bytes twice.
type hashPass struct {
	whole     []hash.Hash
	prefixLen int64     // -1: no prefix
	prefix    hash.Hash // separate prefix hash (SHA-1), or nil
	snapshot  []byte
}

// passBuf is the buffer of the store's copies: small enough for the copy
// to stay in the L2 cache of the boxes' ARM cores, large enough that
// syscalls do not matter.
const passBuf = 256 << 10

// The hashing pass reads in readBlock blocks, readAhead of them ahead of
// the hashing: one goroutine waits for the stick while another hashes
// what came before, so the pass takes the longer of the two instead of
// their sum (boxes have two or more cores; a cold read from a stick is as
// slow as the hashing). Large reads let the kernel send the stick large
// requests; 4 MiB of buffers is what it costs.
const (
	readBlock = 1 << 20
	readAhead = 3
)

// block is a read of the pass: buf holds bytes [off, off+len(buf)).
type block struct {
	off int64
	buf []byte
	err error
}

func (hp *hashPass) run(ctx context.Context, r io.ReaderAt, size int64, progress Progress) error {
	if hp.prefixLen == 0 {
		hp.snapshot = hp.whole[0].Sum(nil)
	}
	adviseSequential(r)
	ctx, cancel := context.WithCancel(ctx)
	var reader sync.WaitGroup
	defer reader.Wait() // the reader's ReadAt may use what the caller frees next
	defer cancel()
	full := make(chan block, readAhead)    // read, to hash
	free := make(chan []byte, readAhead+1) // hashed, to read into again
	for range readAhead + 1 {
		free <- make([]byte, min(readBlock, max(size, 1)))
	}
	reader.Go(func() { readBlocks(ctx, r, size, free, full) })
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err // before the select, which may pick a block over it
		}
		var b block
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b = <-full:
		}
		if b.err != nil {
			return fmt.Errorf("cannot read package at %d of %d bytes: %w", b.off, size, b.err)
		}
		hp.write(b.off, b.buf)
		off = b.off + int64(len(b.buf))
		free <- b.buf[:cap(b.buf)]
		if progress != nil {
			progress("verify", off, size)
		}
	}
	return nil
}

// readBlocks reads [0, size) of r in order into the buffers of free and
// sends them to full, until the end, an error (sent as the last block) or
// ctx's end.
func readBlocks(ctx context.Context, r io.ReaderAt, size int64, free <-chan []byte, full chan<- block) {
	for off := int64(0); off < size; {
		var buf []byte
		select {
		case <-ctx.Done():
			return
		case buf = <-free:
		}
		n := int(min(int64(len(buf)), size-off))
		b := block{off: off, buf: buf[:n], err: readFull(r, buf[:n], off)}
		select {
		case <-ctx.Done():
			return
		case full <- b:
		}
		if b.err != nil {
			return
		}
		off += int64(n)
	}
}

// write feeds p, the bytes at off, to the hashes: the prefix hash and the
// snapshot of whole[0] stop at prefixLen.
func (hp *hashPass) write(off int64, p []byte) {
	if cut := hp.prefixLen - off; cut > 0 && cut < int64(len(p)) {
		hp.write(off, p[:cut])
		hp.write(hp.prefixLen, p[cut:])
		return
	}
	sinks := hp.whole
	if hp.prefix != nil && off < hp.prefixLen {
		sinks = append(sinks[:len(sinks):len(sinks)], hp.prefix)
	}
	writeAll(sinks, p)
	if end := off + int64(len(p)); end == hp.prefixLen && end > 0 {
		hp.snapshot = hp.whole[0].Sum(nil)
	}
}

// readFull reads exactly len(b) bytes at off: io.ReaderAt may return
// io.EOF along with a full read, and a short read is an error even when the
// reader says nothing (a file that shrank, a stick pulled out).
func readFull(r io.ReaderAt, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeAll feeds p to every hash, in parallel when there are several (a
// SHA-1 signature hashes with SHA-1 and SHA-256; boxes have several cores).
func writeAll(hs []hash.Hash, p []byte) {
	if len(hs) == 1 {
		hs[0].Write(p)
		return
	}
	var wg sync.WaitGroup
	for _, h := range hs[1:] {
		wg.Go(func() { h.Write(p) })
	}
	hs[0].Write(p)
	wg.Wait()
}

// prefixSum returns the digest of the signed prefix with hash h, or nil if
// it was not computed.
func (hp *hashPass) prefixSum(h crypto.Hash) []byte {
	switch {
	case h == crypto.SHA256:
		return hp.snapshot
	case h == crypto.SHA1 && hp.prefix != nil:
		return hp.prefix.Sum(nil)
	}
	return nil
}
