// Package pemfile reads the credential and CA files operators configure,
// with errors that leave the path to the caller, which names it once.
package pemfile

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Read is os.ReadFile with the path left out of its errors.
func Read(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, pe.Err
	}
	return b, err
}

// CertPool reads a PEM bundle of CA certificates to trust instead of the
// system roots; an empty name is nil, the system roots.
func CertPool(name string) (*x509.CertPool, error) {
	if name == "" {
		return nil, nil
	}
	b, err := Read(name)
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", name, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificates in it", name)
	}
	return p, nil
}
