// Package fwtest makes signed update packages for tests outside package
// firmware (the lab's field engineer's day): signapk -w's whole-file
// signature, made with openssl as a vendor's build would.
package fwtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SignApkMessage starts the comment signapk -w writes.
const SignApkMessage = "signed by SignApk\x00"

// footerLen is signapk's footer: signature start, 0xffff, comment length.
const footerLen = 6

// AssembleWholeFile is what signapk -w does once it has the signature:
// prefix is the zip without its 2-byte comment length; the comment is
// message + PKCS#7 + footer.
func AssembleWholeFile(prefix []byte, message string, sig []byte) []byte {
	comment := append([]byte(message), sig...)
	sigStart := len(sig) + footerLen
	total := len(comment) + footerLen
	comment = binary.LittleEndian.AppendUint16(comment, uint16(sigStart))
	comment = append(comment, 0xff, 0xff)
	comment = binary.LittleEndian.AppendUint16(comment, uint16(total))
	out := bytes.Clone(prefix)
	out = binary.LittleEndian.AppendUint16(out, uint16(total))
	return append(out, comment...)
}

// CMSSign signs data with openssl cms (DER, detached, digest md), the
// signer's certificate and key PEM files given; noattr leaves out the
// authenticated attributes, as recovery wants.
func CMSSign(data []byte, certPath, keyPath, md string, noattr bool) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fwtest-")
	if err != nil {
		return nil, fmt.Errorf("cannot sign: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "signed.bin"), filepath.Join(dir, "sig.p7")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, fmt.Errorf("cannot sign: %w", err)
	}
	args := []string{"cms", "-sign", "-binary", "-outform", "DER", "-md", md,
		"-signer", certPath, "-inkey", keyPath, "-in", in, "-out", out}
	if noattr {
		args = append(args, "-noattr")
	}
	if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cannot sign: openssl %v: %w: %s", args, err, b)
	}
	return os.ReadFile(out)
}

// SignWholeFile signs an uncommented zip the way signapk -w does (SHA-256,
// no authenticated attributes).
func SignWholeFile(zipData []byte, certPath, keyPath string) ([]byte, error) {
	prefix := zipData[:len(zipData)-2]
	sig, err := CMSSign(prefix, certPath, keyPath, "sha256", true)
	if err != nil {
		return nil, err
	}
	return AssembleWholeFile(prefix, SignApkMessage, sig), nil
}

// MakeKey writes a self-signed RSA-2048 certificate and its key (PEM) into
// dir with openssl: cert.pem, key.pem.
func MakeKey(dir string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
		"-subj", "/CN=boxagent lab signer", "-keyout", keyPath, "-out", certPath).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("cannot make a signing key: %w: %s", err, out)
	}
	return certPath, keyPath, nil
}
