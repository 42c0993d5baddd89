package pushsim_test

import (
	"strings"
	"testing"

	"github.com/pushd/pushd/internal/pushsim"
)

func TestMinterIsAPureFunctionOfTheSeed(t *testing.T) {
	a, b, other := pushsim.NewMinter("s1"), pushsim.NewMinter("s1"), pushsim.NewMinter("s2")
	seen := map[string]bool{}
	for _, fate := range []pushsim.Fate{pushsim.FateValid, pushsim.FateUnregistered, pushsim.FateMalformed} {
		for _, env := range []pushsim.Env{pushsim.Production, pushsim.Development} {
			for i := uint64(0); i < 50; i++ {
				tok := a.APNs(fate, env, topic, i)
				if tok != b.APNs(fate, env, topic, i) {
					t.Fatal("two minters with one seed disagree")
				}
				if !pushsim.WellFormedAPNs(tok) || len(tok) != 64 {
					t.Fatalf("APNs token %q is not 64 hex characters", tok)
				}
				if seen[tok] {
					t.Fatalf("token %s minted twice", tok)
				}
				seen[tok] = true
				info, ok := b.ParseAPNs(tok)
				if !ok || info.Fate != fate || info.Env != env || info.Scope != pushsim.ScopeHash(topic) {
					t.Fatalf("ParseAPNs(%s) = %+v %v, want %v %v", tok, info, ok, fate, env)
				}
				if _, ok := other.ParseAPNs(tok); ok {
					t.Fatal("a minter with another seed recognised the token")
				}
			}
		}
		for i := uint64(0); i < 50; i++ {
			tok := a.FCM(fate, "proj", i)
			if !pushsim.WellFormedFCM(tok) || !strings.Contains(tok, ":APA91b") {
				t.Fatalf("FCM token %q does not look like one", tok)
			}
			if seen[tok] {
				t.Fatalf("token %s minted twice", tok)
			}
			seen[tok] = true
			info, ok := b.ParseFCM(tok)
			if !ok || info.Fate != fate || info.Scope != pushsim.ScopeHash("proj") {
				t.Fatalf("ParseFCM = %+v %v, want %v", info, ok, fate)
			}
			if _, ok := other.ParseFCM(tok); ok {
				t.Fatal("a minter with another seed recognised the token")
			}
		}
	}
	// One changed character makes a token unknown rather than another fate.
	tok := []byte(a.APNs(pushsim.FateUnregistered, pushsim.Production, topic, 1))
	tok[3] ^= 1
	if _, ok := a.ParseAPNs(string(tok)); ok {
		t.Error("a tampered token was recognised")
	}
}

func TestParseNames(t *testing.T) {
	if _, err := pushsim.ParseFate("dead"); err == nil || !strings.Contains(err.Error(), "valid, unregistered or malformed") {
		t.Errorf("ParseFate: %v", err)
	}
	if _, err := pushsim.ParseEnv("sandbox"); err == nil || !strings.Contains(err.Error(), "production or development") {
		t.Errorf("ParseEnv: %v", err)
	}
	if _, err := pushsim.ParseCertKind("enterprise"); err == nil {
		t.Error("ParseCertKind accepted enterprise")
	}
}
