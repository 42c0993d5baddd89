package apns_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/providertoken"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/internal/testenv"
)

// redisDB is the Redis database this package's tests own and flush. go
// test runs packages in parallel: others use other numbers (pushjob 14,
// cmd/pushd 13, providertoken 12).
const redisDB = 11

// TestProviderTokenSharedAcrossProcesses is issue 11 at the Sender: two
// Senders with one .p8 key, standing for two pushd processes, and a third
// made after the first is gone, standing for a restart, all push through
// one store without Apple (pushsim) refusing a token as one too many.
//
// The processes start in different seconds, so a Sender that signed its
// own token would present a newer one than the first Sender's, which
// pushsim refuses within 20 minutes (TooManyProviderTokenUpdates), as
// Apple does.
func TestProviderTokenSharedAcrossProcesses(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func(t *testing.T) apns.TokenStore
	}{
		{"redis", func(t *testing.T) apns.TokenStore { return providertoken.NewRedis(testenv.Redis(t, redisDB), "") }},
		{"memory", func(*testing.T) apns.TokenStore { return new(providertoken.Memory) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := c.store(t)
			sim := pushsimtest.Start(t, pushsim.Config{})
			app, key := appFor(t, sim, appID)
			process := func() *apns.Sender {
				s, err := apns.New(apns.Config{Apps: []apns.AppConfig{app}, Tokens: store})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				return s
			}
			var serial uint64
			push := func(who string, s *apns.Sender) {
				t.Helper()
				serial++
				tok := sim.Minter().APNs(pushsim.FateValid, pushsim.Production, topic, serial)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if r := s.Send(ctx, appID, apns.Request{Token: tok, Payload: payload}); r.Outcome != outcome.Delivered {
					t.Errorf("%s: %s %d %s (%v), want delivered", who, r.Outcome, r.Status, r.Reason, r.Err)
				}
			}
			name := key.TeamID + ":" + key.KeyID
			stored := func() string {
				b, _, err := store.Load(t.Context(), name)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}

			a := process()
			push("first process", a)
			shared := stored()
			if shared == "" {
				t.Error("the first process stored no token")
			}
			nextSecond()
			b := process()
			push("second process", b)
			push("first process again", a)
			a.Close()
			nextSecond()
			push("restarted process", process())
			push("second process again", b)

			if n := sim.Total("", http.StatusTooManyRequests, "TooManyProviderTokenUpdates"); n != 0 {
				t.Errorf("pushsim answered TooManyProviderTokenUpdates %d times", n)
			}
			if got := stored(); got != shared {
				t.Error("the stored token was replaced: a process signed its own")
			}
		})
	}
}

// nextSecond sleeps into the next second of the wall clock, so that a
// token signed after it has a later issue time than one signed before.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}
