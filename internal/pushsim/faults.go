package pushsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FaultKind names what a fault does to a request.
type FaultKind string

const (
	// FaultTooManyRequests answers 429 (APNs TooManyRequests, FCM
	// QUOTA_EXCEEDED) with Retry-After.
	FaultTooManyRequests FaultKind = "429"
	// FaultInternal answers 500 (APNs InternalServerError, FCM INTERNAL).
	FaultInternal FaultKind = "500"
	// FaultUnavailable answers 503 (APNs ServiceUnavailable, FCM
	// UNAVAILABLE) with Retry-After.
	FaultUnavailable FaultKind = "503"
	// FaultGoAway answers 503 Shutdown and sends GOAWAY on the connection,
	// as APNs does when a server goes down for maintenance.
	FaultGoAway FaultKind = "goaway"
	// FaultDrop closes the TCP connection without an answer, failing every
	// request in flight on it.
	FaultDrop FaultKind = "drop"
	// FaultLatency delays the answer by Latency plus up to Jitter.
	FaultLatency FaultKind = "latency"
	// FaultThirdPartyAuth answers FCM's 401 THIRD_PARTY_AUTH_ERROR (the APNs
	// credentials uploaded to Firebase were refused). APNs listeners ignore it.
	FaultThirdPartyAuth FaultKind = "third_party_auth"
	// FaultReason answers Status with Reason: any row of Apple's error table
	// the simulator has no other way to produce (403 Forbidden,
	// BadCertificate, 410 ExpiredToken, IdleTimeout...), or on FCM any
	// errorCode with its HTTP status.
	FaultReason FaultKind = "reason"
)

var faultKinds = []FaultKind{FaultTooManyRequests, FaultInternal, FaultUnavailable, FaultGoAway, FaultDrop, FaultLatency, FaultThirdPartyAuth, FaultReason}

// Fault is one fault injection rule. A request is hit when the rule is
// active (between Start and Start+Duration), its listener and token match,
// the hit budget (Limit) is not spent, and a coin with probability Rate
// comes up.
type Fault struct {
	ID   string    `json:"id,omitempty"`
	Kind FaultKind `json:"kind"`
	// Listener limits the rule: "apns" (both APNs listeners),
	// "apns-production", "apns-development" or "fcm"; empty is every listener.
	Listener string `json:"listener,omitempty"`
	// Rate is the probability of hitting a matching request; 0 means 1.
	Rate float64 `json:"rate,omitempty"`
	// Tokens limits the rule to these device tokens.
	Tokens []string `json:"tokens,omitempty"`
	// Start is when the rule becomes active; zero is when it is added.
	Start time.Time `json:"start,omitzero"`
	// Duration is how long it stays active; zero is until removed.
	Duration Duration `json:"duration,omitempty"`
	// Limit is the most requests it hits; zero is no limit.
	Limit int64 `json:"limit,omitempty"`
	// RetryAfter is the Retry-After seconds of a 429 or 503; zero sends none.
	RetryAfter int `json:"retry_after,omitempty"`
	// Status and Reason are the answer of a reason fault.
	Status int    `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Latency and Jitter are the delay of a latency fault.
	Latency Duration `json:"latency,omitempty"`
	Jitter  Duration `json:"jitter,omitempty"`

	// Hits is how many requests the rule has hit so far (read only).
	Hits int64 `json:"hits"`
}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as 1.5s or 200ms", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON also accepts a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("duration %s: want seconds or a string such as \"1.5s\"", b)
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	return d.UnmarshalText([]byte(s))
}

// Validate checks the rule and names the field at fault.
func (f *Fault) Validate() error {
	if !slices.Contains(faultKinds, f.Kind) {
		return fmt.Errorf("fault: kind %q: want one of 429, 500, 503, goaway, drop, latency, third_party_auth, reason", f.Kind)
	}
	switch f.Listener {
	case "", "apns", ListenerAPNsProduction, ListenerAPNsDevelopment, ListenerFCM:
	default:
		return fmt.Errorf("fault: listener %q: want apns, apns-production, apns-development, fcm or empty", f.Listener)
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("fault: rate %v: want 0 < rate <= 1 (0 means 1)", f.Rate)
	}
	if f.Duration < 0 || f.Latency < 0 || f.Jitter < 0 {
		return fmt.Errorf("fault: duration, latency and jitter must not be negative")
	}
	if f.Limit < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("fault: limit and retry_after must not be negative")
	}
	if f.Kind == FaultReason && (f.Status < 400 || f.Status > 599 || f.Reason == "") {
		return fmt.Errorf("fault: reason: a reason fault needs status 400..599 and a reason")
	}
	if f.Kind == FaultReason && !validReason(f.Reason) {
		return fmt.Errorf("fault: reason %q: want letters, digits and underscores", f.Reason)
	}
	if f.Kind == FaultLatency && f.Latency == 0 && f.Jitter == 0 {
		return fmt.Errorf("fault: latency: a latency fault needs latency or jitter")
	}
	return nil
}

type faultRule struct {
	Fault
	tokens map[string]bool
	end    time.Time
	hits   atomic.Int64
}

func (r *faultRule) matches(now time.Time, listener, token string) bool {
	if now.Before(r.Start) || (!r.end.IsZero() && !now.Before(r.end)) {
		return false
	}
	switch r.Listener {
	case "":
	case "apns":
		if listener == ListenerFCM {
			return false
		}
	default:
		if r.Listener != listener {
			return false
		}
	}
	if r.tokens != nil && !r.tokens[token] {
		return false
	}
	if r.Rate > 0 && r.Rate < 1 && rand.Float64() >= r.Rate {
		return false
	}
	if r.Limit > 0 {
		if r.hits.Add(1) > r.Limit {
			return false
		}
		return true
	}
	r.hits.Add(1)
	return true
}

// faults holds the active rules. Requests read it on every push, so the
// common case (no rules) is one atomic load.
type faults struct {
	mu    sync.Mutex
	next  int
	rules atomic.Pointer[[]*faultRule]
}

func (fs *faults) add(f Fault, now time.Time) (Fault, error) {
	if err := f.Validate(); err != nil {
		return Fault{}, err
	}
	if f.Start.IsZero() {
		f.Start = now
	}
	r := &faultRule{Fault: f}
	if f.Duration > 0 {
		r.end = f.Start.Add(time.Duration(f.Duration))
	}
	if len(f.Tokens) > 0 {
		r.tokens = make(map[string]bool, len(f.Tokens))
		for _, t := range f.Tokens {
			r.tokens[t] = true
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.next++
	r.ID = "f" + strconv.Itoa(fs.next)
	var rules []*faultRule
	if p := fs.rules.Load(); p != nil {
		rules = slices.Clone(*p)
	}
	rules = append(rules, r)
	fs.rules.Store(&rules)
	return r.Fault, nil
}

func (fs *faults) remove(id string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	p := fs.rules.Load()
	if p == nil {
		return false
	}
	rules := slices.DeleteFunc(slices.Clone(*p), func(r *faultRule) bool { return r.ID == id })
	if len(rules) == len(*p) {
		return false
	}
	fs.rules.Store(&rules)
	return true
}

func (fs *faults) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rules.Store(nil)
}

func (fs *faults) list() []Fault {
	p := fs.rules.Load()
	if p == nil {
		return []Fault{}
	}
	out := make([]Fault, 0, len(*p))
	for _, r := range *p {
		f := r.Fault
		f.Hits = r.hits.Load()
		if r.Limit > 0 {
			// Requests past the limit were counted but not hit.
			f.Hits = min(f.Hits, r.Limit)
		}
		out = append(out, f)
	}
	return out
}

// verdict is what the faults decide for one request: a delay, and at most
// one failure.
type verdict struct {
	delay time.Duration
	fail  *faultRule
}

func (fs *faults) judge(now time.Time, listener, token string) verdict {
	p := fs.rules.Load()
	if p == nil {
		return verdict{}
	}
	var v verdict
	for _, r := range *p {
		if r.Kind == FaultLatency {
			if r.matches(now, listener, token) {
				d := time.Duration(r.Latency)
				if r.Jitter > 0 {
					d += rand.N(time.Duration(r.Jitter))
				}
				v.delay += d
			}
			continue
		}
		if r.Kind == FaultThirdPartyAuth && listener != ListenerFCM {
			continue
		}
		if v.fail == nil && r.matches(now, listener, token) {
			v.fail = r
		}
	}
	return v
}

// validReason keeps a reason safe to write into a JSON string unescaped.
func validReason(r string) bool {
	for _, c := range r {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return len(r) <= 64
}
