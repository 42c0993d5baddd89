package pushsim

import (
	"encoding/json"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Listener names, as they appear in counts and receipts.
const (
	ListenerAPNsProduction  = "apns-production"
	ListenerAPNsDevelopment = "apns-development"
	ListenerFCM             = "fcm"
)

// Count is how many requests one listener answered with one status and reason.
type Count struct {
	Listener string `json:"listener"`
	Status   int    `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Count    int64  `json:"count"`
}

type countKey struct {
	listener string
	status   int
	reason   string
}

// Receipt is what the simulator knows about the pushes a token accepted.
type Receipt struct {
	Token    string `json:"token"`
	Listener string `json:"listener"`
	// Count is how many times the token accepted a push: more than one for
	// the same message means a duplicate reached the device.
	Count int64     `json:"count"`
	First time.Time `json:"first_received"`
	Last  time.Time `json:"last_received"`
	// Headers are the last accepted request's provider headers (apns-*),
	// lower-cased; credentials are never kept.
	Headers map[string]string `json:"headers,omitempty"`
	// Payload is the last accepted body: the APNs JSON payload, or the FCM
	// "message" object.
	Payload json.RawMessage `json:"payload"`
}

const recordShards = 64

// recorder keeps counts and receipts. It is sharded because every accepted
// push writes to it, and the APNs listener must sustain tens of thousands of
// pushes a second on two cores.
type recorder struct {
	seed   maphash.Seed
	counts sync.Map // countKey -> *atomic.Int64
	conns  sync.Map // listener -> *atomic.Int64, connections accepted
	shards [recordShards]receiptShard
	// max is the most tokens with a receipt; past it pushes to new tokens
	// are counted but not kept, so a long benchmark cannot exhaust memory.
	max     int64
	kept    atomic.Int64
	dropped atomic.Int64
}

type receiptShard struct {
	mu sync.Mutex
	m  map[string]*Receipt
}

func newRecorder(maxReceipts int64) *recorder {
	r := &recorder{seed: maphash.MakeSeed(), max: maxReceipts}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*Receipt)
	}
	return r
}

func (r *recorder) count(listener string, status int, reason string) {
	k := countKey{listener, status, reason}
	v, ok := r.counts.Load(k)
	if !ok {
		v, _ = r.counts.LoadOrStore(k, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// receive records an accepted push. headers and payload are owned by the
// recorder from here on.
func (r *recorder) receive(listener, token string, now time.Time, headers map[string]string, payload []byte) {
	s := &r.shards[maphash.String(r.seed, token)%recordShards]
	s.mu.Lock()
	rc, ok := s.m[token]
	if !ok {
		if r.kept.Add(1) > r.max {
			r.kept.Add(-1)
			r.dropped.Add(1)
			s.mu.Unlock()
			return
		}
		rc = &Receipt{Token: token, First: now}
		s.m[token] = rc
	}
	rc.Listener = listener
	rc.Count++
	rc.Last = now
	rc.Headers = headers
	rc.Payload = payload
	s.mu.Unlock()
}

func (r *recorder) connected(listener string) {
	v, ok := r.conns.Load(listener)
	if !ok {
		v, _ = r.conns.LoadOrStore(listener, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (r *recorder) connections() map[string]int64 {
	out := make(map[string]int64)
	r.conns.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (r *recorder) receipt(token string) (Receipt, bool) {
	s := &r.shards[maphash.String(r.seed, token)%recordShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	rc, ok := s.m[token]
	if !ok {
		return Receipt{}, false
	}
	return *rc, true
}

func (r *recorder) receipts() []Receipt {
	var out []Receipt
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, rc := range s.m {
			out = append(out, *rc)
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First.Before(out[j].First) })
	return out
}

func (r *recorder) snapshot() []Count {
	var out []Count
	r.counts.Range(func(k, v any) bool {
		ck := k.(countKey)
		out = append(out, Count{Listener: ck.listener, Status: ck.status, Reason: ck.reason, Count: v.(*atomic.Int64).Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Listener != b.Listener {
			return a.Listener < b.Listener
		}
		if a.Status != b.Status {
			return a.Status < b.Status
		}
		return a.Reason < b.Reason
	})
	return out
}

func (r *recorder) reset() {
	r.counts.Clear()
	r.conns.Clear()
	r.dropped.Store(0)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		r.kept.Add(-int64(len(s.m)))
		s.m = make(map[string]*Receipt)
		s.mu.Unlock()
	}
}
