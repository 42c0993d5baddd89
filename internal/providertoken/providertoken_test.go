package providertoken_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/providertoken"
	"github.com/pushd/pushd/internal/testenv"
)

// redisDB is the Redis database these tests own and flush. go test runs
// packages in parallel: other packages' tests use other numbers (pushjob
// 14, cmd/pushd 13, internal/apns 11).
const redisDB = 12

type store interface {
	Load(ctx context.Context, key string) (string, time.Time, error)
	CompareAndSwap(ctx context.Context, key, old, bearer string, issuedAt time.Time) (bool, error)
}

// TestStores is one suite for both stores: what the signer relies on.
func TestStores(t *testing.T) {
	t.Run("memory", func(t *testing.T) { storeSuite(t, new(providertoken.Memory)) })
	t.Run("redis", func(t *testing.T) { storeSuite(t, providertoken.NewRedis(testenv.Redis(t, redisDB), "")) })
}

func storeSuite(t *testing.T, s store) {
	ctx := t.Context()
	const key = "TEAM123456:KEY1234567"
	iat := time.Unix(time.Now().Unix(), 0)

	load := func(wantBearer string, wantIat time.Time) {
		t.Helper()
		b, at, err := s.Load(ctx, key)
		if err != nil || b != wantBearer || !at.Equal(wantIat) {
			t.Fatalf("Load = %q, %v, %v; want %q, %v", b, at, err, wantBearer, wantIat)
		}
	}
	swap := func(old, bearer string, at time.Time, want bool) {
		t.Helper()
		ok, err := s.CompareAndSwap(ctx, key, old, bearer, at)
		if err != nil || ok != want {
			t.Fatalf("CompareAndSwap(%q → %q) = %v, %v; want %v", old, bearer, ok, err, want)
		}
	}

	load("", time.Time{})
	swap("someone-elses", "jwt-1", iat, false) // nothing stored: only "" matches
	load("", time.Time{})
	swap("", "jwt-1", iat, true)
	load("jwt-1", iat)
	swap("", "jwt-2", iat.Add(time.Minute), false) // one is stored now
	swap("jwt-0", "jwt-2", iat.Add(time.Minute), false)
	load("jwt-1", iat)
	swap("jwt-1", "jwt-2", iat.Add(time.Minute), true)
	load("jwt-2", iat.Add(time.Minute))
	if _, _, err := s.Load(ctx, "OTHERTEAM0:KEY1234567"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndSwap(ctx, key, "jwt-2", "", iat); ok || err == nil {
		t.Errorf("storing an empty token: %v, %v; want an error", ok, err)
	}

	// Of many processes replacing the same token at once, one wins.
	var wg sync.WaitGroup
	wins := make([]bool, 20)
	for i := range wins {
		wg.Go(func() {
			ok, err := s.CompareAndSwap(ctx, key, "jwt-2", fmt.Sprintf("jwt-3-%d", i), iat.Add(2*time.Minute))
			if err != nil {
				t.Error(err)
			}
			wins[i] = ok
		})
	}
	wg.Wait()
	won := -1
	for i, ok := range wins {
		if ok {
			if won >= 0 {
				t.Fatalf("processes %d and %d both replaced the token", won, i)
			}
			won = i
		}
	}
	if won < 0 {
		t.Fatal("no process replaced the token")
	}
	load(fmt.Sprintf("jwt-3-%d", won), iat.Add(2*time.Minute))
}

// TestRedisExpiresWithToken: a stored token goes when Apple would refuse
// it, so that a stopped deployment's tokens do not linger.
func TestRedisExpiresWithToken(t *testing.T) {
	c := testenv.Redis(t, redisDB)
	s := providertoken.NewRedis(c, "test:")
	ctx := t.Context()
	iat := time.Now().Add(-30 * time.Minute)
	if ok, err := s.CompareAndSwap(ctx, "T:K", "", "jwt", iat); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	ttl, err := c.TTL(ctx, "test:T:K").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl < 29*time.Minute || ttl > 31*time.Minute {
		t.Errorf("TTL %v, want about 30m (an hour after the token's issue)", ttl)
	}
	// A token past its hour is not kept at all.
	if ok, err := s.CompareAndSwap(ctx, "T:K", "jwt", "jwt-old", time.Now().Add(-2*time.Hour)); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	if b, _, err := s.Load(ctx, "T:K"); b != "" || err != nil {
		t.Errorf("Load of an expired token = %q, %v; want none", b, err)
	}
	// Another prefix is another deployment's.
	if b, _, _ := providertoken.NewRedis(c, "").Load(ctx, "T:K"); b != "" {
		t.Errorf("the default prefix sees %q", b)
	}
}

// TestRedisUnreadableIssueTime: a hash whose iat is not a number loads with
// the zero time, which the signer replaces, rather than failing every load.
func TestRedisUnreadableIssueTime(t *testing.T) {
	c := testenv.Redis(t, redisDB)
	ctx := t.Context()
	if err := c.HSet(ctx, providertoken.DefaultPrefix+"T:K", "jwt", "jwt-1", "iat", "soon").Err(); err != nil {
		t.Fatal(err)
	}
	b, at, err := providertoken.NewRedis(c, "").Load(ctx, "T:K")
	if b != "jwt-1" || !at.IsZero() || err != nil {
		t.Errorf("Load = %q, %v, %v; want jwt-1 and the zero time", b, at, err)
	}
}

// TestRedisUnavailable: errors say what failed, and never hold the token.
func TestRedisUnavailable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	s := providertoken.NewRedis(c, "")
	if _, _, err := s.Load(t.Context(), "T:K"); err == nil {
		t.Error("Load: no error without Redis")
	}
	_, err := s.CompareAndSwap(t.Context(), "T:K", "", "secret-jwt", time.Now())
	if err == nil {
		t.Fatal("CompareAndSwap: no error without Redis")
	}
	if got := err.Error(); got == "" || strings.Contains(got, "secret-jwt") {
		t.Errorf("error %q holds the token", got)
	}
}
