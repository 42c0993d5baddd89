package pushsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzAPNsRequest feeds the APNs handler arbitrary tokens, headers and
// bodies: it must answer every one with a status and, on failure, Apple's
// {"reason": ...} shape, and accept only what a valid request would be.
func FuzzAPNsRequest(f *testing.F) {
	sim, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	key, err := sim.NewAPNsKey("FUZZKEY001", "")
	if err != nil {
		f.Fatal(err)
	}
	bearer := signES256(f, key, time.Now().Unix())
	valid := sim.Minter().APNs(FateValid, Production, "com.example.chat", 1)
	f.Add(valid, "com.example.chat", "alert", "10", `{"aps":{"alert":"hi"}}`, true)
	f.Add(valid, "", "voip", "5", `{}`, true)
	f.Add("zz", "com.example.chat", "shout", "7", `[1]`, false)
	f.Add(strings.Repeat("ab", 100), "com.x", "", "", ``, true)
	f.Add(valid+"/x", "t", "background", "1", `{"a":`, true)
	h := sim.apnsHandler(Production)
	f.Fuzz(func(t *testing.T, token, topic, pushType, priority, body string, auth bool) {
		req := httptest.NewRequest(http.MethodPost, "https://pushsim/3/device/x", strings.NewReader(body))
		req.URL.Path = "/3/device/" + token
		req.Header.Set("apns-topic", topic)
		req.Header.Set("apns-push-type", pushType)
		req.Header.Set("apns-priority", priority)
		if auth {
			req.Header.Set("authorization", "bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			if !auth || !isJSONObject([]byte(body)) || topic == "" || !WellFormedAPNs(token) {
				t.Fatalf("accepted token %q topic %q type %q priority %q body %q auth %v", token, topic, pushType, priority, body, auth)
			}
			return
		}
		var r struct{ Reason string }
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Reason == "" {
			t.Fatalf("status %d with body %q: want Apple's {\"reason\": ...}", rec.Code, rec.Body)
		}
	})
}

// FuzzProviderToken: no bearer string but a correctly signed one passes.
func FuzzProviderToken(f *testing.F) {
	sim, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	key, err := sim.NewAPNsKey("FUZZKEY001", "")
	if err != nil {
		f.Fatal(err)
	}
	good := signES256(f, key, time.Now().Unix())
	f.Add("bearer " + good)
	f.Add("bearer a.b.c")
	f.Add("bearer eyJhbGciOiJFUzI1NiIsImtpZCI6IkZVWlpLRVkwMDEifQ.e30.")
	f.Add("Bearer " + good[:len(good)-2])
	f.Fuzz(func(t *testing.T, authz string) {
		status, reason := sim.checkProviderToken(authz, time.Now())
		if status == 0 && !strings.HasSuffix(authz, good) {
			t.Fatalf("accepted %q", authz)
		}
		if status != 0 && reason == "" {
			t.Fatalf("status %d without a reason", status)
		}
	})
}

// FuzzParseAPNs: what a Minter recognises is exactly what it minted.
func FuzzParseAPNs(f *testing.F) {
	m := NewMinter("fuzz")
	f.Add(m.APNs(FateValid, Development, "com.example.chat", 3))
	f.Add(strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, token string) {
		info, ok := m.ParseAPNs(token)
		if !ok {
			return
		}
		// Hex is read in either case, as APNs reads the bytes it spells.
		if lower, ok := m.ParseAPNs(strings.ToLower(token)); !WellFormedAPNs(token) || !ok || lower != info {
			t.Fatalf("recognised %q as %+v, but its lower-case form as %+v, %v", token, info, lower, ok)
		}
	})
}
