package fcm

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/pushd/pushd/internal/pemfile"
)

// serviceAccount is what New checks in a service-account key file before
// the OAuth2 library reads it: the library accepts a broken key quietly and
// fails on the first push, an hour after the operator has gone home.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// loadServiceAccount reads and checks a service-account key file. Errors
// say what is wrong with the file, never what is in it.
func loadServiceAccount(file string) ([]byte, *serviceAccount, error) {
	b, err := pemfile.Read(file)
	if err != nil {
		return nil, nil, err
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, nil, fmt.Errorf("not JSON (at byte %d); want the service-account key file from the Firebase console", se.Offset)
		}
		return nil, nil, errors.New("not a JSON object; want the service-account key file from the Firebase console")
	}
	if sa.Type != "service_account" {
		return nil, nil, fmt.Errorf("type %q, want \"service_account\" (Firebase console, Project settings, Service accounts, Generate new private key)", sa.Type)
	}
	switch {
	case sa.ProjectID == "":
		return nil, nil, errors.New("project_id is missing")
	case sa.ClientEmail == "":
		return nil, nil, errors.New("client_email is missing")
	case sa.PrivateKey == "":
		return nil, nil, errors.New("private_key is missing")
	}
	if err := checkRSAKey(sa.PrivateKey); err != nil {
		return nil, nil, fmt.Errorf("private_key: %w", err)
	}
	return b, &sa, nil
}

// checkRSAKey accepts what x/oauth2 signs with: PEM PKCS#8 or PKCS#1 RSA.
func checkRSAKey(p string) error {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return fmt.Errorf("holds a %T, want an RSA key", k)
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
		return errors.New("not a PKCS#8 or PKCS#1 RSA private key")
	}
	return nil
}
