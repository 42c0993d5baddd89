package pushsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// APNsKey is a token-authentication signing key, as Apple hands out .p8 files.
type APNsKey struct {
	KeyID  string
	TeamID string
	Key    *ecdsa.PrivateKey
}

// GenerateAPNsKey makes a P-256 key. An empty keyID gets a random
// ten-character id, an empty teamID DefaultTeamID.
func GenerateAPNsKey(keyID, teamID string) (*APNsKey, error) {
	if keyID == "" {
		keyID = randomID(10)
	}
	if teamID == "" {
		teamID = DefaultTeamID
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pushsim: generate APNs key: %w", err)
	}
	return &APNsKey{KeyID: keyID, TeamID: teamID, Key: k}, nil
}

// P8 is the key as Apple's AuthKey_<KeyID>.p8 file: PKCS#8 PEM.
func (k *APNsKey) P8() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: marshal APNs key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseP8 reads an AuthKey .p8 file.
func ParseP8(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM file (a .p8 key starts with -----BEGIN PRIVATE KEY-----)")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		// x509's error dumps ASN.1 structure; the block kinds say more.
		return nil, fmt.Errorf("not a PKCS#8 private key (PEM holds: %s)", pemKind(b))
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 EC key as APNs requires")
	}
	return ec, nil
}

// ServiceAccount is a Google service account: the identity the Firebase SDK
// signs its OAuth2 assertion with.
type ServiceAccount struct {
	ProjectID    string
	ClientEmail  string
	ClientID     string
	PrivateKeyID string
	// Key is nil when only the public half is known.
	Key *rsa.PrivateKey
	// Public verifies assertions; it defaults to Key's public half.
	Public *rsa.PublicKey
}

func (sa *ServiceAccount) public() *rsa.PublicKey {
	if sa.Public != nil {
		return sa.Public
	}
	if sa.Key != nil {
		return &sa.Key.PublicKey
	}
	return nil
}

// GenerateServiceAccount makes a service account with a new RSA key for project.
func GenerateServiceAccount(project string) (*ServiceAccount, error) {
	if project == "" {
		return nil, errors.New("pushsim: service account: project id is required")
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("pushsim: generate service account key: %w", err)
	}
	return &ServiceAccount{
		ProjectID:    project,
		ClientEmail:  "firebase-adminsdk-" + randomID(5) + "@" + project + ".iam.gserviceaccount.com",
		ClientID:     randomDigits(21),
		PrivateKeyID: strings.ToLower(randomID(40)),
		Key:          k,
	}, nil
}

type serviceAccountFile struct {
	Type                    string `json:"type"`
	ProjectID               string `json:"project_id"`
	PrivateKeyID            string `json:"private_key_id"`
	PrivateKey              string `json:"private_key"`
	ClientEmail             string `json:"client_email"`
	ClientID                string `json:"client_id"`
	AuthURI                 string `json:"auth_uri"`
	TokenURI                string `json:"token_uri"`
	AuthProviderX509CertURL string `json:"auth_provider_x509_cert_url"`
	ClientX509CertURL       string `json:"client_x509_cert_url"`
	UniverseDomain          string `json:"universe_domain"`
}

// JSON is the account as the service-account key file Google's console
// downloads, with token_uri pointing at tokenURI.
func (sa *ServiceAccount) JSON(tokenURI string) ([]byte, error) {
	if sa.Key == nil {
		return nil, errors.New("pushsim: service account has no private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(sa.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsim: marshal service account key: %w", err)
	}
	f := serviceAccountFile{
		Type:                    "service_account",
		ProjectID:               sa.ProjectID,
		PrivateKeyID:            sa.PrivateKeyID,
		PrivateKey:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:             sa.ClientEmail,
		ClientID:                sa.ClientID,
		AuthURI:                 "https://accounts.google.com/o/oauth2/auth",
		TokenURI:                tokenURI,
		AuthProviderX509CertURL: "https://www.googleapis.com/oauth2/v1/certs",
		ClientX509CertURL:       "https://www.googleapis.com/robot/v1/metadata/x509/" + sa.ClientEmail,
		UniverseDomain:          "googleapis.com",
	}
	return json.MarshalIndent(f, "", "  ")
}

// ParseServiceAccount reads a service-account key file.
func ParseServiceAccount(b []byte) (*ServiceAccount, error) {
	var f serviceAccountFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if f.Type != "service_account" {
		return nil, fmt.Errorf("type %q: want \"service_account\"", f.Type)
	}
	if f.ProjectID == "" || f.ClientEmail == "" || f.PrivateKey == "" {
		return nil, errors.New("project_id, client_email and private_key are required")
	}
	blk, _ := pem.Decode([]byte(f.PrivateKey))
	if blk == nil {
		return nil, errors.New("private_key: not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private_key: not an RSA key")
	}
	return &ServiceAccount{
		ProjectID:    f.ProjectID,
		ClientEmail:  f.ClientEmail,
		ClientID:     f.ClientID,
		PrivateKeyID: f.PrivateKeyID,
		Key:          rk,
	}, nil
}

// SetTokenURI rewrites token_uri in a service-account key file and keeps
// every other field as it was.
func SetTokenURI(b []byte, uri string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	v, err := json.Marshal(uri)
	if err != nil {
		return nil, err
	}
	m["token_uri"] = v
	return json.MarshalIndent(m, "", "  ")
}

// TokenURI reads token_uri from a service-account key file.
func TokenURI(b []byte) string {
	var f serviceAccountFile
	if json.Unmarshal(b, &f) != nil {
		return ""
	}
	return f.TokenURI
}

func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}
