// Package firmware owns recovery update packages: it verifies them (zip
// structure, Android whole-file signatures, SHA-256, ed25519 and minisign
// signatures), keeps them in a content-addressed artifact store for
// exact-bytes rollback, and sniffs the partition table and filesystem of USB
// sticks so that staging can refuse a stick the board's recovery cannot read.
//
// The package is pure Go over io.ReaderAt and a directory path; it knows
// nothing of HTTP, flags or the journal. USB discovery, mounting and staging
// onto a stick build on it (issue 8).
package firmware
