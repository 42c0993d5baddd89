package pushsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
)

// Fate is what a provider does with a device token. Tokens carry their fate so
// that tests and benchmarks in any process know the expected outcome without a
// shared database: the fate is sealed into the token with an HMAC of the seed.
type Fate uint8

const (
	// FateValid tokens are accepted (for their environment and topic, or project).
	FateValid Fate = 1
	// FateUnregistered tokens belonged to an app that was uninstalled:
	// APNs 410 Unregistered, FCM UNREGISTERED.
	FateUnregistered Fate = 2
	// FateMalformed tokens pass a client's syntax check but the provider
	// refuses them: APNs 400 BadDeviceToken in every environment, FCM
	// INVALID_ARGUMENT "not a valid FCM registration token".
	FateMalformed Fate = 3
)

var fateNames = map[Fate]string{
	FateValid:        "valid",
	FateUnregistered: "unregistered",
	FateMalformed:    "malformed",
}

func (f Fate) String() string {
	if s, ok := fateNames[f]; ok {
		return s
	}
	return fmt.Sprintf("Fate(%d)", uint8(f))
}

// ParseFate reads a fate name as printed by Fate.String.
func ParseFate(s string) (Fate, error) {
	for f, name := range fateNames {
		if name == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown fate %q (want valid, unregistered or malformed)", s)
}

// MarshalText lets fates appear by name in JSON.
func (f Fate) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a fate by name.
func (f *Fate) UnmarshalText(b []byte) error {
	v, err := ParseFate(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Env is an APNs environment: each has its own gateway, and a device token
// belongs to exactly one of them.
type Env uint8

const (
	Production  Env = 1
	Development Env = 2
)

func (e Env) String() string {
	switch e {
	case Production:
		return "production"
	case Development:
		return "development"
	}
	return "unknown"
}

// ParseEnv reads "production" or "development".
func ParseEnv(s string) (Env, error) {
	switch s {
	case "production":
		return Production, nil
	case "development":
		return Development, nil
	}
	return 0, fmt.Errorf("unknown APNs environment %q (want production or development)", s)
}

// Minter mints and recognises device tokens for one seed. It is a value with
// no state beyond the seed, so any process with the same seed agrees on every
// token's fate.
type Minter struct {
	key []byte
}

// NewMinter returns a Minter for seed.
func NewMinter(seed string) Minter {
	k := sha256.Sum256([]byte("pushsim token seed\x00" + seed))
	return Minter{key: k[:]}
}

// TokenInfo is what a minted token says about itself.
type TokenInfo struct {
	Fate Fate
	// Env is the APNs environment the token was minted for (APNs only).
	Env Env
	// Scope is the FNV-1a hash of the APNs topic or the FCM project the
	// token was minted for.
	Scope uint32
}

// A sealed token is 32 bytes: 16 bytes of masked plaintext and a 16-byte MAC.
// Plaintext: byte 0 = fate<<4 | env, bytes 1..4 = scope hash, bytes 5..12 =
// the caller's serial number, bytes 13..15 = zero.
const sealedLen = 32

func (m Minter) seal(info TokenInfo, serial uint64) [sealedLen]byte {
	var out [sealedLen]byte
	var plain [16]byte
	plain[0] = byte(info.Fate)<<4 | byte(info.Env)
	binary.BigEndian.PutUint32(plain[1:5], info.Scope)
	binary.BigEndian.PutUint64(plain[5:13], serial)
	mac := m.mac(0, plain[:])
	copy(out[16:], mac[:16])
	mask := m.mac(1, mac[:16])
	for i := range plain {
		out[i] = plain[i] ^ mask[i]
	}
	return out
}

func (m Minter) open(b []byte) (TokenInfo, bool) {
	if len(b) != sealedLen || len(m.key) == 0 {
		return TokenInfo{}, false
	}
	mask := m.mac(1, b[16:])
	var plain [16]byte
	for i := range plain {
		plain[i] = b[i] ^ mask[i]
	}
	mac := m.mac(0, plain[:])
	if !hmac.Equal(mac[:16], b[16:]) {
		return TokenInfo{}, false
	}
	info := TokenInfo{
		Fate:  Fate(plain[0] >> 4),
		Env:   Env(plain[0] & 0x0f),
		Scope: binary.BigEndian.Uint32(plain[1:5]),
	}
	if _, ok := fateNames[info.Fate]; !ok {
		return TokenInfo{}, false
	}
	return info, true
}

func (m Minter) mac(domain byte, b []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte{domain})
	h.Write(b)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// ScopeHash is the hash a token stores for its APNs topic or FCM project.
func ScopeHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// APNs mints the serial-th APNs device token (64 hex characters, like a
// real one) with fate for env and topic.
func (m Minter) APNs(fate Fate, env Env, topic string, serial uint64) string {
	b := m.seal(TokenInfo{Fate: fate, Env: env, Scope: ScopeHash(topic)}, serial)
	return hex.EncodeToString(b[:])
}

// ParseAPNs recognises a token minted by APNs. ok is false for tokens this
// seed did not mint, including well-formed tokens from elsewhere.
func (m Minter) ParseAPNs(token string) (info TokenInfo, ok bool) {
	if len(token) != 2*sealedLen {
		return TokenInfo{}, false
	}
	var b [sealedLen]byte
	if _, err := hex.Decode(b[:], []byte(token)); err != nil {
		return TokenInfo{}, false
	}
	return m.open(b[:])
}

// fcmMarker is the fixed part real FCM registration tokens carry after the
// instance id.
const fcmMarker = ":APA91b"

// fcmHead is how many characters of the encoded seal stand before the marker,
// as the 11-character instance id does in real tokens.
const fcmHead = 11

// FCM mints the serial-th FCM registration token with fate for project. Its
// shape follows real tokens: an instance id, ":APA91b", then opaque
// base64url text, about 160 characters in all.
func (m Minter) FCM(fate Fate, project string, serial uint64) string {
	b := m.seal(TokenInfo{Fate: fate, Scope: ScopeHash(project)}, serial)
	return m.fcmText(b[:])
}

// fcmText spells a sealed token the way FCM tokens look. Everything after
// the seal is derived from it, so ParseFCM can check every character.
func (m Minter) fcmText(sealed []byte) string {
	enc := base64.RawURLEncoding.EncodeToString(sealed)
	filler := m.mac(2, sealed)
	filler2 := m.mac(3, filler[:])
	pad := base64.RawURLEncoding.EncodeToString(append(filler[:], filler2[:]...))
	var sb strings.Builder
	sb.Grow(len(enc) + len(fcmMarker) + 1 + 2*len(pad))
	sb.WriteString(enc[:fcmHead])
	sb.WriteString(fcmMarker)
	sb.WriteString(enc[fcmHead:])
	sb.WriteByte('-')
	sb.WriteString(pad)
	sb.WriteString(pad)
	return sb.String()
}

// ParseFCM recognises a token minted by FCM. A token cut short or with
// characters added or changed anywhere is not recognised: FCM refuses a
// truncated or padded token, and so must the simulator.
func (m Minter) ParseFCM(token string) (info TokenInfo, ok bool) {
	head, rest, found := strings.Cut(token, fcmMarker)
	encLen := base64.RawURLEncoding.EncodedLen(sealedLen)
	if !found || len(head) != fcmHead || len(rest) < encLen-fcmHead {
		return TokenInfo{}, false
	}
	var b [sealedLen]byte
	n, err := base64.RawURLEncoding.Decode(b[:], []byte(head+rest[:encLen-fcmHead]))
	if err != nil || n != sealedLen {
		return TokenInfo{}, false
	}
	info, ok = m.open(b[:])
	if !ok || m.fcmText(b[:]) != token {
		return TokenInfo{}, false
	}
	return info, true
}

// WellFormedAPNs reports whether token has the syntax of an APNs device
// token: even-length hexadecimal of 64 to 200 characters.
func WellFormedAPNs(token string) bool {
	if len(token) < 64 || len(token) > 200 || len(token)%2 != 0 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// WellFormedFCM reports whether token could be an FCM registration token:
// 32 to 4096 characters of the URL-safe alphabet plus ':'.
func WellFormedFCM(token string) bool {
	if len(token) < 32 || len(token) > 4096 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}
