package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/pushd/pushd/internal/pemfile"
)

// Provider token ages. Apple refuses a token an hour after its issue time
// (ExpiredProviderToken) and refuses a new token for a key within 20
// minutes of the last (TooManyProviderTokenUpdates).
const (
	// refreshAge is the age at which the deployment's token is replaced:
	// 20 minutes from either limit, room for the clocks of pushd's
	// machines and Apple's to disagree.
	refreshAge = 40 * time.Minute
	// maxAge is the oldest token a push presents. Only while the store
	// cannot be reached is a token used past refreshAge: one the
	// deployment shares is worth more than a new one nobody else knows.
	maxAge = 55 * time.Minute
	// minForcedRefresh is the least age of a provider token that Send
	// replaces when Apple calls it expired. A younger token being refused
	// means the clocks disagree by most of an hour, and a new one would be
	// refused too; signing one on every push would only earn
	// TooManyProviderTokenUpdates.
	minForcedRefresh = time.Minute
	// tokenInterval is Apple's least time between a key's tokens: a
	// token issued sooner after the last one Apple took is refused as
	// TooManyProviderTokenUpdates.
	tokenInterval = 20 * time.Minute
)

// Store round trips.
const (
	// storeTimeout bounds one round trip to the store, so that a hung
	// Redis holds pushes for seconds, not for the push's whole deadline.
	storeTimeout = 2 * time.Second
	// storeRetry is how long pushes go on with the token they have after
	// the store failed before one of them asks it again.
	storeRetry = 10 * time.Second
	// casAttempts bounds how often one renewal loses the compare-and-set
	// to another process and loads the winner's token.
	casAttempts = 3
	// storeCheck is how often a process looks at the store while its
	// token is young, so that a token another process put back (see
	// signer.reload) reaches it in minutes rather than at refreshAge. It
	// costs one store read per key and process per storeCheck, made by
	// one push while the others go on with the token they have.
	storeCheck = time.Minute
)

// TokenStore keeps each signing key's provider token for the whole
// deployment, so that every pushd process, and a process after a
// restart, presents the same one: Apple refuses a new token for a key
// within 20 minutes of the last (429 TooManyProviderTokenUpdates), so a
// process that signed its own would have its pushes refused.
//
// A process takes the stored token while it is younger than refreshAge;
// only when there is none, or it is older, does it sign a new one and
// store it with CompareAndSwap against the one it loaded. Of processes
// replacing a token at once, one wins and the others load and use its
// token, so that Apple sees one new token.
//
// key names the signing key: its team id and key id, "TEAMID:KEYID".
// Tokens are bearer credentials: implementations must not log them or put
// them in errors. package providertoken has the implementations.
type TokenStore interface {
	// Load returns key's token and when it was issued; bearer is empty
	// when the store holds none.
	Load(ctx context.Context, key string) (bearer string, issuedAt time.Time, err error)
	// CompareAndSwap stores bearer, issued at issuedAt, as key's token if
	// the token stored is old ("": if none is), and reports whether it
	// did.
	CompareAndSwap(ctx context.Context, key, old, bearer string, issuedAt time.Time) (swapped bool, err error)
}

// signer is the provider token (JWT) of one signing key, shared by every
// app and environment that uses the key and, through the store, by every
// process of the deployment.
//
// The transport puts the token in each push's authorization header (apns2's
// client is given no token.Token, so it never signs one of its own). A
// push reads the token without a lock; only the push that finds it due
// for renewal, and Send after Apple refused it, talk to the store, one at
// a time.
type signer struct {
	key    *ecdsa.PrivateKey
	keyID  string
	teamID string
	// file is where the key came from, for error messages; never the key.
	file string
	// name is the key's name in the store.
	name  string
	store TokenStore
	// now is the clock of issue times and ages.
	now func() time.Time
	log *slog.Logger

	// tok is the token pushes present; nil until the first push.
	tok atomic.Pointer[providerToken]
	// sem is held while the store is asked or a token signed. It is a
	// channel rather than a mutex so that a push waiting for it gives up
	// with its context.
	sem chan struct{}
	// storeDown says the store failed last time it was asked, so that an
	// outage is logged once; guarded by sem.
	storeDown bool
	// prev is the token tok replaced, nil if none: the token to put back
	// when Apple refuses a newer one as one too many (see reload).
	// Guarded by sem.
	prev *providerToken
	// signed is when this process last signed a token; guarded by sem.
	signed time.Time
}

// providerToken is one JWT. Values are never changed once published in
// signer.tok.
type providerToken struct {
	bearer string
	issued time.Time
	// until is when a push must look at the store again: storeCheck
	// after it last did, and no later than issued plus refreshAge (sooner
	// while the store cannot be reached).
	until time.Time
}

func newSigner(key *ecdsa.PrivateKey, keyID, teamID, file string, store TokenStore, now func() time.Time, log *slog.Logger) *signer {
	return &signer{
		key: key, keyID: keyID, teamID: teamID, file: file,
		name:  teamID + ":" + keyID,
		store: store, now: now, log: log,
		sem: make(chan struct{}, 1),
	}
}

// bearer returns the token a push presents, renewing it first when due.
func (k *signer) bearer(ctx context.Context) (string, error) {
	t := k.tok.Load()
	if t != nil && k.now().Before(t.until) {
		return t.bearer, nil
	}
	if t != nil && k.now().Sub(t.issued) < refreshAge {
		// Only the look at the store is due: one push makes it, the
		// others go on with the token they have rather than wait.
		select {
		case k.sem <- struct{}{}:
		default:
			return t.bearer, nil
		}
	} else if err := k.lock(ctx); err != nil {
		return "", err
	}
	defer k.unlock()
	if t := k.tok.Load(); t != nil && k.now().Before(t.until) {
		return t.bearer, nil // renewed while this push waited
	}
	t, err := k.sync(ctx, "")
	if err != nil {
		return "", err
	}
	return t.bearer, nil
}

// refresh answers Apple calling a token expired. used is the token the
// refused push presented: when another push has already replaced it, or
// it is too young to be the problem, refresh does nothing and reports
// whether a retry could meet a different token. Otherwise it replaces it
// through the store, as renewal does, but never with used.
func (k *signer) refresh(ctx context.Context, used string) (retry bool, err error) {
	if err := k.lock(ctx); err != nil {
		return false, err
	}
	defer k.unlock()
	t := k.tok.Load()
	if t == nil || t.bearer != used {
		return true, nil // replaced since: the retry carries the new one
	}
	if k.now().Sub(t.issued) < minForcedRefresh {
		return false, nil
	}
	t, err = k.sync(ctx, used)
	if err != nil {
		return false, err
	}
	return t.bearer != used, nil
}

// reload answers Apple refusing a token as one too many for the key
// (TooManyProviderTokenUpdates): Apple took another token of the key
// within the last 20 minutes. reload reports whether a retry would present
// a different token. It never signs: Apple has just said that a new token
// is one too many.
//
// When the store holds another token than the refused one, reload takes
// it: the deployment's token, which Apple took first. When the store holds
// the refused one (or none), the token it replaced may have been lost: a
// Redis restarted empty, and a process that started then signed and
// stored a token of its own. If this process presented an older token
// before the refused one (prev), still younger than maxAge, reload puts
// that one back in the store in place of the refused one and retries with
// it: it is the token Apple took, or older, and Apple accepts a token
// until it is an hour old. Processes that hold only the refused token
// find the older one in the store at their next look (storeCheck) or
// their next refusal. Otherwise the push stays refused and is retried
// later, like any throttled push.
//
// Why this is safe between processes. The token only moves back in time:
// the token put back is older than the refused one, and only a refusal by
// Apple of the token in the store makes a process put one back, with a
// compare-and-set against that token. So processes cannot hand the store
// back and forth: of several putting back at once, one wins, and the
// others load its token and take it if it is not the one refused, as
// after a lost renewal. A token put back that Apple refuses too (older
// than maxAge to Apple's clock, or never taken) costs one 429 per push
// that carries it, and no process puts back anything newer. Nothing here
// signs, and sync signs no sooner than tokenInterval after this process's
// last signature while a stored token is usable, so no refusal makes a
// process sign again and again.
func (k *signer) reload(ctx context.Context, used string) (retry bool, err error) {
	if err := k.lock(ctx); err != nil {
		return false, err
	}
	defer k.unlock()
	t := k.tok.Load()
	if t == nil || t.bearer != used {
		return true, nil
	}
	for range casAttempts {
		stored, old, err := k.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				k.storeFailed(err)
			}
			return false, fmt.Errorf("apns: key %s: %w", k.keyID, err)
		}
		if stored != nil && stored.bearer != used {
			if k.now().Sub(stored.issued) >= maxAge {
				return false, nil
			}
			k.adopt(stored)
			return true, nil
		}
		p := k.prev
		if p == nil || p.bearer == used || !p.issued.Before(t.issued) || k.now().Sub(p.issued) >= maxAge {
			return false, nil
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		swapped, err := k.store.CompareAndSwap(sctx, k.name, old, p.bearer, p.issued)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				k.storeFailed(err)
			}
			return false, fmt.Errorf("apns: key %s: store provider token: %w", k.keyID, err)
		}
		if swapped {
			k.log.Info("apns: Apple refused the stored provider token as one too many; put back the previous one",
				"key_id", k.keyID, "team_id", k.teamID, "previous_issued", p.issued)
			k.adopt(p)
			return true, nil
		}
		// Another process changed the store first: look at its token.
	}
	return false, nil
}

// sync makes the deployment's token this process's: the stored one if it
// is younger than refreshAge, else a new one (or this process's own, if
// young enough) stored in its place; losing that race to another process
// takes the winner's. refused is a token Apple refused ("" for none),
// which is never taken. Called with sem held.
func (k *signer) sync(ctx context.Context, refused string) (*providerToken, error) {
	fresh := func(t *providerToken) bool {
		return t != nil && t.bearer != refused && k.now().Sub(t.issued) < refreshAge
	}
	for range casAttempts {
		stored, old, err := k.load(ctx)
		if err != nil {
			return k.fallback(ctx, refused, err)
		}
		if fresh(stored) {
			return k.adopt(stored), nil
		}
		// This process's own token is stored rather than a new one
		// when it is young: it was signed while the store could not be
		// reached, and Apple may have seen it.
		next := k.tok.Load()
		if !fresh(next) {
			if stored != nil && stored.bearer != refused && k.now().Sub(stored.issued) < maxAge &&
				!k.signed.IsZero() && k.now().Sub(k.signed) < tokenInterval {
				// This process signed within tokenInterval, so Apple
				// would refuse another: the stored token, put back by
				// reload, goes on until this process may sign.
				return k.adopt(stored), nil
			}
			if next, err = k.sign(); err != nil {
				return nil, err
			}
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		swapped, err := k.store.CompareAndSwap(sctx, k.name, old, next.bearer, next.issued)
		cancel()
		if err != nil {
			return k.fallback(ctx, refused, fmt.Errorf("store provider token: %w", err))
		}
		if swapped {
			return k.adopt(next), nil
		}
		// Another process stored one first: load it.
	}
	return k.fallback(ctx, refused, fmt.Errorf("lost the compare-and-set to other processes %d times", casAttempts))
}

// load returns the stored token, or nil when there is none or it is not
// one of this key's, and the stored bearer as it is, for CompareAndSwap.
func (k *signer) load(ctx context.Context) (t *providerToken, old string, err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	bearer, issued, err := k.store.Load(ctx, k.name)
	if err != nil {
		return nil, "", fmt.Errorf("load provider token: %w", err)
	}
	if bearer == "" {
		return nil, "", nil
	}
	if cur := k.tok.Load(); cur == nil || cur.bearer != bearer {
		// A token this process did not sign, or no longer holds, is
		// checked before it is presented: a stored token of another key
		// under the same key id, or a damaged one, would fail every push
		// as InvalidProviderToken, while replacing it costs one signature.
		if err := k.verify(bearer, issued); err != nil {
			k.log.Warn("apns: the stored provider token is not this key's; replacing it",
				"key_id", k.keyID, "team_id", k.teamID, "file", k.file, "err", err)
			return nil, bearer, nil
		}
	}
	return &providerToken{bearer: bearer, issued: issued}, bearer, nil
}

// fallback is sync's answer when the store cannot be reached: pushes go on
// with this process's token, the one it has if it is usable, else a new
// one, and ask the store again after storeRetry.
//
// The alternative, failing pushes until the store answers, would turn a
// Redis hiccup into an APNs outage. The store is the Redis asynq takes
// jobs from, so a process that has jobs but cannot reach it is most likely
// seeing a blip, and the token it has is the deployment's token as of the
// last answer. A token signed here risks what the store prevents, a 429
// TooManyProviderTokenUpdates if another process replaced the shared one
// within 20 minutes; such pushes are retried as throttled, and when the
// store answers again the process takes the shared token, so the damage
// is bounded by the outage.
func (k *signer) fallback(ctx context.Context, refused string, err error) (*providerToken, error) {
	if ctx.Err() != nil {
		// The push was given up on, which says nothing about the store.
		return nil, ctx.Err()
	}
	k.storeFailed(err)
	now := k.now()
	t := k.tok.Load()
	if t == nil || t.bearer == refused || now.Sub(t.issued) >= maxAge {
		if t, err = k.sign(); err != nil {
			return nil, err
		}
	} else {
		t = &providerToken{bearer: t.bearer, issued: t.issued}
	}
	t.until = now.Add(storeRetry)
	if last := t.issued.Add(maxAge); last.Before(t.until) {
		t.until = last
	}
	k.publish(t)
	return t, nil
}

// storeFailed logs the first failure of an outage. Called with sem held.
func (k *signer) storeFailed(err error) {
	if k.storeDown {
		return
	}
	k.storeDown = true
	k.log.Warn("apns: provider token store unavailable; pushes use this process's own token until it answers",
		"key_id", k.keyID, "team_id", k.teamID, "err", err)
}

// adopt makes t's JWT the one pushes present until it is refreshAge old,
// looking at the store every storeCheck meanwhile, and returns the token
// published. A token older than refreshAge (one put back by reload) is
// looked at again after storeCheck. Called with sem held.
func (k *signer) adopt(t *providerToken) *providerToken {
	now := k.now()
	last := t.issued.Add(refreshAge)
	if !last.After(now) {
		last = t.issued.Add(maxAge)
	}
	until := now.Add(storeCheck)
	if last.Before(until) {
		until = last
	}
	t = &providerToken{bearer: t.bearer, issued: t.issued, until: until}
	k.publish(t)
	if k.storeDown {
		k.storeDown = false
		k.log.Info("apns: provider token store answers again", "key_id", k.keyID, "team_id", k.teamID)
	}
	return t
}

// publish makes t the token pushes present, and the one it replaces prev.
// Called with sem held.
func (k *signer) publish(t *providerToken) {
	if cur := k.tok.Load(); cur != nil && cur.bearer != t.bearer {
		k.prev = cur
	}
	k.tok.Store(t)
}

// jwtClaims are the claims of an APNs provider token.
type jwtClaims struct {
	Iss string `json:"iss"`
	Iat int64  `json:"iat"`
}

// Valid is jwt.Claims' check, which verify does itself.
func (jwtClaims) Valid() error { return nil }

// sign makes a new token, issued now. Called with sem held.
func (k *signer) sign() (*providerToken, error) {
	k.signed = k.now()
	iat := k.signed.Unix()
	j := &jwt.Token{
		Header: map[string]any{"alg": "ES256", "kid": k.keyID},
		Claims: jwtClaims{Iss: k.teamID, Iat: iat},
		Method: jwt.SigningMethodES256,
	}
	bearer, err := j.SignedString(k.key)
	if err != nil {
		return nil, fmt.Errorf("apns: key %s (%s): sign provider token: %w", k.keyID, k.file, err)
	}
	return &providerToken{bearer: bearer, issued: time.Unix(iat, 0)}, nil
}

// verify checks that bearer is a token of this key, issued at issued. Its
// errors never quote the token.
func (k *signer) verify(bearer string, issued time.Time) error {
	var c jwtClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())
	tok, err := p.ParseWithClaims(bearer, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != k.keyID {
			return nil, fmt.Errorf("key id %q", kid)
		}
		return &k.key.PublicKey, nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("not a token of key %s: %w", k.keyID, err)
	case !tok.Valid:
		return errors.New("signature does not verify")
	case c.Iss != k.teamID:
		return fmt.Errorf("issued by team %q, not %s", c.Iss, k.teamID)
	case c.Iat != issued.Unix():
		return errors.New("issue time differs from the stored one")
	}
	return nil
}

// lock takes sem, or gives up when ctx ends.
func (k *signer) lock(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *signer) unlock() { <-k.sem }

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
