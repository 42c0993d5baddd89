// Package providertoken keeps APNs provider tokens where every pushd
// process of a deployment finds them: one token per signing key, replaced
// by one process at a time. It implements apns.TokenStore.
//
// Apple refuses a new provider token for a key within 20 minutes of the
// last (429 TooManyProviderTokenUpdates), so processes that each signed
// their own, or a process that signed a new one after a restart, would
// have their pushes refused. See apns.TokenStore for how the store is
// used.
//
// A token is a bearer credential for the key's whole team until it
// expires: nothing here logs it or puts it in an error.
package providertoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lifetime is how long Apple accepts a provider token after its issue
// time. A stored token is forgotten then: nobody could use it.
const Lifetime = time.Hour

// DefaultPrefix is the start of the Redis keys NewRedis uses by default.
const DefaultPrefix = "pushd:apns:provider-token:"

// casScript replaces a key's token if the one stored is the one the
// caller saw. KEYS[1] is the key's hash; ARGV is the token the caller saw
// ("" for none), the new token, its issue time and when the hash expires
// (both unix seconds). HGET of a missing hash is false in Lua, which the
// script takes as the empty string.
const casScript = `
if (redis.call('HGET', KEYS[1], 'jwt') or '') ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'jwt', ARGV[2], 'iat', ARGV[3])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return 1
`

// Redis keeps the tokens in Redis: the one every pushd of a deployment
// already shares as asynq's broker. Each signing key's token is a hash
// {jwt, iat} under the prefix plus the key's name, which expires with the
// token (Lifetime after its issue time). The compare-and-set is one Lua
// script, so it is atomic on a single server and, with one key per call,
// on Redis Cluster.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	cas    *redis.Script
}

// NewRedis returns a store on c whose keys start with prefix; empty is
// DefaultPrefix. Every process of a deployment must use the same prefix:
// that is what makes them share.
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Redis{c: c, prefix: prefix, cas: redis.NewScript(casScript)}
}

// Load returns the token stored for key and its issue time; an empty
// bearer when there is none. A hash whose issue time is unreadable
// returns the zero time, which no token's check passes: the caller
// replaces it.
func (r *Redis) Load(ctx context.Context, key string) (bearer string, issuedAt time.Time, err error) {
	vals, err := r.c.HMGet(ctx, r.prefix+key, "jwt", "iat").Result()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("providertoken: load %s from Redis: %w", key, err)
	}
	bearer, _ = vals[0].(string)
	if bearer == "" {
		return "", time.Time{}, nil
	}
	iat, _ := vals[1].(string)
	if sec, err := strconv.ParseInt(iat, 10, 64); err == nil {
		issuedAt = time.Unix(sec, 0)
	}
	return bearer, issuedAt, nil
}

// CompareAndSwap stores bearer, issued at issuedAt, as key's token if
// the one stored is old ("" when none is), and reports whether it did.
func (r *Redis) CompareAndSwap(ctx context.Context, key, old, bearer string, issuedAt time.Time) (bool, error) {
	if bearer == "" {
		return false, errors.New("providertoken: empty token")
	}
	expire := issuedAt.Add(Lifetime).Unix()
	n, err := r.cas.Run(ctx, r.c, []string{r.prefix + key}, old, bearer, issuedAt.Unix(), expire).Int()
	if err != nil {
		return false, fmt.Errorf("providertoken: store %s in Redis: %w", key, err)
	}
	return n == 1, nil
}

// Memory keeps the tokens in this process: an apns.Sender's own when it is
// given no store, and in tests several Senders standing for several
// processes. Unlike Redis it survives no restart. The zero value
// is ready to use.
type Memory struct {
	mu     sync.Mutex
	tokens map[string]memoryToken
}

type memoryToken struct {
	bearer   string
	issuedAt time.Time
}

// Load returns the token stored for key and its issue time; an empty
// bearer when there is none.
func (m *Memory) Load(_ context.Context, key string) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tokens[key]
	return t.bearer, t.issuedAt, nil
}

// CompareAndSwap stores bearer, issued at issuedAt, as key's token if
// the one stored is old ("" when none is), and reports whether it did.
func (m *Memory) CompareAndSwap(_ context.Context, key, old, bearer string, issuedAt time.Time) (bool, error) {
	if bearer == "" {
		return false, errors.New("providertoken: empty token")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens[key].bearer != old {
		return false, nil
	}
	if m.tokens == nil {
		m.tokens = make(map[string]memoryToken)
	}
	m.tokens[key] = memoryToken{bearer: bearer, issuedAt: issuedAt}
	return true, nil
}
