package apns

import (
	"bytes"
	"crypto"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/youmark/pkcs8"
	"golang.org/x/crypto/scrypt"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushd/pushd/internal/pemfile"
	"github.com/pushd/pushd/internal/secret"
)

// Certificate is an APNs client certificate file: a .p12 (PKCS#12, modern
// AES/PBKDF2 or legacy 3DES/RC2), or PEM holding the certificate and its
// private key (PKCS#1, SEC 1 or PKCS#8, or PKCS#8 encrypted under Password
// with PBES2: PBKDF2 or scrypt, AES-CBC or 3DES-CBC).
type Certificate struct {
	File     string
	Password secret.Secret
}

func (c Certificate) set() bool { return c.File != "" || c.Password != "" }

// Apple's extensions in APNs client certificates.
var (
	oidAPNsDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	oidAPNsProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	oidAPNsTopics      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 6}
	// oidUID is the subject attribute holding the bundle id.
	oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

// clientCert is a loaded APNs client certificate and what it allows.
type clientCert struct {
	file   string
	tls    tls.Certificate
	envs   [2]bool // indexed by envProduction, envDevelopment
	uid    string  // the bundle id the certificate was issued for
	topics []string
}

// kind names the certificate's environments as Apple's certificate names do.
func (c *clientCert) kind() string {
	switch {
	case c.envs[envProduction] && c.envs[envDevelopment]:
		return "universal (production and development)"
	case c.envs[envProduction]:
		return "production-only"
	}
	return "development-only"
}

// loadCert reads an APNs client certificate and checks that it is one,
// that it is valid at now, and that it may push to topic (when topic is not
// empty). Errors name the file, never the password or key material.
func loadCert(c Certificate, now time.Time) (*clientCert, error) {
	b, err := pemfile.Read(c.File)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", c.File, err)
	}
	var certs []*x509.Certificate
	var key crypto.PrivateKey
	if isPEM(b) {
		certs, key, err = parsePEMCert(b, c.Password.Reveal())
	} else {
		certs, key, err = parseP12(b, c.Password.Reveal())
	}
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", c.File, err)
	}
	cc := &clientCert{file: c.File}
	leaf := certs[0]
	cc.readApple(leaf)
	if !cc.envs[envProduction] && !cc.envs[envDevelopment] {
		what := "it"
		if leaf.IsCA {
			what = "it is a CA certificate and"
		}
		return nil, fmt.Errorf("certificate %s: not an APNs client certificate: %s has none of Apple's push environment extensions (subject %q); download the push certificate for the app from the Apple developer account", c.File, what, leaf.Subject.CommonName)
	}
	if key == nil {
		return nil, fmt.Errorf("certificate %s: holds no private key (a PEM file needs the certificate and its key; a .p12 export must include the key)", c.File)
	}
	if !publicKeyMatches(leaf, key) {
		return nil, fmt.Errorf("certificate %s: the private key does not belong to the certificate %q", c.File, leaf.Subject.CommonName)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %s: %q expired on %s; renew it in the Apple developer account", c.File, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("certificate %s: %q is not valid until %s (check the clock)", c.File, leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	chain := make([][]byte, 0, len(certs))
	for _, x := range certs {
		chain = append(chain, x.Raw)
	}
	cc.tls = tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	return cc, nil
}

// readApple reads Apple's environment and topic extensions and the bundle
// id. A certificate without the topics extension has its bundle id as its
// only topic.
//
// pushsim reads the same extensions as Apple's side of the test; the two
// are written apart on purpose, so that a misreading here cannot be
// mirrored there and pass.
func (c *clientCert) readApple(x *x509.Certificate) {
	for _, atv := range x.Subject.Names {
		if s, ok := atv.Value.(string); ok && atv.Type.Equal(oidUID) {
			c.uid = s
		}
	}
	for _, ext := range x.Extensions {
		switch {
		case ext.Id.Equal(oidAPNsDevelopment):
			c.envs[envDevelopment] = true
		case ext.Id.Equal(oidAPNsProduction):
			c.envs[envProduction] = true
		case ext.Id.Equal(oidAPNsTopics):
			// A sequence of (UTF8String topic, SEQUENCE of kinds) pairs.
			var seq []asn1.RawValue
			if _, err := asn1.Unmarshal(ext.Value, &seq); err == nil {
				for _, v := range seq {
					if v.Class == asn1.ClassUniversal && v.Tag == asn1.TagUTF8String {
						c.topics = append(c.topics, string(v.Bytes))
					}
				}
			}
		}
	}
	if len(c.topics) == 0 && c.uid != "" {
		c.topics = []string{c.uid}
	}
}

// allows reports whether the certificate may push to topic.
func (c *clientCert) allows(topic string) bool { return slices.Contains(c.topics, topic) }

func isPEM(b []byte) bool {
	return bytes.Contains(b, []byte("-----BEGIN "))
}

// parseP12 decodes a PKCS#12 file; go-pkcs12 reads both the modern
// (PBES2: PBKDF2, AES) and the legacy (3DES, RC2) encryption.
func parseP12(b []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	key, leaf, chain, err := pkcs12.DecodeChain(b, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		if password == "" {
			return nil, nil, errors.New("the .p12 file is password-protected: set the certificate's password")
		}
		return nil, nil, errors.New("wrong password for the .p12 file")
	case err != nil:
		// go-pkcs12's errors quote ASN.1 internals that help nobody.
		return nil, nil, errors.New("neither PEM nor a PKCS#12 (.p12) file with a certificate and its key")
	}
	return append([]*x509.Certificate{leaf}, chain...), key, nil
}

// parsePEMCert reads the certificates (the client certificate first) and
// private key of a PEM file.
func parsePEMCert(b []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	var certs []*x509.Certificate
	var key crypto.PrivateKey
	var keyErr error
	var types []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		types = append(types, blk.Type)
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("bad certificate in PEM: %w", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			if key != nil || keyErr != nil {
				return nil, nil, errors.New("holds more than one private key")
			}
			key, keyErr = parsePEMKey(blk, password)
		}
	}
	if len(certs) == 0 {
		if key != nil || keyErr != nil {
			return nil, nil, errors.New("holds a private key but no certificate (a .p8 key is for token authentication: set key_file, key_id and team_id instead)")
		}
		return nil, nil, fmt.Errorf("no certificate in the PEM file (blocks: %s)", strings.Join(types, ", "))
	}
	if keyErr != nil {
		return nil, nil, keyErr
	}
	return certs, key, nil
}

func parsePEMKey(blk *pem.Block, password string) (crypto.PrivateKey, error) {
	if blk.Headers["Proc-Type"] != "" {
		return nil, errors.New("the private key uses OpenSSL's legacy PEM encryption, which pushd does not read: convert it with openssl pkcs8 -topk8 -v2 aes256")
	}
	der := blk.Bytes
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("bad RSA private key: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("bad EC private key: %w", err)
		}
		return k, nil
	case "ENCRYPTED PRIVATE KEY":
		if password == "" {
			return nil, errors.New("the private key is encrypted: set the certificate's password")
		}
		return decryptPKCS8(der, password)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("bad PKCS#8 private key: %w", err)
	}
	return k, nil
}

var errWrongKeyPassword = errors.New("wrong password for the encrypted private key")

// decryptPKCS8 decrypts and parses an EncryptedPrivateKeyInfo (PBES2, as
// "openssl pkcs8 -topk8 -v2" writes) with github.com/youmark/pkcs8.
func decryptPKCS8(der []byte, password string) (key crypto.PrivateKey, err error) {
	defer func() {
		// The library hands the file's IV and data to crypto/cipher
		// unchecked, which panics when they do not fit the cipher: the
		// file is damaged, and pushd must say so rather than crash.
		if recover() != nil {
			key, err = nil, errors.New("bad encrypted private key: its IV or data does not fit the cipher")
		}
	}()
	key, err = pkcs8.ParsePKCS8PrivateKey(der, []byte(password))
	var kdfErr *kdfError
	switch {
	case err == nil:
		return key, nil
	case err.Error() == "pkcs8: incorrect password":
		// The library has no error value to compare with.
		return nil, errWrongKeyPassword
	case errors.As(err, &kdfErr):
		return nil, err
	}
	// The library's other errors name what it could not read: "only
	// PBES2 supported" (PKCS#5 v1.5 or PKCS#12 encryption), "unsupported
	// cipher (OID: ...)", a damaged structure.
	return nil, fmt.Errorf("the encrypted private key cannot be read (%v): pushd reads PBES2 with PBKDF2 or scrypt and AES-CBC or 3DES-CBC; re-encrypt it with openssl pkcs8 -topk8 -v2 aes256", err)
}

// The key derivations youmark/pkcs8 falls short on are replaced through
// its RegisterKDF, the library's hook for them, once, before any key is
// read: its PBKDF2 knows only HMAC-SHA1 and SHA-256 (OpenSSL's -v2prf also
// writes SHA-384 and SHA-512), and neither KDF bounds the work a damaged or
// hostile file asks for at start.
func init() {
	pkcs8.RegisterKDF(oidPBKDF2, func() pkcs8.KDFParameters { return new(pbkdf2Params) })
	pkcs8.RegisterKDF(oidScrypt, func() pkcs8.KDFParameters { return new(scryptParams) })
}

var (
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
)

// Bounds on the work of deriving a key's encryption key at start.
const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 256 << 20 // bytes: 128·N·r
	maxScryptParallel   = 16
)

// kdfError is a key derivation refused before any work.
type kdfError struct{ msg string }

func (e *kdfError) Error() string { return e.msg }

func kdfErrorf(format string, args ...any) error {
	return &kdfError{fmt.Sprintf(format, args...)}
}

// pbkdf2Params are PBKDF2's parameters (RFC 8018, appendix A.2).
type pbkdf2Params struct {
	Salt      []byte
	Iteration int
	KeyLength int                      `asn1:"optional"`
	PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
}

func (p *pbkdf2Params) DeriveKey(password []byte, size int) ([]byte, error) {
	if p.Iteration < 1 || p.Iteration > maxPBKDF2Iterations {
		return nil, kdfErrorf("the encrypted private key asks for %d PBKDF2 iterations (1 to %d allowed)", p.Iteration, maxPBKDF2Iterations)
	}
	if p.KeyLength != 0 && p.KeyLength != size {
		return nil, kdfErrorf("bad encrypted private key: PBKDF2 key length %d does not fit the cipher", p.KeyLength)
	}
	var h func() hash.Hash
	switch prf := p.PRF.Algorithm; {
	case len(prf) == 0 || prf.Equal(oidHMACSHA1):
		h = sha1.New
	case prf.Equal(oidHMACSHA256):
		h = sha256.New
	case prf.Equal(oidHMACSHA384):
		h = sha512.New384
	case prf.Equal(oidHMACSHA512):
		h = sha512.New
	default:
		return nil, kdfErrorf("the encrypted private key's PBKDF2 hash %v is not supported (SHA-1, SHA-256, SHA-384, SHA-512 are)", prf)
	}
	return pbkdf2.Key(h, string(password), p.Salt, p.Iteration, size)
}

// scryptParams are scrypt's parameters (RFC 7914, section 7.1).
type scryptParams struct {
	Salt      []byte
	N, R, P   int
	KeyLength int `asn1:"optional"`
}

func (p *scryptParams) DeriveKey(password []byte, size int) ([]byte, error) {
	if p.N < 2 || p.R < 1 || p.P < 1 || p.P > maxScryptParallel || p.R > maxScryptMemory/128/p.N {
		return nil, kdfErrorf("the encrypted private key asks for scrypt N=%d r=%d p=%d (at most %d MiB and p %d allowed)", p.N, p.R, p.P, maxScryptMemory>>20, maxScryptParallel)
	}
	if p.KeyLength != 0 && p.KeyLength != size {
		return nil, kdfErrorf("bad encrypted private key: scrypt key length %d does not fit the cipher", p.KeyLength)
	}
	return scrypt.Key(password, p.Salt, p.N, p.R, p.P, size)
}

// publicKeyMatches reports whether key is the private half of leaf's key.
func publicKeyMatches(leaf *x509.Certificate, key crypto.PrivateKey) bool {
	s, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(leaf.PublicKey)
}

// appCerts loads an app's certificates, indexed by environment (nil where
// the app has none), and returns the app's topic: ac.Topic, or the
// certificates' bundle id when it is empty.
func appCerts(ac AppConfig, now time.Time) (certs [2]*clientCert, topic string, err error) {
	names := [2]string{Production, Development}
	if ac.Certificate.set() {
		cc, err := loadCert(ac.Certificate, now)
		if err != nil {
			return certs, "", err
		}
		for i, ok := range cc.envs {
			if !ok {
				return certs, "", fmt.Errorf("certificate %s is %s, but is configured as a universal certificate for both environments, including %s: configure it as the %s certificate only, or use a universal \"Apple Push Services\" certificate", cc.file, cc.kind(), names[i], names[1-i])
			}
		}
		certs = [2]*clientCert{cc, cc}
	} else {
		for i, c := range [2]Certificate{ac.ProductionCertificate, ac.DevelopmentCertificate} {
			if !c.set() {
				continue
			}
			cc, err := loadCert(c, now)
			if err != nil {
				return certs, "", err
			}
			if !cc.envs[i] {
				return certs, "", fmt.Errorf("certificate %s is %s, but is configured for %s: APNs refuses it there (BadCertificateEnvironment)", cc.file, cc.kind(), names[i])
			}
			certs[i] = cc
		}
	}
	topic = ac.Topic
	var first *clientCert
	for _, cc := range certs {
		switch {
		case cc == nil:
		case first == nil:
			first = cc
			if topic == "" {
				topic = cc.uid
			}
		case ac.Topic == "" && cc.uid != topic:
			return certs, "", fmt.Errorf("certificates %s and %s are for different bundle ids (%q, %q): set the app's topic", first.file, cc.file, topic, cc.uid)
		}
	}
	if topic == "" {
		return certs, "", fmt.Errorf("certificate %s names no bundle id (subject UID): set the app's topic", first.file)
	}
	for _, cc := range certs {
		if cc != nil && !cc.allows(topic) {
			return certs, "", fmt.Errorf("certificate %s is for %s, not the app's topic %q", cc.file, strings.Join(cc.topics, ", "), topic)
		}
	}
	return certs, topic, nil
}
