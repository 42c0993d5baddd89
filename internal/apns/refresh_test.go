package apns

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/pushd/pushd/internal/logtest"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/providertoken"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// Apple calls a provider token expired an hour after its iat, and refuses
// a new token for a key within 20 minutes of the last. These tests move
// the clocks of the simulator and of the Senders to meet both limits, and
// stand several Senders on one store for several processes.

const testTopic = "com.example.chat"

// testKey is a signing key registered with a simulator: its .p8 and the
// simulator's CA written to files, for AppConfigs.
type testKey struct {
	sim             *pushsim.Sim
	key             *pushsim.APNsKey
	keyFile, caFile string
}

func newTestKey(t *testing.T, sim *pushsim.Sim) *testKey {
	t.Helper()
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	p8, err := k.P8()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tk := &testKey{sim: sim, key: k, keyFile: filepath.Join(dir, "AuthKey.p8"), caFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(tk.keyFile, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tk.caFile, sim.CA().CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return tk
}

// sender is one process's Sender for the key's app "chat".
func (tk *testKey) sender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	cfg.Apps = []AppConfig{{
		AppID: "chat", KeyFile: tk.keyFile, KeyID: tk.key.KeyID, TeamID: tk.key.TeamID, Topic: testTopic,
		ProductionURL: tk.sim.APNsURL(pushsim.Production), DevelopmentURL: tk.sim.APNsURL(pushsim.Development),
		CAFile: tk.caFile,
	}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// jwtAt is a token of the key issued at iat, as another process or Apple
// would have it.
func (tk *testKey) jwtAt(t *testing.T, iat time.Time) string {
	t.Helper()
	j := &jwt.Token{
		Header: map[string]any{"alg": "ES256", "kid": tk.key.KeyID},
		Claims: jwt.MapClaims{"iss": tk.key.TeamID, "iat": iat.Unix()},
		Method: jwt.SigningMethodES256,
	}
	bearer, err := j.SignedString(tk.key.Key)
	if err != nil {
		t.Fatal(err)
	}
	return bearer
}

func (tk *testKey) name() string { return tk.key.TeamID + ":" + tk.key.KeyID }

func newTestSender(t *testing.T, cfg pushsim.Config) (*Sender, *pushsim.Sim) {
	t.Helper()
	sim := pushsimtest.Start(t, cfg)
	return newTestKey(t, sim).sender(t, Config{}), sim
}

func (s *Sender) testSigner() *signer { return s.apps["chat"].gateways[envProduction].signer }

// bearerOf is the token s presents now; empty before its first push.
func (s *Sender) bearerOf() string {
	if t := s.testSigner().tok.Load(); t != nil {
		return t.bearer
	}
	return ""
}

// makeStale gives s a token Apple sees as issued two hours ago while s
// believes it was issued age ago, and returns it.
func makeStale(t *testing.T, s *Sender, age time.Duration) string {
	t.Helper()
	sg := s.testSigner()
	j := &jwt.Token{
		Header: map[string]any{"alg": "ES256", "kid": sg.keyID},
		Claims: jwt.MapClaims{"iss": sg.teamID, "iat": time.Now().Add(-2 * time.Hour).Unix()},
		Method: jwt.SigningMethodES256,
	}
	bearer, err := j.SignedString(sg.key)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now().Add(-age)
	sg.tok.Store(&providerToken{bearer: bearer, issued: issued, until: issued.Add(refreshAge)})
	return bearer
}

// sendOne pushes to a new device token (a random serial: the tests care
// about the provider token, not the device).
func sendOne(s *Sender, sim *pushsim.Sim) Result {
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, testTopic, rand.Uint64())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Send(ctx, "chat", Request{Token: tok, Payload: []byte(`{"aps":{"alert":"hi"}}`)})
}

func wantDelivered(t *testing.T, who string, r Result) {
	t.Helper()
	if r.Outcome != outcome.Delivered {
		t.Fatalf("%s: %s %d %s (%v), want delivered", who, r.Outcome, r.Status, r.Reason, r.Err)
	}
}

// TestExpiredProviderTokenRefreshed: Apple calls the token expired, Send
// signs a new one and the retry is delivered.
func TestExpiredProviderTokenRefreshed(t *testing.T) {
	s, sim := newTestSender(t, pushsim.Config{})
	stale := makeStale(t, s, 5*time.Minute)
	wantDelivered(t, "push", sendOne(s, sim))
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 1 {
		t.Errorf("simulator refused %d expired tokens, want 1", n)
	}
	if s.bearerOf() == stale {
		t.Error("the token was not replaced")
	}
}

// TestExpiredProviderTokenConcurrent: many pushes meet the same expired
// token at once; each is retried once and delivered, and none earns
// TooManyProviderTokenUpdates.
func TestExpiredProviderTokenConcurrent(t *testing.T) {
	s, sim := newTestSender(t, pushsim.Config{})
	makeStale(t, s, 5*time.Minute)
	var wg sync.WaitGroup
	results := make([]Result, 50)
	for i := range results {
		wg.Go(func() { results[i] = sendOne(s, sim) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != outcome.Delivered {
			t.Errorf("push %d: %s %d %s %v", i, r.Outcome, r.Status, r.Reason, r.Err)
		}
	}
	if n := sim.Total("", 429, "TooManyProviderTokenUpdates"); n != 0 {
		t.Errorf("%d TooManyProviderTokenUpdates", n)
	}
}

// TestRefreshOncePerToken: of two pushes refused with the same token, the
// first replaces it and the second retries with the replacement.
func TestRefreshOncePerToken(t *testing.T) {
	s, _ := newTestSender(t, pushsim.Config{})
	stale := makeStale(t, s, 5*time.Minute)
	sg := s.testSigner()
	ctx := t.Context()
	for i := range 2 {
		retry, err := sg.refresh(ctx, stale)
		if !retry || err != nil {
			t.Fatalf("refresh %d = %v, %v; want a retry", i, retry, err)
		}
	}
	fresh := s.bearerOf()
	if fresh == stale {
		t.Fatal("not replaced")
	}
	if retry, _ := sg.refresh(ctx, stale); !retry || s.bearerOf() != fresh {
		t.Error("a third refusal of the old token replaced the new one")
	}
}

// TestExpiredProviderTokenClockAhead: the simulator's clock runs 61
// minutes ahead, so every token Send can sign is expired to it. Send
// refreshes once, the retry is refused too, and the push is Retrying.
func TestExpiredProviderTokenClockAhead(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	s, sim := newTestSender(t, pushsim.Config{Now: clock.Now})
	clock.Advance(61 * time.Minute)
	before := makeStale(t, s, 5*time.Minute) // old enough to be worth replacing
	res := sendOne(s, sim)
	if res.Outcome != outcome.Retrying || res.Reason != "ExpiredProviderToken" || res.Status != 403 {
		t.Fatalf("result = %+v, want Retrying 403 ExpiredProviderToken", res)
	}
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 2 {
		t.Errorf("simulator refused %d expired tokens, want 2 (the push and one retry)", n)
	}
	if s.bearerOf() == before {
		t.Error("the token was not replaced")
	}
}

// TestExpiredProviderTokenTooYoung: a token signed moments ago and already
// expired to Apple means the clocks disagree by most of an hour. Send does
// not sign another (that would only earn TooManyProviderTokenUpdates) and
// reports the push Retrying.
func TestExpiredProviderTokenTooYoung(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	s, sim := newTestSender(t, pushsim.Config{Now: clock.Now})
	clock.Advance(61 * time.Minute)
	res := sendOne(s, sim)
	if res.Outcome != outcome.Retrying || res.Reason != "ExpiredProviderToken" {
		t.Fatalf("result = %+v, want Retrying ExpiredProviderToken", res)
	}
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 1 {
		t.Errorf("simulator refused %d expired tokens, want 1 (no retry)", n)
	}
	before := s.bearerOf()
	sendOne(s, sim)
	if s.bearerOf() != before {
		t.Error("a token seconds old was replaced")
	}
}

// TestOneSignerPerKey: apps and environments that name one key share one
// provider token.
func TestOneSignerPerKey(t *testing.T) {
	s, _ := newTestSender(t, pushsim.Config{})
	a := s.apps["chat"]
	if a.gateways[envProduction].signer != a.gateways[envDevelopment].signer {
		t.Error("environments have separate signers")
	}
	if a.gateways[envProduction].client == a.gateways[envDevelopment].client {
		t.Error("environments share a client")
	}
	if a.gateways[envProduction].client.Token != nil {
		t.Error("apns2 holds a token.Token, which it would replace on its own")
	}
}

// TestExpiredProviderTokenShared: a process that meets ExpiredProviderToken
// replaces the deployment's token, and another process then takes the
// replacement instead of signing its own.
func TestExpiredProviderTokenShared(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	tk := newTestKey(t, sim)
	store := new(providertoken.Memory)
	a, b := tk.sender(t, Config{Tokens: store}), tk.sender(t, Config{Tokens: store})
	stale := makeStale(t, a, 5*time.Minute)
	wantDelivered(t, "first process", sendOne(a, sim))
	fresh := a.bearerOf()
	if fresh == stale {
		t.Fatal("not replaced")
	}
	if got, _, _ := store.Load(t.Context(), tk.name()); got != fresh {
		t.Error("the store does not hold the replacement")
	}
	wantDelivered(t, "second process", sendOne(b, sim))
	if b.bearerOf() != fresh {
		t.Error("the second process presents a token of its own")
	}
}

// TestProviderTokenRenewedOnce: two processes share a token; when it is
// refreshAge old, the first push of either replaces it in the store and
// the other takes the replacement. Apple sees two tokens, far enough apart.
func TestProviderTokenRenewedOnce(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := new(providertoken.Memory)
	a := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	b := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	wantDelivered(t, "a", sendOne(a, sim))
	wantDelivered(t, "b", sendOne(b, sim))
	first := a.bearerOf()
	if b.bearerOf() != first {
		t.Fatal("the processes present different tokens")
	}
	clock.Advance(refreshAge - time.Second)
	wantDelivered(t, "a, before refreshAge", sendOne(a, sim))
	if a.bearerOf() != first {
		t.Fatal("replaced before refreshAge")
	}
	clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	senders := []*Sender{a, b, a, b}
	results := make([]Result, len(senders))
	for i, s := range senders {
		wg.Go(func() { results[i] = sendOne(s, sim) })
	}
	wg.Wait()
	for _, r := range results {
		wantDelivered(t, "after refreshAge", r)
	}
	second := a.bearerOf()
	if second == first || b.bearerOf() != second {
		t.Error("after refreshAge the processes do not share one new token")
	}
	if got, at, _ := store.Load(t.Context(), tk.name()); got != second || !at.Equal(time.Unix(clock.Now().Unix(), 0)) {
		t.Errorf("the store holds another token, issued %v", at)
	}
	if n := sim.Total("", 429, ""); n != 0 {
		t.Errorf("%d answers 429", n)
	}
}

// TestStoredTokenReused: a process started while the deployment's token is
// young presents it, however many minutes old, rather than signing.
func TestStoredTokenReused(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := new(providertoken.Memory)
	issued := time.Unix(clock.Now().Unix(), 0)
	stored := tk.jwtAt(t, issued)
	if ok, _ := store.CompareAndSwap(t.Context(), tk.name(), "", stored, issued); !ok {
		t.Fatal("store refused the token")
	}
	clock.Advance(30 * time.Minute)
	s := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	wantDelivered(t, "push", sendOne(s, sim))
	if s.bearerOf() != stored {
		t.Error("the process signed a token of its own")
	}
}

// flakyStore is a TokenStore whose next fail calls fail.
type flakyStore struct {
	TokenStore
	fail  atomic.Int32
	calls atomic.Int32
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) down() bool {
	f.calls.Add(1)
	return f.fail.Add(-1) >= 0
}

func (f *flakyStore) Load(ctx context.Context, key string) (string, time.Time, error) {
	if f.down() {
		return "", time.Time{}, errStoreDown
	}
	return f.TokenStore.Load(ctx, key)
}

func (f *flakyStore) CompareAndSwap(ctx context.Context, key, old, bearer string, at time.Time) (bool, error) {
	if f.down() {
		return false, errStoreDown
	}
	return f.TokenStore.CompareAndSwap(ctx, key, old, bearer, at)
}

// TestTokenStoreUnavailable: without the store, pushes go on with a token
// of the process's own; the outage is logged once, without the token, and
// pushes ask the store again storeRetry later, storing that token then.
func TestTokenStoreUnavailable(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := &flakyStore{TokenStore: new(providertoken.Memory)}
	store.fail.Store(1 << 20)
	var log logtest.Buffer
	s := tk.sender(t, Config{Tokens: store, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for range 3 {
		wantDelivered(t, "push without the store", sendOne(s, sim))
	}
	own := s.bearerOf()
	if n := store.calls.Load(); n != 1 {
		t.Errorf("the store was asked %d times in storeRetry, want once", n)
	}
	if n := strings.Count(log.String(), "store unavailable"); n != 1 {
		t.Errorf("the outage is logged %d times, want once:\n%s", n, log.String())
	}
	clock.Advance(storeRetry)
	wantDelivered(t, "push, store still down", sendOne(s, sim))
	if n := strings.Count(log.String(), "store unavailable"); n != 1 {
		t.Errorf("the outage is logged %d times, want once:\n%s", n, log.String())
	}

	store.fail.Store(0)
	clock.Advance(storeRetry)
	wantDelivered(t, "push, store back", sendOne(s, sim))
	if got, _, _ := store.Load(t.Context(), tk.name()); got != own || s.bearerOf() != own {
		t.Error("the process's own token, young and seen by Apple, was not stored when the store came back")
	}
	if !strings.Contains(log.String(), "answers again") {
		t.Errorf("the end of the outage is not logged:\n%s", log.String())
	}
	if strings.Contains(log.String(), own) {
		t.Error("the log holds the provider token")
	}
}

// TestTokenStoreUnavailableKeepsSharedToken: a store outage at renewal
// keeps the deployment's token, past refreshAge, up to maxAge.
func TestTokenStoreUnavailableKeepsSharedToken(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := &flakyStore{TokenStore: new(providertoken.Memory)}
	s := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	wantDelivered(t, "push", sendOne(s, sim))
	shared := s.bearerOf()
	store.fail.Store(1 << 20)
	clock.Advance(refreshAge + time.Minute)
	wantDelivered(t, "push past refreshAge", sendOne(s, sim))
	if s.bearerOf() != shared {
		t.Error("the shared token was dropped before maxAge")
	}
	clock.Advance(maxAge - refreshAge)
	wantDelivered(t, "push past maxAge", sendOne(s, sim))
	if s.bearerOf() == shared {
		t.Error("a token past maxAge is still presented")
	}
}

// TestTooManyProviderTokenUpdatesReloads: a process that signed a token of
// its own while the store was away meets TooManyProviderTokenUpdates,
// takes the deployment's token and the retry is delivered.
func TestTooManyProviderTokenUpdatesReloads(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	mem := new(providertoken.Memory)
	a := tk.sender(t, Config{Tokens: mem, Now: clock.Now})
	wantDelivered(t, "first process", sendOne(a, sim))
	clock.Advance(time.Minute)
	store := &flakyStore{TokenStore: mem}
	store.fail.Store(1) // the second process's first load
	b := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	wantDelivered(t, "second process", sendOne(b, sim))
	if n := sim.Total("", 429, "TooManyProviderTokenUpdates"); n != 1 {
		t.Errorf("%d TooManyProviderTokenUpdates, want the one that made it reload", n)
	}
	if b.bearerOf() != a.bearerOf() {
		t.Error("the second process did not take the shared token")
	}
}

// TestTooManyProviderTokenUpdatesNoLoop: when the stored token is the one
// Apple refuses (signed outside the deployment), the push is Retrying
// after one request: no retry with the same token, no new token.
func TestTooManyProviderTokenUpdatesNoLoop(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := new(providertoken.Memory)
	a := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	wantDelivered(t, "first process", sendOne(a, sim))
	clock.Advance(time.Minute)
	issued := time.Unix(clock.Now().Unix(), 0)
	outsider := tk.jwtAt(t, issued)
	if ok, _ := store.CompareAndSwap(t.Context(), tk.name(), a.bearerOf(), outsider, issued); !ok {
		t.Fatal("store refused the token")
	}
	b := tk.sender(t, Config{Tokens: store, Now: clock.Now})
	for i := range 3 {
		res := sendOne(b, sim)
		if res.Outcome != outcome.Retrying || res.Status != 429 || res.Reason != "TooManyProviderTokenUpdates" {
			t.Fatalf("push %d: %s %d %s (%v), want Retrying 429 TooManyProviderTokenUpdates", i, res.Outcome, res.Status, res.Reason, res.Err)
		}
	}
	if n := sim.Total("", 0, ""); n != 4 {
		t.Errorf("simulator answered %d requests, want 4: one for the first process, one per push", n)
	}
	if got, _, _ := store.Load(t.Context(), tk.name()); got != outsider {
		t.Error("the refused token was replaced: Apple would refuse the new one too")
	}
}

// TestStoredTokenOfAnotherKey: a stored token that does not verify with
// the process's key (another key under the key id, or a damaged entry) is
// replaced rather than presented.
func TestStoredTokenOfAnotherKey(t *testing.T) {
	sim := pushsimtest.Start(t, pushsim.Config{})
	tk := newTestKey(t, sim)
	other, err := pushsim.GenerateAPNsKey(tk.key.KeyID, tk.key.TeamID)
	if err != nil {
		t.Fatal(err)
	}
	store := new(providertoken.Memory)
	issued := time.Unix(time.Now().Unix(), 0)
	foreign := (&testKey{key: other}).jwtAt(t, issued)
	for name, bad := range map[string]string{"another key": foreign, "damaged": "not.a.jwt"} {
		t.Run(name, func(t *testing.T) {
			old, _, _ := store.Load(t.Context(), tk.name())
			if ok, _ := store.CompareAndSwap(t.Context(), tk.name(), old, bad, issued); !ok {
				t.Fatal("store refused the token")
			}
			var log logtest.Buffer
			s := tk.sender(t, Config{Tokens: store, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			wantDelivered(t, "push", sendOne(s, sim))
			if got, _, _ := store.Load(t.Context(), tk.name()); got == bad || got != s.bearerOf() {
				t.Error("the bad token was not replaced in the store")
			}
			if !strings.Contains(log.String(), "not this key's") || strings.Contains(log.String(), bad) {
				t.Errorf("log:\n%s\nwant a warning without the token", log.String())
			}
		})
	}
}

// lostStore is a TokenStore whose content can be lost at once, as a Redis
// without persistence loses it on a restart.
type lostStore struct {
	mem atomic.Pointer[providertoken.Memory]
}

func newLostStore() *lostStore {
	s := new(lostStore)
	s.lose()
	return s
}

func (s *lostStore) lose() { s.mem.Store(new(providertoken.Memory)) }

func (s *lostStore) Load(ctx context.Context, key string) (string, time.Time, error) {
	return s.mem.Load().Load(ctx, key)
}

func (s *lostStore) CompareAndSwap(ctx context.Context, key, old, bearer string, at time.Time) (bool, error) {
	return s.mem.Load().CompareAndSwap(ctx, key, old, bearer, at)
}

// TestStoreLostRecovers: the store loses the deployment's token T1 (a
// Redis restart), and a process started minutes later signs and stores T2,
// which Apple refuses as one too many. The processes that still hold T1
// put it back within storeCheck; from then on every process's pushes are
// delivered, long before T2 would be refreshAge old, and Apple answers 429
// at most once per push that carried T2. The renewal at refreshAge is
// accepted.
func TestStoreLostRecovers(t *testing.T) {
	clock := pushsimtest.NewClock(time.Now())
	sim := pushsimtest.Start(t, pushsim.Config{Now: clock.Now})
	tk := newTestKey(t, sim)
	store := newLostStore()
	var log logtest.Buffer
	cfg := Config{Tokens: store, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	a, c := tk.sender(t, cfg), tk.sender(t, cfg)
	wantDelivered(t, "a", sendOne(a, sim))
	wantDelivered(t, "c", sendOne(c, sim))
	t1 := a.bearerOf()
	if c.bearerOf() != t1 {
		t.Fatal("the processes present different tokens")
	}

	clock.Advance(5 * time.Minute)
	store.lose()
	b := tk.sender(t, cfg)
	res := sendOne(b, sim)
	if res.Outcome != outcome.Retrying || res.Status != 429 || res.Reason != "TooManyProviderTokenUpdates" {
		t.Fatalf("new process: %s %d %s (%v), want Retrying 429 TooManyProviderTokenUpdates", res.Outcome, res.Status, res.Reason, res.Err)
	}
	t2 := b.bearerOf()
	if got, _, _ := store.Load(t.Context(), tk.name()); got != t2 || t2 == t1 {
		t.Fatal("the new process did not store a token of its own")
	}

	// The holders of T1 look at the store within storeCheck, meet T2
	// refused and put T1 back, both at once.
	clock.Advance(storeCheck)
	var wg sync.WaitGroup
	results := make([]Result, 4)
	for i, s := range []*Sender{a, c, a, c} {
		wg.Go(func() { results[i] = sendOne(s, sim) })
	}
	wg.Wait()
	for _, r := range results {
		wantDelivered(t, "a process that held T1", r)
	}
	if got, _, _ := store.Load(t.Context(), tk.name()); got != t1 {
		t.Fatal("the store does not hold T1 again")
	}
	// Each push that carried T2 met one 429 and was retried with T1: the
	// new process's first, and those of A and C in flight between their
	// look at the store and T1 going back, one per push at most.
	if n := sim.Total("", 429, "TooManyProviderTokenUpdates"); n < 2 || n > int64(1+len(results)) {
		t.Errorf("%d TooManyProviderTokenUpdates, want 2 to %d", n, 1+len(results))
	}
	tooMany := sim.Total("", 429, "")
	// The new process's next push takes T1, at the latest after its own
	// look at the store (or a 429 and a reload).
	clock.Advance(storeCheck)
	for range 3 {
		wantDelivered(t, "new process", sendOne(b, sim))
		wantDelivered(t, "a", sendOne(a, sim))
		wantDelivered(t, "c", sendOne(c, sim))
	}
	for _, s := range []*Sender{a, b, c} {
		if s.bearerOf() != t1 {
			t.Error("a process presents another token than T1")
		}
	}
	if n := sim.Total("", 429, ""); n != tooMany {
		t.Errorf("%d more answers 429 once T1 was back", n-tooMany)
	}

	// At refreshAge T1 is replaced, once, and Apple takes the new one.
	clock.Advance(refreshAge)
	for range 2 {
		wantDelivered(t, "a after refreshAge", sendOne(a, sim))
		wantDelivered(t, "new process after refreshAge", sendOne(b, sim))
		wantDelivered(t, "c after refreshAge", sendOne(c, sim))
	}
	t3 := a.bearerOf()
	if t3 == t1 || t3 == t2 || b.bearerOf() != t3 || c.bearerOf() != t3 {
		t.Error("after refreshAge the processes do not share one new token")
	}
	if n := sim.Total("", 429, ""); n != tooMany {
		t.Errorf("%d more answers 429 after refreshAge", n-tooMany)
	}
	for _, tok := range []string{t1, t2, t3} {
		if strings.Contains(log.String(), tok) {
			t.Error("the log holds a provider token")
		}
	}
}
