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

// pushListeners are the listeners that take pushes, in the order of
// recorder.flight.
func pushListeners() [numPushListeners]string {
	return [...]string{ListenerAPNsProduction, ListenerAPNsDevelopment, ListenerFCM}
}

const numPushListeners = 3

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
	Payload json.RawMessage `json:"payload,omitempty"`
}

const recordShards = 64

// recorder keeps counts, receipts and in-flight gauges. It is sharded, and
// lock-free where it can be, because every push writes to it, and the APNs
// listener must sustain tens of thousands of pushes a second on two cores.
type recorder struct {
	seed   maphash.Seed
	counts sync.Map // countKey -> *atomic.Int64
	conns  sync.Map // listener -> *atomic.Int64, connections accepted
	// flight is written by every push, counts read by every answer: the
	// pad keeps them off one cache line (gauge pads its own other side).
	_      [cacheLine]byte
	flight [numPushListeners]gauge
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

// gauge counts the requests a listener is handling now and the most it has
// handled at once, so that a test can prove a client bounds its fan-out. It
// is written twice by every request, so it is two atomics and no lock.
type gauge struct {
	cur  atomic.Int64
	peak atomic.Int64
	// Whichever core serves a request writes its listener's gauge; the pad
	// keeps those writes from invalidating the line of the next listener's
	// gauge, or of whatever field follows, on the other cores.
	_ [cacheLine]byte
}

// cacheLine is the cache line size of the machines the simulator runs on.
const cacheLine = 64

// enter counts a request in and raises the peak to the new count.
func (g *gauge) enter() {
	g.raise(g.cur.Add(1))
}

// leave counts a request out. The peak stays.
func (g *gauge) leave() { g.cur.Add(-1) }

// raise makes the peak at least n. Loading first keeps the steady state,
// where n is below the peak, from writing at all.
func (g *gauge) raise(n int64) {
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// resetPeak starts a new peak from the requests in flight now: they are
// handled concurrently after the reset too. Zeroing before raising means a
// request that enters meanwhile can only raise the peak, never be lost.
func (g *gauge) resetPeak() {
	g.peak.Store(0)
	g.raise(g.cur.Load())
}

// gauge returns listener's gauge, or nil for a listener that takes no pushes.
func (r *recorder) gauge(listener string) *gauge {
	for i, name := range pushListeners() {
		if name == listener {
			return &r.flight[i]
		}
	}
	return nil
}

// inFlight reports every push listener's current count, or its peak.
func (r *recorder) inFlight(peak bool) map[string]int64 {
	out := make(map[string]int64, numPushListeners)
	for i, name := range pushListeners() {
		g := &r.flight[i]
		if peak {
			out[name] = g.peak.Load()
		} else {
			out[name] = g.cur.Load()
		}
	}
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
	// The current counts are not reset: the requests they count are still
	// being handled and will count themselves out.
	for i := range r.flight {
		r.flight[i].resetPeak()
	}
	r.dropped.Store(0)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		r.kept.Add(-int64(len(s.m)))
		s.m = make(map[string]*Receipt)
		s.mu.Unlock()
	}
}
