package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/pushjob"
	"github.com/pushd/pushd/scripts/internal/stack"
)

// redisDB is the Redis database the harness gives pushd (no test package
// uses it, see testenv.Redis); it is flushed
// before each database's pass.
const redisDB = 9

// runningKey marks the Redis database as this run's: two harnesses on one
// Redis would flush and take each other's jobs and report nonsense, so the
// second refuses to start.
const (
	runningKey = "pushd-bench:running"
	runningTTL = 3 * time.Hour
)

func run(ctx context.Context, o options) error {
	rc := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), DB: redisDB})
	defer rc.Close()
	ok, err := rc.SetNX(ctx, runningKey, os.Getpid(), runningTTL).Result()
	if err != nil {
		return fmt.Errorf("Redis at %s: %w", stack.RedisAddr(), err)
	}
	if !ok {
		return fmt.Errorf("another bench run is using Redis db %d (key %s); wait for it, or delete the key if it died", redisDB, runningKey)
	}
	defer rc.Del(context.WithoutCancel(ctx), runningKey)
	if err := os.RemoveAll(o.work); err != nil {
		return err
	}
	progress("building pushd and pushsim")
	pushdBin, simBin, err := stack.Build(ctx, filepath.Join(o.work, "bin"))
	if err != nil {
		return err
	}
	progress("starting pushsim")
	// pushd and the reference clients each sign a provider token of the
	// same key; Apple's 20 minutes between new tokens would refuse one.
	sim, err := stack.StartSim(ctx, simBin, o.work, stack.SimOptions{Seed: seed, Topic: topic, Project: project,
		Args: []string{"--provider-token-interval", "0"}})
	if err != nil {
		return err
	}
	defer sim.Stop()
	creds, err := sim.CopyCredentials(filepath.Join(o.work, "certs"), project)
	if err != nil {
		return err
	}

	enc := json.NewEncoder(os.Stdout)
	emit := func(v any) { enc.Encode(v) }
	emit(machine{Kind: "machine", Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(), CPU: cpuModel(),
		Go: runtime.Version(), Clients: o.clients})

	progress("references: the bare apns2 client and h2load against pushsim")
	refs, err := references(ctx, o, simBin, sim, "start", emit)
	if err != nil {
		return err
	}
	var failed []string
	for _, db := range o.dbs {
		f, err := pass(ctx, o, db, pushdBin, sim, creds, refs, emit)
		if err != nil {
			return fmt.Errorf("%s: %w", db, err)
		}
		failed = append(failed, f...)
	}
	progress("references again, to show how far the machine drifted during the run")
	if _, err := references(ctx, o, simBin, sim, "end", emit); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d workload(s) failed: %s (logs in %s)", len(failed), strings.Join(failed, "; "), o.work)
	}
	return nil
}

// daemon is one running pushd.
type daemon struct {
	*stack.Proc
	api *stack.Client
	// pprof is the loopback address of its profiling listener, or "".
	pprof string
}

// pass runs every workload against pushd on db and returns what failed.
func pass(ctx context.Context, o options, db, pushdBin string, sim *stack.Sim, creds stack.Credentials, refs map[string]float64, emit func(any)) ([]string, error) {
	dir, err := filepath.Abs(filepath.Join(o.work, db))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rc := redis.NewClient(&redis.Options{Addr: stack.RedisAddr(), DB: redisDB})
	defer rc.Close()
	if err := rc.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("flush Redis db %d at %s: %w", redisDB, stack.RedisAddr(), err)
	}
	if err := rc.Set(ctx, runningKey, os.Getpid(), runningTTL).Err(); err != nil {
		return nil, err
	}

	scfg := storage.Config{Driver: "sqlite", Path: filepath.Join(dir, "pushd.db")}
	dbYAML := fmt.Sprintf("{driver: sqlite, path: %q}", scfg.Path)
	if db == "postgres" {
		dsn, err := benchSchema(ctx, o.pgDSN)
		if err != nil {
			return nil, err
		}
		scfg = storage.Config{Driver: "postgres", DSN: storage.DSN(dsn)}
		dbYAML = `{driver: postgres, dsn: "${PUSHD_BENCH_DSN}"}`
		os.Setenv("PUSHD_BENCH_DSN", dsn)
	}
	token := rand.Text()
	// The config names the token and the DSN by variable, as an operator's
	// would; migrate and serve both read them.
	os.Setenv("PUSHD_BENCH_TOKEN", token)
	worker := ""
	if o.concurrency > 0 {
		worker = fmt.Sprintf("worker: {concurrency: %d}\n", o.concurrency)
	}
	var daemons []*daemon
	defer func() {
		for _, d := range daemons {
			d.Stop()
		}
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range o.procs {
		listen, pprof, extra := stack.FreePort(), "", worker
		if o.profileSeconds > 0 {
			pprof = stack.FreePort()
			extra += fmt.Sprintf("pprof_listen: %s\n", pprof)
		}
		cfg := fmt.Sprintf("listen: %s\napi_tokens: [\"${PUSHD_BENCH_TOKEN}\"]\nredis: {addr: %q, db: %d}\ndatabase: %s\n%sapps:\n%s",
			listen, stack.RedisAddr(), redisDB, dbYAML, extra, sim.AppYAML(appID, topic, creds, `    defaults:
      title: "${fromClientId}"
      body: "New message in ${convId}"
`))
		path := filepath.Join(dir, fmt.Sprintf("pushd-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		if i == 0 {
			progress("%s: migrating and seeding %d clients", db, o.clients)
			if out, err := execOut(ctx, pushdBin, "migrate", "--config", path); err != nil {
				return nil, fmt.Errorf("pushd migrate: %w: %s", err, out)
			}
			if err := seedRegistry(ctx, scfg, o.clients); err != nil {
				return nil, err
			}
		}
		p, err := stack.Start(filepath.Join(dir, fmt.Sprintf("pushd-%d.log", i)), nil, pushdBin, "serve", "--config", path)
		if err != nil {
			return nil, err
		}
		d := &daemon{Proc: p, api: &stack.Client{Base: "http://" + listen, Token: token, HTTP: hc}, pprof: pprof}
		daemons = append(daemons, d)
		if err := p.WaitHTTP(ctx, d.api.Base+"/readyz"); err != nil {
			return nil, fmt.Errorf("pushd: %w", err)
		}
	}

	sdb, err := storage.Open(ctx, scfg)
	if err != nil {
		return nil, err
	}
	defer sdb.Close()
	b := &bench{o: o, db: db, world: &world{clients: o.clients, minter: pushsim.NewMinter(seed)}, sdb: sdb, daemons: daemons,
		ctl: pushsim.NewControl(sim.ControlURL()), rc: rc, refs: refs, marked: make(map[string]bool)}
	aq := asynq.NewClient(asynq.RedisClientOpt{Addr: stack.RedisAddr(), DB: redisDB})
	defer aq.Close()
	b.enq = pushjob.NewEnqueuer(aq)

	var failed []string
	run := fmt.Sprintf("%s-%d", db, time.Now().Unix())
	for _, enqueuer := range o.enqueuers {
		for _, w := range o.workloads {
			name := w
			if len(o.enqueuers) > 1 {
				name += "-" + enqueuer
			}
			var jobs []benchJob
			rate := 0.0
			switch w {
			case "dm":
				jobs = dmJobs(run, name, o.dm, 0, o.clients)
			case "group":
				jobs = groupJobs(run, name, o.groupJobs, o.groupSize, 0, o.clients)
			case "mega":
				jobs = groupJobs(run, name, 1, o.mega, 0, o.clients)
			case "mixed":
				jobs = mixedJobs(run+"-"+name, o.dm/2, o.groupJobs/2, o.groupSize, o.clients)
			case "latency":
				rate = o.latencyRate
				if rate == 0 {
					rate = b.dmJobsPerS / 2
				}
				if rate == 0 {
					return nil, errors.New("latency: no dm rate measured in this pass to take half of; run dm first or set -latency-rate")
				}
				jobs = dmJobs(run, name, max(1, int(rate*o.latencySeconds)), o.clients/3, o.clients)
			}
			res, err := b.workload(ctx, w, name, enqueuer, jobs, rate)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			emit(res)
			if !res.OK {
				failed = append(failed, db+" "+name+": "+strings.Join(res.Problems, ", "))
			}
		}
	}
	for _, d := range daemons {
		if err := d.Stop(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: pushd did not stop cleanly: %v (see %s)", db, err, d.LogPath))
		}
	}
	return failed, nil
}

// benchSchema empties the schema pushd_bench on the server dsn names and
// returns a DSN confined to it.
func benchSchema(ctx context.Context, dsn string) (string, error) {
	admin, err := storage.Open(ctx, storage.Config{Driver: "postgres", DSN: storage.DSN(dsn), MaxOpenConns: 1})
	if err != nil {
		return "", fmt.Errorf("PostgreSQL (make bench runs scripts/ensure-postgres.sh first): %w", err)
	}
	defer admin.Close()
	for _, q := range []string{"DROP SCHEMA IF EXISTS pushd_bench CASCADE", "CREATE SCHEMA pushd_bench"} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " search_path=pushd_bench", nil
	}
	q := u.Query()
	q.Set("search_path", "pushd_bench")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func seedRegistry(ctx context.Context, cfg storage.Config, clients int) error {
	db, err := storage.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	w := &world{clients: clients, minter: pushsim.NewMinter(seed)}
	last := time.Now()
	err = w.seed(ctx, db, func(done int) {
		if time.Since(last) > 5*time.Second {
			progress("seeded %d of %d clients", done, clients)
			last = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("seed registry: %w", err)
	}
	progress("seeded %d clients in %v", clients, time.Since(start).Round(time.Millisecond))
	return nil
}
