package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/pushjob"
)

// bench is one database's pass: its pushd processes and what the harness
// knows of the registry.
type bench struct {
	o       options
	db      string
	world   *world
	sdb     *storage.DB
	daemons []*daemon
	ctl     *pushsim.Control
	rc      *redis.Client
	enq     *pushjob.Enqueuer
	refs    map[string]float64
	// marked are the dead tokens earlier workloads made pushd mark invalid.
	marked map[string]bool
	// dmJobsPerS is dm's measured rate, for latency's.
	dmJobsPerS float64
}

// result is a workload's JSON line.
type result struct {
	Workload   string             `json:"workload"`
	DB         string             `json:"db"`
	Procs      int                `json:"procs"`
	Enqueue    string             `json:"enqueue"`
	Jobs       int                `json:"jobs"`
	Recipients int                `json:"recipients"`
	Pushes     int                `json:"pushes"`
	Seconds    float64            `json:"seconds"`
	PushesPerS float64            `json:"pushes_per_s"`
	JobsPerS   float64            `json:"jobs_per_s"`
	RateJobsS  float64            `json:"offered_jobs_per_s,omitempty"`
	Ratio      map[string]float64 `json:"ratio"`
	Latency    percentiles        `json:"enqueue_to_provider_ms"`
	CPU        float64            `json:"pushd_cpu_s"`
	CPUPerPush float64            `json:"pushd_cpu_us_per_push"`
	RSS        float64            `json:"pushd_peak_rss_mb"`
	RedisCPU   float64            `json:"redis_cpu_s"`
	Outcomes   map[string]int     `json:"outcomes"`
	Expected   map[string]int     `json:"expected"`
	OK         bool               `json:"ok"`
	Problems   []string           `json:"problems,omitempty"`
}

func (b *bench) metrics(ctx context.Context) (map[string]int, error) {
	sum := make(map[string]int)
	for _, d := range b.daemons {
		st, body := d.api.Do(ctx, "GET", "/metrics", nil)
		if st != 200 {
			return nil, fmt.Errorf("GET /metrics: %d %s", st, body)
		}
		for k, v := range outcomes(body) {
			sum[k] += v
		}
	}
	return sum, nil
}

// refused counts the pushes pushsim accepted and those it answered
// Unregistered (APNs 410, FCM 404); the OAuth2 token endpoint's answers
// are not pushes.
func refused(counts []pushsim.Count) (accepted, unregistered int) {
	for _, c := range counts {
		if c.Listener == pushsim.ListenerFCMOAuth {
			continue
		}
		switch c.Status {
		case 200:
			accepted += int(c.Count)
		case 404, 410:
			unregistered += int(c.Count)
		}
	}
	return accepted, unregistered
}

// seen is what pushsim accepted and refused as unregistered, and pushd's
// outcome counts, now.
func (b *bench) seen(ctx context.Context) (accepted, unregistered int, outcomes map[string]int, err error) {
	counts, err := b.ctl.Counts(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	accepted, unregistered = refused(counts)
	outcomes, err = b.metrics(ctx)
	return accepted, unregistered, outcomes, err
}

func (b *bench) cpu() (float64, error) {
	var sum float64
	for _, d := range b.daemons {
		s, err := cpuSeconds(d.Pid())
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// workload enqueues jobs (all at once, or at rate jobs/s) and waits until
// pushsim and pushd have seen everything they must.
func (b *bench) workload(ctx context.Context, kind, name, enqueuer string, jobs []benchJob, rate float64) (result, error) {
	res := result{Workload: name, DB: b.db, Procs: len(b.daemons), Enqueue: enqueuer, Jobs: len(jobs), RateJobsS: round(rate, 1)}
	for _, j := range jobs {
		res.Recipients += len(j.recipients)
	}
	progress("%s %s: muting, %d jobs of %d recipients", b.db, name, len(jobs), res.Recipients)
	if _, err := b.world.seedMutes(ctx, b.sdb, jobs); err != nil {
		return res, fmt.Errorf("seed mutes: %w", err)
	}
	exp := b.world.expect(jobs, b.marked)
	if err := b.ctl.Reset(ctx); err != nil {
		return res, err
	}
	before, err := b.metrics(ctx)
	if err != nil {
		return res, err
	}
	for _, d := range b.daemons {
		if err := resetPeakRSS(d.Pid()); err != nil {
			return res, err
		}
	}
	cpu0, err := b.cpu()
	if err != nil {
		return res, err
	}
	redis0, err := redisCPU(ctx, b.rc)
	if err != nil {
		return res, err
	}

	profiled := b.profile(ctx, name)
	enqueued := make([]time.Time, len(jobs))
	var sent atomic.Int64
	var enqErr atomic.Value
	start := time.Now()
	enqueue := func(i int) {
		enqueued[i] = time.Now()
		if err := b.enqueueOne(ctx, enqueuer, i, jobs[i]); err != nil {
			enqErr.CompareAndSwap(nil, err)
		}
		sent.Add(1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		if rate > 0 {
			for i := range jobs {
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
				wg.Go(func() { enqueue(i) })
			}
		} else {
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < len(jobs) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
						enqueue(i)
					}
				})
			}
		}
		wg.Wait()
	}()

	// Wait until pushsim has accepted every expected push and pushd has
	// counted every outcome, then a little longer, so that a duplicate
	// has time to show.
	deadline := time.Now().Add(2*time.Minute + time.Duration(res.Recipients)*2*time.Millisecond)
	lastProgress := time.Now()
	for {
		time.Sleep(20 * time.Millisecond)
		accepted, _, got, err := b.seen(ctx)
		if err != nil {
			return res, err
		}
		delta := func(o string) int { return got[o] - before[o] }
		finished := sent.Load() == int64(len(jobs)) && accepted >= exp.delivered &&
			delta("delivered") >= exp.delivered && delta("muted") >= exp.muted && delta("invalid_token") >= len(exp.dead)
		if finished || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if time.Since(lastProgress) > 2*time.Second {
			progress("%s %s: enqueued %d/%d jobs, pushsim accepted %d/%d pushes", b.db, name, sent.Load(), len(jobs), accepted, exp.delivered)
			lastProgress = time.Now()
		}
	}
	<-done
	<-profiled
	cpu1, _ := b.cpu()
	redis1, _ := redisCPU(ctx, b.rc)
	for _, d := range b.daemons {
		rss, err := peakRSS(d.Pid())
		if err != nil {
			return res, err
		}
		res.RSS = max(res.RSS, round(rss, 1))
	}
	time.Sleep(300 * time.Millisecond)
	accepted, unregistered, got, err := b.seen(ctx)
	if err != nil {
		return res, err
	}
	receipts, err := b.ctl.ReceiptTimes(ctx)
	if err != nil {
		return res, err
	}

	res.Outcomes = make(map[string]int)
	for o, n := range got {
		if n -= before[o]; n != 0 {
			res.Outcomes[o] = n
		}
	}
	res.Expected = map[string]int{"delivered": exp.delivered, "muted": exp.muted, "invalid_token": len(exp.dead)}
	if err, _ := enqErr.Load().(error); err != nil {
		res.Problems = append(res.Problems, "enqueue: "+err.Error())
	}
	res.Problems = append(res.Problems, check(exp, res.Outcomes, accepted, unregistered, receipts)...)
	res.OK = len(res.Problems) == 0

	// Throughput from the first enqueue to the last push pushsim received;
	// latency from each job's enqueue to its devices' receipts.
	var last time.Time
	byToken := make(map[string][]time.Time)
	for i, j := range jobs {
		for _, r := range j.recipients {
			if b.world.muted(r) {
				continue
			}
			for _, d := range b.world.devices(r) {
				if !d.dead {
					byToken[d.token] = append(byToken[d.token], enqueued[i])
				}
			}
		}
	}
	var lat []time.Duration
	for _, rc := range receipts {
		if rc.Last.After(last) {
			last = rc.Last
		}
		ts := byToken[rc.Token]
		if len(ts) == 0 {
			continue
		}
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		// A token's first receipt is its first job's push, its last the
		// last job's: exact when a token is in at most two of the jobs.
		lat = append(lat, rc.First.Sub(ts[0]))
		if rc.Count > 1 && len(ts) > 1 {
			lat = append(lat, rc.Last.Sub(ts[len(ts)-1]))
		}
	}
	res.Latency = percentilesOf(lat)
	res.Pushes = accepted + unregistered
	if secs := last.Sub(start).Seconds(); secs > 0 {
		res.Seconds = round(secs, 3)
		res.PushesPerS = round(float64(res.Pushes)/secs, 0)
		res.JobsPerS = round(float64(len(jobs))/secs, 0)
	}
	if kind == "dm" {
		b.dmJobsPerS = res.JobsPerS
	}
	res.Ratio = make(map[string]float64)
	for ref, v := range b.refs {
		if v > 0 && rate == 0 {
			res.Ratio[ref] = round(res.PushesPerS/v, 3)
		}
	}
	res.CPU = round(cpu1-cpu0, 2)
	if res.Pushes > 0 {
		res.CPUPerPush = round((cpu1-cpu0)/float64(res.Pushes)*1e6, 1)
	}
	res.RedisCPU = round(redis1-redis0, 2)
	return res, nil
}

// profile takes a CPU profile of the first pushd over the workload's first
// seconds, when asked to; the channel closes when it is written.
func (b *bench) profile(ctx context.Context, name string) <-chan struct{} {
	done := make(chan struct{})
	d := b.daemons[0]
	if b.o.profileSeconds == 0 || d.pprof == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		path := filepath.Join(b.o.work, "profiles", b.db+"-"+name+".pprof")
		if err := fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.pprof, b.o.profileSeconds), path); err != nil {
			progress("profile %s: %v", name, err)
			return
		}
		progress("profile of %s %s: %s", b.db, name, path)
	}()
	return done
}

func fetchProfile(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) enqueueOne(ctx context.Context, enqueuer string, i int, j benchJob) error {
	job := j.job()
	if enqueuer == "go" {
		_, err := b.enq.Enqueue(ctx, job)
		return err
	}
	d := b.daemons[i%len(b.daemons)]
	st, body := d.api.Do(ctx, "POST", "/v1/push", job)
	if st != 202 {
		return fmt.Errorf("POST /v1/push %s: %d %s", j.id, st, body)
	}
	return nil
}

// check compares what happened with what must have: every valid device
// received each of its pushes exactly once, every outcome counted as
// expected, every dead token refused and counted invalid.
func check(exp expectation, got map[string]int, accepted, unregistered int, receipts []pushsim.Receipt) []string {
	var p []string
	if got["delivered"] != exp.delivered {
		p = append(p, fmt.Sprintf("pushd counted %d delivered, want %d", got["delivered"], exp.delivered))
	}
	if got["muted"] != exp.muted {
		p = append(p, fmt.Sprintf("pushd counted %d muted, want %d", got["muted"], exp.muted))
	}
	// Two jobs in flight at once may both reach a dead token before either
	// marks it; each answer is then counted.
	if got["invalid_token"] < len(exp.dead) || got["invalid_token"] != unregistered {
		p = append(p, fmt.Sprintf("pushd counted %d invalid tokens; pushsim refused %d as unregistered; %d dead tokens were new", got["invalid_token"], unregistered, len(exp.dead)))
	}
	if accepted != exp.delivered {
		p = append(p, fmt.Sprintf("pushsim accepted %d pushes, want %d", accepted, exp.delivered))
	}
	var missing, dup, stray int
	seen := make(map[string]bool, len(receipts))
	for _, rc := range receipts {
		seen[rc.Token] = true
		want := exp.receipts[rc.Token]
		switch {
		case want == 0:
			stray++
		case int(rc.Count) > want:
			dup++
		case int(rc.Count) < want:
			missing++
		}
	}
	for t := range exp.receipts {
		if !seen[t] {
			missing++
		}
	}
	if missing+dup+stray > 0 {
		p = append(p, fmt.Sprintf("devices: %d missed a push, %d got one twice, %d got one they should not have", missing, dup, stray))
	}
	return p
}
