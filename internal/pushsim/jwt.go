package pushsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
)

// jwtParts splits a compact JWS and decodes its header and claims into h and c.
func jwtParts(tok string, h, c any) (signed, sig []byte, err error) {
	head, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, nil, errors.New("not a JWT: want header.claims.signature")
	}
	claims, sigText, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigText, ".") {
		return nil, nil, errors.New("not a JWT: want header.claims.signature")
	}
	hb, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, nil, errors.New("JWT header is not base64url")
	}
	cb, err := base64.RawURLEncoding.DecodeString(claims)
	if err != nil {
		return nil, nil, errors.New("JWT claims are not base64url")
	}
	sig, err = base64.RawURLEncoding.DecodeString(sigText)
	if err != nil {
		return nil, nil, errors.New("JWT signature is not base64url")
	}
	if err := json.Unmarshal(hb, h); err != nil {
		return nil, nil, errors.New("JWT header is not a JSON object")
	}
	if err := json.Unmarshal(cb, c); err != nil {
		return nil, nil, errors.New("JWT claims are not a JSON object")
	}
	return []byte(tok[:len(head)+1+len(claims)]), sig, nil
}

// verifyES256 checks a raw r||s P-256 signature, as JWS encodes it.
func verifyES256(pub *ecdsa.PublicKey, signed, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	sum := sha256.Sum256(signed)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, sum[:], r, s)
}

// verifyRS256 checks an RSASSA-PKCS1-v1_5 SHA-256 signature.
func verifyRS256(pub *rsa.PublicKey, signed, sig []byte) bool {
	sum := sha256.Sum256(signed)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}
