// Package firmware owns recovery update packages (update.zip) on the way to
// a USB stick:
//
//   - Verify checks a package before it is written and again from the stick:
//     zip structure (checkZip: one end-of-central-directory record, no zip64,
//     a central directory that agrees with the local headers, safe unique
//     names, required entries), then the method the board's Policy names:
//     an Android whole-file signature (signapk -w) checked the way AOSP
//     recovery checks it, a SHA-256, a minisign or an Ed25519ph signature.
//     The bytes are hashed once, in order, from an io.ReaderAt, by the
//     kernel's crypto API where it has the algorithm (internal/kernelhash).
//   - LoadCerts reads the certificates a board trusts (PEM, DER,
//     otacerts.zip) and refuses those recovery could not use.
//   - Store keeps accepted packages by SHA-256 under one directory, with a
//     JSON sidecar each, so that a rollback re-stages the exact bytes staged
//     before (Previous), never a rebuild.
//   - Inspect reads a stick's partition table (MBR, GPT, superfloppy) and
//     names each partition's filesystem; Disk.Pick refuses, in words for the
//     user, a stick the board's recovery cannot read; ChooseStick and
//     ChoosePartition find the stick and partition a request names (or
//     the only stick, the partition recovery reads).
//
// Errors a caller decides on are the Err* values (errors.Is) and StickError;
// where recovery has its own words ("footer is wrong", "signature
// verification failed", "no signature in file") the errors use them.
//
// The package reads and writes only what it is handed (an io.ReaderAt, a
// directory); it knows nothing of HTTP, flags or the journal. USB discovery,
// mounting, staging onto the stick and eject build on it.
package firmware
