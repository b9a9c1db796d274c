package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
)

// LoadIdentity reads the box's TLS files: its id is [fleet] id or else
// its certificate's CN, the name a broker with use_identity_as_username
// knows it by.
func LoadIdentity(cfg config.Fleet) (Identity, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return Identity{}, fmt.Errorf("cannot read the fleet CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return Identity{}, fmt.Errorf("cannot read the fleet CA %s: no PEM certificate in it", cfg.CA)
		}
	}
	id := Identity{ID: cfg.ID, TLS: tc}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return Identity{}, fmt.Errorf("cannot read the fleet certificate: %w", err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return Identity{}, fmt.Errorf("cannot read the fleet certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
		id.CertNotAfter = leaf.NotAfter
		if id.ID == "" {
			id.ID = leaf.Subject.CommonName
		}
	}
	if !config.ValidFleetName(id.ID) {
		return Identity{}, errors.New("the fleet id " + fmt.Sprintf("%q", id.ID) + " (the certificate's CN) cannot be a topic level: set [fleet] id")
	}
	return id, nil
}
