package firmware

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNoCerts means a key file held no certificate.
var ErrNoCerts = errors.New("no certificates found")

// maxCertFile bounds what LoadCerts reads from one file or zip entry.
const maxCertFile = 1 << 20

// LoadCerts reads the certificates a board trusts for signapk packages:
// PEM files (any number of CERTIFICATE blocks), DER files, and otacerts.zip
// archives (recovery's /system/etc/security/otacerts.zip) whose *.pem,
// *.der, *.crt and *.cer entries are certificates; other entries are
// skipped. A certificate recovery would refuse to load (see
// checkRecoveryCert) is refused here too, because recovery then refuses
// every package.
func LoadCerts(paths ...string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, path := range paths {
		data, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		var got []*x509.Certificate
		if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) {
			got, err = certsFromZip(data)
		} else {
			got, err = parseCerts(data)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot load certificates from %s: %w", path, err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("cannot load certificates from %s: %w", path, ErrNoCerts)
		}
		for _, c := range got {
			if err := checkRecoveryCert(c); err != nil {
				return nil, fmt.Errorf("cannot use certificates from %s: %w", path, err)
			}
		}
		certs = append(certs, got...)
	}
	return certs, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open certificate file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxCertFile {
		return nil, fmt.Errorf("cannot load certificates from %s: larger than %d bytes", path, maxCertFile)
	}
	return data, nil
}

func certsFromZip(data []byte) ([]*x509.Certificate, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !certEntry(f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxCertFile))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		got, err := parseCerts(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		certs = append(certs, got...)
	}
	return certs, nil
}

func certEntry(name string) bool {
	name = strings.ToLower(name)
	for _, ext := range []string{".pem", ".der", ".crt", ".cer"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// parseCerts parses PEM CERTIFICATE blocks, or one DER certificate.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
}
