package pushsim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// signES256 makes an APNs provider token without a JWT library, so the
// verifier is checked against an independent signer.
func signES256(tb testing.TB, k *APNsKey, iat int64) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"` + k.KeyID + `"}`))
	claims := enc.EncodeToString([]byte(`{"iss":"` + k.TeamID + `","iat":` + itoa(iat) + `}`))
	sum := sha256.Sum256([]byte(head + "." + claims))
	r, s, err := ecdsa.Sign(rand.Reader, k.Key, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return head + "." + claims + "." + enc.EncodeToString(sig)
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
