package pushsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Apple's certificate extensions for APNs client certificates.
var (
	oidAPNsDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	oidAPNsProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	oidAPNsTopics      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 6}
	// oidUID is the subject attribute that carries the bundle id.
	oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

// CA is the simulator's certificate authority. It signs the listeners' server
// certificates and the test APNs client certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a fresh self-signed CA valid for ten years.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pushsim: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "pushsim test CA", Organization: []string{"pushd pushsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pushsim: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads a CA from PEM: a certificate and its private key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pushsim: CA certificate and key: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("pushsim: parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("pushsim: CA certificate is not a CA (basic constraints)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("pushsim: CA key cannot sign")
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// CertPEM is the CA certificate as PEM, the file clients trust.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA private key as PKCS#8 PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: marshal CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ServerCert issues a TLS server certificate for 127.0.0.1, ::1 and
// localhost (plus any extra host names or addresses).
func (ca *CA) ServerCert(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pushsim: generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "pushsim", Organization: []string{"pushd pushsim"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pushsim: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pushsim: parse server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// CertKind is the kind of APNs client certificate, as Apple issues them.
type CertKind string

const (
	// CertDevelopment is an "Apple Development IOS Push Services"
	// certificate: sandbox gateway only.
	CertDevelopment CertKind = "development"
	// CertProduction is an "Apple Production IOS Push Services" certificate:
	// production gateway only.
	CertProduction CertKind = "production"
	// CertUniversal is an "Apple Push Services" certificate: both gateways,
	// and the app's voip and complication topics.
	CertUniversal CertKind = "universal"
)

// ParseCertKind reads a certificate kind name.
func ParseCertKind(s string) (CertKind, error) {
	switch k := CertKind(s); k {
	case CertDevelopment, CertProduction, CertUniversal:
		return k, nil
	}
	return "", fmt.Errorf("unknown certificate kind %q (want development, production or universal)", s)
}

// ClientCertRequest describes a test APNs certificate.
type ClientCertRequest struct {
	Kind CertKind
	// BundleID is the app's bundle id: the subject UID and default topic.
	BundleID string
	// TeamID goes into the subject's OU as in Apple's certificates.
	TeamID string
	// NotBefore and NotAfter default to an hour ago and a year from now; set
	// NotAfter in the past for an expired certificate.
	NotBefore, NotAfter time.Time
}

// ClientCert is an issued APNs client certificate and its key.
type ClientCert struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
	CA   *x509.Certificate
}

// IssueAPNsCert issues a client certificate shaped like Apple's: an RSA
// 2048 key, subject UID = bundle id, CN "Apple ... Push Services: <bundle
// id>", Apple's environment extensions, and for universal certificates the
// topics extension listing the bundle id, its .voip and .complication topics.
func (ca *CA) IssueAPNsCert(req ClientCertRequest) (*ClientCert, error) {
	if req.BundleID == "" {
		return nil, errors.New("pushsim: issue APNs certificate: bundle id is required")
	}
	if _, err := ParseCertKind(string(req.Kind)); err != nil {
		return nil, fmt.Errorf("pushsim: issue APNs certificate: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("pushsim: generate APNs certificate key: %w", err)
	}
	now := time.Now()
	if req.NotBefore.IsZero() {
		req.NotBefore = now.Add(-time.Hour)
	}
	if req.NotAfter.IsZero() {
		req.NotAfter = now.AddDate(1, 0, 0)
	}
	if req.TeamID == "" {
		req.TeamID = DefaultTeamID
	}
	null := []byte{0x05, 0x00}
	var cn string
	var exts []pkix.Extension
	switch req.Kind {
	case CertDevelopment:
		cn = "Apple Development IOS Push Services: " + req.BundleID
		exts = append(exts, pkix.Extension{Id: oidAPNsDevelopment, Value: null})
	case CertProduction:
		cn = "Apple Production IOS Push Services: " + req.BundleID
		exts = append(exts, pkix.Extension{Id: oidAPNsProduction, Value: null})
	case CertUniversal:
		cn = "Apple Push Services: " + req.BundleID
		topics, err := marshalTopics(req.BundleID)
		if err != nil {
			return nil, err
		}
		exts = append(exts,
			pkix.Extension{Id: oidAPNsDevelopment, Value: null},
			pkix.Extension{Id: oidAPNsProduction, Value: null},
			pkix.Extension{Id: oidAPNsTopics, Value: topics})
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         cn,
			OrganizationalUnit: []string{req.TeamID},
			Organization:       []string{"pushsim test developer"},
			Country:            []string{"US"},
			ExtraNames:         []pkix.AttributeTypeAndValue{{Type: oidUID, Value: req.BundleID}},
		},
		NotBefore:       req.NotBefore,
		NotAfter:        req.NotAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: create APNs certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pushsim: parse APNs certificate: %w", err)
	}
	return &ClientCert{Cert: cert, Key: key, CA: ca.Cert}, nil
}

// marshalTopics encodes Apple's topics extension: a sequence of
// (UTF8String topic, SEQUENCE { UTF8String kind }) pairs.
func marshalTopics(bundleID string) ([]byte, error) {
	type kinds struct {
		Kind string `asn1:"utf8"`
	}
	var seq []any
	for _, t := range []struct{ topic, kind string }{
		{bundleID, "app"},
		{bundleID + ".voip", "voip"},
		{bundleID + ".complication", "complication"},
	} {
		s, err := asn1.MarshalWithParams(t.topic, "utf8")
		if err != nil {
			return nil, fmt.Errorf("pushsim: encode topic %q: %w", t.topic, err)
		}
		k, err := asn1.Marshal(kinds{t.kind})
		if err != nil {
			return nil, fmt.Errorf("pushsim: encode topic kind %q: %w", t.kind, err)
		}
		seq = append(seq, asn1.RawValue{FullBytes: s}, asn1.RawValue{FullBytes: k})
	}
	b, err := asn1.Marshal(seq)
	if err != nil {
		return nil, fmt.Errorf("pushsim: encode topics extension: %w", err)
	}
	return b, nil
}

// DescribeAPNsCert says what kind of APNs certificate c is (empty when it
// carries neither of Apple's environment extensions) and its topics, the
// bundle id first.
func DescribeAPNsCert(c *x509.Certificate) (kind CertKind, topics []string) {
	a := parseCertAuth(c)
	switch {
	case a.envs[Development] && a.envs[Production]:
		kind = CertUniversal
	case a.envs[Development]:
		kind = CertDevelopment
	case a.envs[Production]:
		kind = CertProduction
	}
	return kind, a.topics
}

// certAuth is what an APNs client certificate allows.
type certAuth struct {
	envs   [3]bool // indexed by Env
	topics []string
	uid    string
}

func (a *certAuth) allows(topic string) bool { return slices.Contains(a.topics, topic) }

// parseCertAuth reads Apple's extensions from a client certificate.
func parseCertAuth(c *x509.Certificate) *certAuth {
	a := &certAuth{}
	for _, atv := range c.Subject.Names {
		if atv.Type.Equal(oidUID) {
			if s, ok := atv.Value.(string); ok {
				a.uid = s
			}
		}
	}
	for _, ext := range c.Extensions {
		switch {
		case ext.Id.Equal(oidAPNsDevelopment):
			a.envs[Development] = true
		case ext.Id.Equal(oidAPNsProduction):
			a.envs[Production] = true
		case ext.Id.Equal(oidAPNsTopics):
			var seq []asn1.RawValue
			if _, err := asn1.Unmarshal(ext.Value, &seq); err == nil {
				for _, v := range seq {
					if v.Tag == asn1.TagUTF8String {
						a.topics = append(a.topics, string(v.Bytes))
					}
				}
			}
		}
	}
	if len(a.topics) == 0 && a.uid != "" {
		a.topics = []string{a.uid}
	}
	return a
}

// CertPEM returns the certificate (and the CA after it) as PEM.
func (c *ClientCert) CertPEM() []byte {
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
	return append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CA.Raw})...)
}

// KeyPEM returns the private key as PEM: PKCS#8, or encrypted PKCS#8 under
// password when one is given (as "openssl pkcs8 -topk8 -v2 aes256" writes).
func (c *ClientCert) KeyPEM(password string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: marshal key: %w", err)
	}
	if password == "" {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	enc, err := encryptPKCS8(der, password)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), nil
}

// P12 returns the certificate, key and CA chain as a PKCS#12 file in the
// modern format (AES-256-CBC, PBKDF2, SHA-256 MAC) that current macOS
// Keychain and OpenSSL 3 export. legacy selects the old 3DES/RC2 format.
func (c *ClientCert) P12(password string, legacy bool) ([]byte, error) {
	enc := pkcs12.Modern2023
	if legacy {
		enc = pkcs12.LegacyRC2
	}
	b, err := enc.Encode(c.Key, c.Cert, []*x509.Certificate{c.CA}, password)
	if err != nil {
		return nil, fmt.Errorf("pushsim: encode .p12: %w", err)
	}
	return b, nil
}

// TLSCertificate returns the certificate as apns2.NewClient takes it.
func (c *ClientCert) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// pemKind names a PEM file's blocks for error messages.
func pemKind(b []byte) string {
	var kinds []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		kinds = append(kinds, blk.Type)
	}
	if len(kinds) == 0 {
		return "no PEM blocks"
	}
	return strings.Join(kinds, ", ")
}
