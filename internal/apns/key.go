package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/sideshow/apns2/token"

	"github.com/pushd/pushd/internal/pemfile"
)

// minForcedRefresh is the least age of a provider token that Send replaces
// when Apple calls it expired. A younger token being refused means the
// clocks disagree by most of an hour, and a new one would be refused too;
// signing one on every push would only earn TooManyProviderTokenUpdates.
const minForcedRefresh = time.Minute

// signer is the provider token (JWT) of one signing key, shared by every app
// and environment that uses the key: Apple limits how often a key's token
// may be replaced, so all of its clients must present the same one.
//
// token.Token guards Bearer and IssuedAt with its embedded mutex in
// GenerateIfExpired, which apns2 calls on every push, but Generate itself
// takes no lock; refresh takes it around Generate.
type signer struct {
	tok *token.Token
	// file is where the key came from, for error messages; never the key.
	file string
	// now is the clock refresh judges the token's age by; apns2 itself
	// reads time.Now.
	now func() time.Time
}

// refresh replaces the token after Apple called it expired. used is the
// authorization header of the refused push: when another push has already
// replaced that token, or the token is too young to be the problem, it does
// nothing and reports whether a retry could meet a different token.
func (k *signer) refresh(used string) (retry bool, err error) {
	k.tok.Lock()
	defer k.tok.Unlock()
	bearer, ok := strings.CutPrefix(used, "bearer ")
	if !ok || bearer != k.tok.Bearer {
		// Replaced since: the retry carries the new one.
		return true, nil
	}
	if k.now().Sub(time.Unix(k.tok.IssuedAt, 0)) < minForcedRefresh {
		return false, nil
	}
	if _, err := k.tok.Generate(); err != nil {
		return false, fmt.Errorf("apns: key %s (%s): sign provider token: %w", k.tok.KeyID, k.file, err)
	}
	return true, nil
}

// loadP8 reads an AuthKey_<KEYID>.p8 file as Apple issues it: a PEM
// "PRIVATE KEY" block holding a PKCS#8 EC P-256 key. Errors name the file
// and what is wrong with it, never its content.
func loadP8(file string) (*ecdsa.PrivateKey, error) {
	b, err := pemfile.Read(file)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", file, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("load key %s: not a PEM file (a .p8 key starts with -----BEGIN PRIVATE KEY-----)", file)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load key %s: PEM block %q is not a PKCS#8 private key as Apple issues in .p8 files: %w", file, blk.Type, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %s: holds a %T, want an EC P-256 key as Apple issues", file, key)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("load key %s: EC key on %s, want P-256", file, ec.Curve.Params().Name)
	}
	return ec, nil
}
