package main

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/pushjob"
)

// The world is the registry a run seeds: clients with one to three
// devices (APNs production and development, Android through FCM), about
// 1% of them dead at the provider, and about 5% of the clients muting
// every conversation a job names them in. Everything is a function of the
// client's index, so the harness knows what each job must produce without
// asking pushd.
type world struct {
	clients int
	minter  pushsim.Minter
}

type deviceKind int

const (
	apnsProduction deviceKind = iota
	apnsDevelopment
	fcmAndroid
)

type device struct {
	id, token string
	kind      deviceKind
	dead      bool
}

// mix64 is SplitMix64's finalizer: a cheap, well-spread hash of an index.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func clientID(i int) string { return fmt.Sprintf("u%06d", i) }

// devices are client i's devices.
func (w *world) devices(i int) []device {
	n := 1 + int(mix64(uint64(i))%3)
	out := make([]device, n)
	for k := range out {
		h := mix64(uint64(i)<<2 | uint64(k) | 1<<62)
		d := device{id: fmt.Sprintf("d%06d-%d", i, k), dead: h%100 == 0}
		switch h / 100 % 10 {
		case 0, 1, 2, 3, 4, 5:
			d.kind = apnsProduction
		case 6:
			d.kind = apnsDevelopment
		default:
			d.kind = fcmAndroid
		}
		fate := pushsim.FateValid
		if d.dead {
			fate = pushsim.FateUnregistered
		}
		idx := uint64(i)*4 + uint64(k)
		switch d.kind {
		case apnsProduction:
			d.token = w.minter.APNs(fate, pushsim.Production, topic, idx)
		case apnsDevelopment:
			d.token = w.minter.APNs(fate, pushsim.Development, topic, idx)
		default:
			d.token = w.minter.FCM(fate, project, idx)
		}
		out[k] = d
	}
	return out
}

// muted reports whether client i mutes the conversations it is in.
func (w *world) muted(i int) bool { return mix64(uint64(i)|1<<61)%20 == 0 }

// seed registers every client's devices. It writes through pushd's own
// stores, a few at once, since a registry of 100 000 clients through the
// HTTP API would take longer than the benchmark.
func (w *world) seed(ctx context.Context, db *storage.DB, progress func(done int)) error {
	reg := installations.NewStore(db)
	work := make(chan int)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for i := range work {
				for _, d := range w.devices(i) {
					in := installations.Installation{ID: d.id, AppID: appID, ClientID: clientID(i), Token: d.token}
					switch d.kind {
					case apnsProduction:
						in.Provider, in.APNsEnv = "apns", "production"
					case apnsDevelopment:
						in.Provider, in.APNsEnv = "apns", "development"
					default:
						in.Provider, in.Platform = "fcm", "android"
					}
					if _, err := reg.Upsert(ctx, in); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	var err error
feed:
	for i := range w.clients {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		}
		if i%5000 == 0 {
			progress(i)
		}
	}
	close(work)
	for range 8 - btoi(err != nil) {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// seedMutes mutes, for each job, the conversation for its recipients who
// mute.
func (w *world) seedMutes(ctx context.Context, db *storage.DB, jobs []benchJob) (int, error) {
	ms := mute.NewStore(db)
	now := time.Now()
	n := 0
	for _, j := range jobs {
		for _, r := range j.recipients {
			if !w.muted(r) {
				continue
			}
			if err := ms.Set(ctx, mute.Mute{AppID: appID, ClientID: clientID(r), ConversationID: j.conv}, now); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// benchJob is one job of a workload, by client index.
type benchJob struct {
	id, conv   string
	recipients []int
}

func (j benchJob) job() pushjob.Job {
	ids := make([]string, len(j.recipients))
	for i, r := range j.recipients {
		ids[i] = clientID(r)
	}
	return pushjob.Job{AppID: appID, MessageID: j.id, ConversationID: j.conv, FromClientID: "bench", Recipients: ids}
}

// expectation is what a workload's jobs must produce.
type expectation struct {
	// receipts is how many pushes each valid token must receive.
	receipts         map[string]int
	delivered, muted int
	// dead are the dead tokens the workload sends to for the first time:
	// each must be answered Unregistered and marked invalid.
	dead map[string]bool
}

// expect works out what jobs produce, given the dead tokens earlier
// workloads had pushd mark invalid (updated).
func (w *world) expect(jobs []benchJob, marked map[string]bool) expectation {
	e := expectation{receipts: make(map[string]int), dead: make(map[string]bool)}
	for _, j := range jobs {
		for _, r := range j.recipients {
			if w.muted(r) {
				e.muted++
				continue
			}
			for _, d := range w.devices(r) {
				switch {
				case !d.dead:
					e.receipts[d.token]++
					e.delivered++
				case !marked[d.token]:
					e.dead[d.token] = true
				}
			}
		}
	}
	for t := range e.dead {
		marked[t] = true
	}
	return e
}
