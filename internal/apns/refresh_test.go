package apns

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/sideshow/apns2/token"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
)

// Apple calls a provider token expired an hour after its iat. apns2 makes
// a new one after 50 minutes by its own clock, so Apple refuses a token
// apns2 still trusts only when the clocks disagree; these tests make the
// two disagree in both directions that can be arranged: a token whose iat
// is older than apns2 believes, and a simulator clock that runs ahead.

const testTopic = "com.example.chat"

func newTestSender(t *testing.T, cfg pushsim.Config) (*Sender, *pushsim.Sim) {
	t.Helper()
	sim := pushsimtest.Start(t, cfg)
	k, err := sim.NewAPNsKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	p8, err := k.P8()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey.p8")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(keyFile, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, sim.CA().CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Apps: []AppConfig{{
		AppID: "chat", KeyFile: keyFile, KeyID: k.KeyID, TeamID: k.TeamID, Topic: testTopic,
		ProductionURL: sim.APNsURL(pushsim.Production), DevelopmentURL: sim.APNsURL(pushsim.Development),
		CAFile: caFile,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, sim
}

func (s *Sender) testToken() *token.Token { return s.apps["chat"].gateways[envProduction].signer.tok }

// makeStale replaces the shared token with one Apple sees as issued two
// hours ago while apns2 believes it was issued age ago.
func makeStale(t *testing.T, tok *token.Token, age time.Duration) string {
	t.Helper()
	j := &jwt.Token{
		Header: map[string]any{"alg": "ES256", "kid": tok.KeyID},
		Claims: jwt.MapClaims{"iss": tok.TeamID, "iat": time.Now().Add(-2 * time.Hour).Unix()},
		Method: jwt.SigningMethodES256,
	}
	bearer, err := j.SignedString(tok.AuthKey)
	if err != nil {
		t.Fatal(err)
	}
	tok.Lock()
	tok.Bearer, tok.IssuedAt = bearer, time.Now().Add(-age).Unix()
	tok.Unlock()
	return bearer
}

func bearerOf(tok *token.Token) string {
	tok.Lock()
	defer tok.Unlock()
	return tok.Bearer
}

func sendOne(s *Sender, sim *pushsim.Sim, serial uint64) Result {
	tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, testTopic, serial)
	return s.Send(context.Background(), "chat", Request{Token: tok, Payload: []byte(`{"aps":{"alert":"hi"}}`)})
}

// TestExpiredProviderTokenRefreshed: Apple calls the token expired, Send
// signs a new one and the retry is delivered.
func TestExpiredProviderTokenRefreshed(t *testing.T) {
	s, sim := newTestSender(t, pushsim.Config{})
	stale := makeStale(t, s.testToken(), 5*time.Minute)
	res := sendOne(s, sim, 1)
	if res.Outcome != outcome.Delivered {
		t.Fatalf("result = %+v, want Delivered after a refresh", res)
	}
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 1 {
		t.Errorf("simulator refused %d expired tokens, want 1", n)
	}
	if bearerOf(s.testToken()) == stale {
		t.Error("the shared token was not replaced")
	}
}

// TestExpiredProviderTokenConcurrent: many pushes meet the same expired
// token at once; each is retried once and delivered, and none earns
// TooManyProviderTokenUpdates.
func TestExpiredProviderTokenConcurrent(t *testing.T) {
	s, sim := newTestSender(t, pushsim.Config{})
	makeStale(t, s.testToken(), 5*time.Minute)
	var wg sync.WaitGroup
	results := make([]Result, 50)
	for i := range results {
		wg.Go(func() { results[i] = sendOne(s, sim, uint64(i)) })
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
	tok := s.testToken()
	stale := makeStale(t, tok, 5*time.Minute)
	sg := s.apps["chat"].gateways[envProduction].signer
	for i := range 2 {
		retry, err := sg.refresh("bearer " + stale)
		if !retry || err != nil {
			t.Fatalf("refresh %d = %v, %v; want a retry", i, retry, err)
		}
	}
	fresh := bearerOf(tok)
	if fresh == stale {
		t.Fatal("not replaced")
	}
	if retry, _ := sg.refresh("bearer " + stale); !retry || bearerOf(tok) != fresh {
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
	tok := s.testToken()
	tok.Lock()
	tok.IssuedAt -= 300 // old enough to be worth replacing
	tok.Unlock()
	before := bearerOf(tok)
	res := sendOne(s, sim, 1)
	if res.Outcome != outcome.Retrying || res.Reason != "ExpiredProviderToken" || res.Status != 403 {
		t.Fatalf("result = %+v, want Retrying 403 ExpiredProviderToken", res)
	}
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 2 {
		t.Errorf("simulator refused %d expired tokens, want 2 (the push and one retry)", n)
	}
	if bearerOf(tok) == before {
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
	before := bearerOf(s.testToken())
	res := sendOne(s, sim, 1)
	if res.Outcome != outcome.Retrying || res.Reason != "ExpiredProviderToken" {
		t.Fatalf("result = %+v, want Retrying ExpiredProviderToken", res)
	}
	if n := sim.Total("", 403, "ExpiredProviderToken"); n != 1 {
		t.Errorf("simulator refused %d expired tokens, want 1 (no retry)", n)
	}
	if bearerOf(s.testToken()) != before {
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
}
