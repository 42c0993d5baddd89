package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/pushsim"
	"software.sslmate.com/src/go-pkcs12"
)

// demoP12Password protects the .p12 files pushsim makes unless told
// otherwise. It is printed freely: the files hold test credentials only.
const demoP12Password = "pushsim"

// A stateDir holds the simulator's long-lived credentials, so that clients
// configured once keep working across restarts:
//
//	ca.pem, ca-key.pem             the CA clients trust
//	apns/AuthKey_<KEYID>.p8        APNs token signing keys
//	apns/keys.json                 key id -> team id, which a .p8 does not say
//	apns/certs/<name>.pem, .p12    APNs client certificates
//	fcm/<project>.json             FCM service account key files
type stateDir string

func (d stateDir) caCertPath() string       { return filepath.Join(string(d), "ca.pem") }
func (d stateDir) caKeyPath() string        { return filepath.Join(string(d), "ca-key.pem") }
func (d stateDir) apnsDir() string          { return filepath.Join(string(d), "apns") }
func (d stateDir) teamsPath() string        { return filepath.Join(d.apnsDir(), "keys.json") }
func (d stateDir) certsDir() string         { return filepath.Join(d.apnsDir(), "certs") }
func (d stateDir) fcmDir() string           { return filepath.Join(string(d), "fcm") }
func (d stateDir) keyPath(id string) string { return filepath.Join(d.apnsDir(), "AuthKey_"+id+".p8") }
func (d stateDir) accountPath(project string) string {
	return filepath.Join(d.fcmDir(), project+".json")
}

// loadCA reads a CA certificate and key, naming the file at fault.
func loadCA(certPath, keyPath string) (*pushsim.CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key: %w", err)
	}
	ca, err := pushsim.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA %s, %s: %w", certPath, keyPath, err)
	}
	return ca, nil
}

// ensureCA loads the state directory's CA, making one when neither of its
// files exists. One file without the other is an error rather than a reason
// to replace it: clients may already trust the certificate.
func (d stateDir) ensureCA() (ca *pushsim.CA, created bool, err error) {
	certPath, keyPath := d.caCertPath(), d.caKeyPath()
	certExists, err := exists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, false, err
	}
	if certExists || keyExists {
		ca, err := loadCA(certPath, keyPath)
		return ca, false, err
	}
	ca, err = pushsim.NewCA()
	if err != nil {
		return nil, false, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, false, err
	}
	if err := mkdir(string(d)); err != nil {
		return nil, false, err
	}
	// The key first: a certificate without its key would stop the next
	// start, a key without its certificate is just rewritten.
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFile(certPath, ca.CertPEM(), 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// keyFile is an APNs signing key in the state directory.
type keyFile struct {
	path    string
	key     *pushsim.APNsKey
	created bool
}

// loadAPNsKeys reads every AuthKey_*.p8, taking team ids from keys.json and
// defaultTeam for keys it does not list.
func (d stateDir) loadAPNsKeys(defaultTeam string) ([]keyFile, error) {
	teams, err := d.teams()
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(d.apnsDir(), "AuthKey_*.p8"))
	if err != nil {
		return nil, err
	}
	var keys []keyFile
	for _, p := range paths {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "AuthKey_"), ".p8")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("load APNs key %s: %w", p, err)
		}
		k, err := pushsim.ParseP8(b)
		if err != nil {
			return nil, fmt.Errorf("load APNs key %s: %w", p, err)
		}
		team := teams[id]
		if team == "" {
			team = defaultTeam
		}
		keys = append(keys, keyFile{path: p, key: &pushsim.APNsKey{KeyID: id, TeamID: team, Key: k}})
	}
	return keys, nil
}

// teams reads keys.json; a missing file is an empty map.
func (d stateDir) teams() (map[string]string, error) {
	teams := make(map[string]string)
	b, err := os.ReadFile(d.teamsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return teams, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load APNs team ids: %w", err)
	}
	if err := json.Unmarshal(b, &teams); err != nil {
		return nil, fmt.Errorf("load APNs team ids %s: want a JSON object of key id to team id: %w", d.teamsPath(), err)
	}
	return teams, nil
}

// writeAPNsKey writes k as AuthKey_<id>.p8 and records its team id. It
// refuses to replace an existing key, which a running sender may be using.
func (d stateDir) writeAPNsKey(k *pushsim.APNsKey) (string, error) {
	path := d.keyPath(k.KeyID)
	if ok, err := exists(path); err != nil {
		return "", err
	} else if ok {
		return "", fmt.Errorf("APNs key %s already exists", path)
	}
	teams, err := d.teams()
	if err != nil {
		return "", err
	}
	p8, err := k.P8()
	if err != nil {
		return "", err
	}
	if err := mkdir(d.apnsDir()); err != nil {
		return "", err
	}
	teams[k.KeyID] = k.TeamID
	b, err := json.MarshalIndent(teams, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode APNs team ids: %w", err)
	}
	if err := writeFile(d.teamsPath(), append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := writeFile(path, p8, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// certFile is an APNs client certificate in the state directory.
type certFile struct {
	path    string // certificate chain and key, PEM
	p12     string // "" when there is no .p12 beside it
	cert    *x509.Certificate
	created bool
	// demoPassword reports whether the .p12 opens with demoP12Password.
	demoPassword bool
	// foreign reports that this directory's CA did not issue it, so the
	// simulator will refuse it.
	foreign bool
}

// loadCerts reads every certificate in apns/certs, judging it against ca.
func (d stateDir) loadCerts(ca *pushsim.CA) ([]certFile, error) {
	paths, err := filepath.Glob(filepath.Join(d.certsDir(), "*.pem"))
	if err != nil {
		return nil, err
	}
	var certs []certFile
	for _, p := range paths {
		cf, err := readCertFile(p, ca)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cf)
	}
	return certs, nil
}

func readCertFile(path string, ca *pushsim.CA) (certFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return certFile{}, fmt.Errorf("load APNs certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return certFile{}, fmt.Errorf("load APNs certificate %s: no CERTIFICATE PEM block first", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return certFile{}, fmt.Errorf("load APNs certificate %s: %w", path, err)
	}
	cf := certFile{path: path, cert: cert, foreign: cert.CheckSignatureFrom(ca.Cert) != nil}
	p12 := strings.TrimSuffix(path, ".pem") + ".p12"
	if pb, err := os.ReadFile(p12); err == nil {
		cf.p12 = p12
		_, _, _, err := pkcs12.DecodeChain(pb, demoP12Password)
		cf.demoPassword = err == nil
	}
	return cf, nil
}

// writeClientCert writes prefix.pem (certificate chain, then the key,
// encrypted under pemPassword if there is one) and prefix.p12.
func writeClientCert(prefix string, c *pushsim.ClientCert, pemPassword, p12Password string, legacyP12 bool) (pemPath, p12Path string, err error) {
	key, err := c.KeyPEM(pemPassword)
	if err != nil {
		return "", "", err
	}
	p12, err := c.P12(p12Password, legacyP12)
	if err != nil {
		return "", "", err
	}
	pemPath, p12Path = prefix+".pem", prefix+".p12"
	if err := writeFile(pemPath, append(c.CertPEM(), key...), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(p12Path, p12, 0o600); err != nil {
		return "", "", err
	}
	return pemPath, p12Path, nil
}

// ensureCerts issues the development, production and universal
// certificates for topic that apns/certs lacks.
func (d stateDir) ensureCerts(ca *pushsim.CA, topic, team string) ([]certFile, error) {
	var made []certFile
	for _, kind := range []pushsim.CertKind{pushsim.CertDevelopment, pushsim.CertProduction, pushsim.CertUniversal} {
		prefix := filepath.Join(d.certsDir(), string(kind))
		if ok, err := exists(prefix + ".pem"); err != nil {
			return nil, err
		} else if ok {
			continue
		}
		c, err := ca.IssueAPNsCert(pushsim.ClientCertRequest{Kind: kind, BundleID: topic, TeamID: team})
		if err != nil {
			return nil, err
		}
		if err := mkdir(d.certsDir()); err != nil {
			return nil, err
		}
		pemPath, p12Path, err := writeClientCert(prefix, c, "", demoP12Password, false)
		if err != nil {
			return nil, err
		}
		made = append(made, certFile{path: pemPath, p12: p12Path, cert: c.Cert, created: true, demoPassword: true})
	}
	return made, nil
}

// describeCert says what kind of APNs certificate c is and for which topic.
func describeCert(c *x509.Certificate) (kind, topic string) {
	k, topics := pushsim.DescribeAPNsCert(c)
	kind = string(k)
	if k == "" {
		kind = "not an APNs certificate"
	}
	if len(topics) > 0 {
		topic = topics[0]
	}
	return kind, topic
}

// accountFile is an FCM service account key file in the state directory.
type accountFile struct {
	path     string
	sa       *pushsim.ServiceAccount
	tokenURI string
	created  bool
}

func (d stateDir) loadAccounts() ([]accountFile, error) {
	paths, err := filepath.Glob(filepath.Join(d.fcmDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var accounts []accountFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("load service account: %w", err)
		}
		sa, err := pushsim.ParseServiceAccount(b)
		if err != nil {
			return nil, fmt.Errorf("load service account %s: %w", p, err)
		}
		accounts = append(accounts, accountFile{path: p, sa: sa, tokenURI: pushsim.TokenURI(b)})
	}
	return accounts, nil
}

// writeAccount writes sa's key file with tokenURI to path.
func writeAccount(path string, sa *pushsim.ServiceAccount, tokenURI string) error {
	b, err := sa.JSON(tokenURI)
	if err != nil {
		return err
	}
	if err := mkdir(filepath.Dir(path)); err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'), 0o600)
}

// rewriteTokenURI points the key file at path to tokenURI, keeping its
// other fields as the operator left them.
func rewriteTokenURI(path, tokenURI string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rewrite token_uri: %w", err)
	}
	out, err := pushsim.SetTokenURI(b, tokenURI)
	if err != nil {
		return fmt.Errorf("rewrite token_uri of %s: %w", path, err)
	}
	return writeFile(path, append(out, '\n'), 0o600)
}

// validName reports whether s can name a file in the state directory
// without reaching outside it.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00")
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// mkdir makes dir and its parents private to the user: they hold keys.
func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make state directory: %w", err)
	}
	return nil
}

// writeFile replaces name by renaming a finished temporary file over it, so
// an interrupted run never leaves a truncated key behind.
func writeFile(name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", name, err)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// validity describes when c stops working.
func validity(c *x509.Certificate, now time.Time) string {
	if now.After(c.NotAfter) {
		return "expired " + c.NotAfter.UTC().Format(time.DateOnly)
	}
	return "valid until " + c.NotAfter.UTC().Format(time.DateOnly)
}
