package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/pushd/pushd/internal/api"
	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/config"
	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/periodic"
	"github.com/pushd/pushd/internal/providertoken"
	"github.com/pushd/pushd/internal/stats"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/pushjob"
)

func configFlag(f *flag.FlagSet) *string {
	def := os.Getenv("PUSHD_CONFIG")
	if def == "" {
		def = "pushd.yaml"
	}
	return f.String("config", def, "configuration `file` (env PUSHD_CONFIG); see pushd.example.yaml")
}

// loadConfig loads the config file; a missing one says how to name
// another, or where to start one.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, os.Environ())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: pass --config FILE or set PUSHD_CONFIG; to start one, copy pushd.example.yaml", err)
	}
	return cfg, err
}

func serveCommand() command {
	return command{
		name:  "serve",
		args:  "[--config FILE]",
		short: "run the HTTP API and the push workers",
		long: `
Serve migrates the database, then runs the HTTP API and the Asynq workers
until SIGINT or SIGTERM, when it stops taking jobs and waits up to
worker.shutdown_timeout for the jobs in flight.`,
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer) error {
			path := configFlag(fs)
			return func(ctx context.Context, out io.Writer) error {
				cfg, err := loadConfig(*path)
				if err != nil {
					return err
				}
				// Credentials are read at start, so that a wrong path is an
				// operator's message now rather than failed pushes later.
				if err := cfg.CheckFiles(); err != nil {
					return err
				}
				log := slog.New(slog.NewTextHandler(os.Stderr, nil))
				app := fx.New(
					fx.Supply(cfg, log),
					fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
					fx.Provide(
						openDB, newCounters,
						installations.NewStore, installations.NewDeliveries, newDeliveryPruner,
						mute.NewStore, mute.NewPruner,
						newAPNs, newFCM, newPipeline, newRedis, newEnqueuer,
						newAPI,
					),
					fx.Invoke(startWorkers, startHTTP, startPprof, startPruners),
				)
				if err := app.Err(); err != nil {
					// fx wraps a constructor's error in the whole chain of
					// dependencies; the operator needs only the cause.
					return dig.RootCause(err)
				}
				startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := app.Start(startCtx); err != nil {
					return err
				}
				log.Info("pushd serving", "listen", cfg.Listen, "apps", len(cfg.Apps), "database", cfg.DatabaseDriver())
				select {
				case <-ctx.Done():
				case sig := <-app.Done():
					log.Info("signal", "signal", sig.String())
				}
				log.Info("pushd stopping: draining jobs in flight", "timeout", cfg.Worker.ShutdownTimeout)
				stopCtx, cancel2 := context.WithTimeout(context.Background(), cfg.Worker.ShutdownTimeout+10*time.Second)
				defer cancel2()
				return app.Stop(stopCtx)
			}
		},
	}
}

// openDatabase opens and migrates the configured database, for serve and
// migrate alike. Its errors name the config key to look at; a DSN is not
// repeated, since it may hold a password.
func openDatabase(ctx context.Context, cfg *config.Config) (*storage.DB, error) {
	where := "database.dsn (or PUSHD_DATABASE_DSN)"
	if cfg.DatabaseDriver() == config.DriverSQLite {
		where = "database.path " + cfg.Database.Path
	}
	db, err := storage.Open(ctx, storage.Config{Driver: cfg.DatabaseDriver(), Path: cfg.Database.Path, DSN: cfg.Database.DSN})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return db, nil
}

func openDB(lc fx.Lifecycle, cfg *config.Config) (*storage.DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(db.Close))
	return db, nil
}

func newCounters() *stats.Counters { return new(stats.Counters) }

func newAPNs(lc fx.Lifecycle, cfg *config.Config, log *slog.Logger) (*apns.Sender, error) {
	var apps []apns.AppConfig
	for _, a := range cfg.Apps {
		if a.APNs == nil {
			continue
		}
		apps = append(apps, apns.AppConfig{
			AppID: a.ID, KeyFile: a.APNs.KeyFile, KeyID: a.APNs.KeyID, TeamID: a.APNs.TeamID, Topic: a.APNs.Topic,
			Certificate:            apnsCert(a.APNs.Certificate),
			ProductionCertificate:  apnsCert(a.APNs.ProductionCertificate),
			DevelopmentCertificate: apnsCert(a.APNs.DevelopmentCertificate),
			ProductionURL:          a.APNs.ProductionURL, DevelopmentURL: a.APNs.DevelopmentURL, CAFile: a.APNs.CAFile,
		})
	}
	// The provider tokens of .p8 keys live in the Redis every process of
	// the deployment already shares for its jobs: Apple refuses a new
	// token for a key within 20 minutes of the last, so processes, and a
	// process after a restart, must present one token.
	rc, ok := redisOpt(cfg).MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redis: asynq's client is not a go-redis v9 client")
	}
	s, err := apns.New(apns.Config{Apps: apps, Logger: log, Tokens: providertoken.NewRedis(rc, "")})
	if err != nil {
		rc.Close()
		return nil, err
	}
	// Stop hooks run last in, first out: the workers' come later, so jobs
	// have drained before the Sender and then its store close.
	lc.Append(fx.StopHook(rc.Close))
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}

func apnsCert(c *config.Certificate) apns.Certificate {
	if c == nil {
		return apns.Certificate{}
	}
	return apns.Certificate{File: c.File, Password: c.Password}
}

func newFCM(lc fx.Lifecycle, cfg *config.Config, log *slog.Logger) (*fcm.Sender, error) {
	var apps []fcm.AppConfig
	for _, a := range cfg.Apps {
		if a.FCM == nil {
			continue
		}
		apps = append(apps, fcm.AppConfig{
			AppID: a.ID, CredentialsFile: a.FCM.CredentialsFile, ApplicationDefault: a.FCM.ApplicationDefault,
			ProjectID: a.FCM.ProjectID, Endpoint: a.FCM.Endpoint, CAFile: a.FCM.CAFile,
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := fcm.New(ctx, fcm.Config{Apps: apps})
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		// With application default credentials the project is found,
		// not configured: say which one pushes will go to.
		project, _ := s.Project(a.AppID)
		log.Info("fcm ready", "app", a.AppID, "project", project)
	}
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}

func newPipeline(cfg *config.Config, log *slog.Logger, ms *mute.Store, reg *installations.Store, del *installations.Deliveries,
	a *apns.Sender, f *fcm.Sender, c *stats.Counters) (*dispatch.Pipeline, error) {
	apps := make(map[string]dispatch.App, len(cfg.Apps))
	for _, app := range cfg.Apps {
		apps[app.ID] = dispatch.App{Defaults: app.Defaults}
	}
	// One bound on the pushes in flight for every provider: what a push
	// holds (goroutines, request, buffers) is the same whoever it goes to.
	fanout := dispatch.NewFanout(0, 0)
	return dispatch.New(dispatch.Config{
		Apps: apps, Mutes: ms, Registry: reg, Deliveries: del, Observer: c, Logger: log,
		Retry: dispatch.RetryPolicy{MaxWait: cfg.Worker.ThrottleMaxWait},
		// One line per provider: its Sender, under the name installations
		// carry.
		Senders: map[string]dispatch.Sender{
			string(installations.APNs): apns.NewBatchSender(a, apns.BatchConfig{Registry: reg, Logger: log, Fanout: fanout}),
			string(installations.FCM):  fcm.NewBatchSender(f, fanout),
		},
	})
}

func redisOpt(cfg *config.Config) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: cfg.Redis.Addr, DB: cfg.Redis.DB, Password: cfg.Redis.Password.Reveal()}
}

func newRedis(lc fx.Lifecycle, cfg *config.Config) *asynq.Client {
	c := asynq.NewClient(redisOpt(cfg))
	lc.Append(fx.StopHook(c.Close))
	return c
}

func newEnqueuer(c *asynq.Client) *pushjob.Enqueuer { return pushjob.NewEnqueuer(c) }

func startWorkers(lc fx.Lifecycle, cfg *config.Config, log *slog.Logger, p *dispatch.Pipeline, c *stats.Counters, rc *asynq.Client) {
	w := dispatch.NewWorker(p, log)
	w.Rejected = c.JobRejected
	// The client is closed after the workers stop: fx stops in reverse.
	w.Split = &dispatch.Splitter{Size: cfg.Worker.ChunkSize, Children: rc}
	// asynq's server takes jobs from Redis one at a time, in one loop: a
	// round trip (or one per queue it finds empty) before each job starts.
	// That loop, not the workers, bounded a busy pushd to about a thousand
	// short jobs a second, so pushd runs worker.dequeuers servers, which
	// share the workers and take jobs in parallel. Each idle server polls
	// that many times less often, so an idle pushd asks Redis as often as
	// one server would.
	n := cfg.Worker.DequeueLoops()
	servers := make([]*asynq.Server, n)
	for i := range servers {
		servers[i] = asynq.NewServer(redisOpt(cfg), asynq.Config{
			Concurrency:       cfg.Worker.Concurrency/n + btoi(i < cfg.Worker.Concurrency%n),
			Queues:            cfg.Worker.Queues,
			ShutdownTimeout:   cfg.Worker.ShutdownTimeout,
			TaskCheckInterval: cfg.Worker.TaskCheckInterval * time.Duration(n),
			RetryDelayFunc:    dispatch.RetryDelay,
			IsFailure:         dispatch.IsFailure,
			Logger:            asynqLogger{log},
			LogLevel:          asynq.WarnLevel,
			ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
				var re *dispatch.RetryError
				if errors.As(err, &re) {
					return // the worker logged the attempt's outcomes
				}
				id, _ := asynq.GetTaskID(ctx)
				log.Warn("job failed", "task_id", id, "type", t.Type(), "err", err)
			}),
		})
	}
	// A task of another type was put on pushd's queues by mistake: archive
	// it at once, as asynq's ServeMux would retry it for days.
	mux := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != pushjob.TaskType {
			c.JobRejected("unknown_task_type")
			return fmt.Errorf("%w: pushd runs only %s tasks, not %q", asynq.SkipRetry, pushjob.TaskType, t.Type())
		}
		return w.ProcessTask(ctx, t)
	})
	// A line per job is debug; the log tells what the workers did once a
	// minute.
	summary := periodic.New(summaryInterval, func(context.Context) { w.LogSummary() })
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			for i, srv := range servers {
				if err := srv.Start(mux); err != nil {
					for _, started := range servers[:i] {
						started.Shutdown()
					}
					return err
				}
			}
			summary.Start()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			// Shutdown stops fetching and waits for jobs in flight,
			// every server at once; then the last summary tells what
			// they did.
			var wg sync.WaitGroup
			for _, srv := range servers {
				wg.Go(srv.Shutdown)
			}
			wg.Wait()
			err := summary.Stop(ctx)
			w.LogSummary()
			return err
		},
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// summaryInterval is how often the workers' summary is logged.
const summaryInterval = time.Minute

func newAPI(cfg *config.Config, log *slog.Logger, reg *installations.Store, ms *mute.Store, enq *pushjob.Enqueuer,
	del *installations.Deliveries, db *storage.DB, rc *asynq.Client) (*api.Handler, error) {
	apps := make([]string, len(cfg.Apps))
	for i, a := range cfg.Apps {
		apps[i] = a.ID
	}
	return api.New(api.Config{
		Tokens: cfg.APITokens, Apps: apps, Installations: reg, Mutes: ms, Enqueuer: enq, Traces: del, Logger: log,
		Ready: []api.Check{
			{Name: "database", Check: db.PingContext},
			{Name: "redis", Check: func(ctx context.Context) error { return pingWithin(ctx, rc.Ping) }},
		},
	})
}

// pingWithin runs ping, which takes no context (asynq's Client.Ping), and
// gives up when ctx ends, so that /readyz answers within its budget when
// Redis hangs. A ping given up on finishes in the background, bounded by
// the Redis client's own dial and read timeouts.
func pingWithin(ctx context.Context, ping func() error) error {
	done := make(chan error, 1) // the ping never blocks on a caller gone
	go func() { done <- ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HTTP server timeouts. Reading a whole request, the largest job (4 MiB)
// included, and writing the answer each take well under 30 s from a
// client on a working network; a client slower than that holds a
// connection and a goroutine for nothing.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

func newHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}
}

func startHTTP(lc fx.Lifecycle, cfg *config.Config, log *slog.Logger, h *api.Handler, c *stats.Counters) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.Handler())
	mux.Handle("/", h)
	srv := newHTTPServer(cfg.Listen, mux)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", cfg.Listen, err)
			}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("http", "err", err)
				}
			}()
			return nil
		},
		OnStop: srv.Shutdown,
	})
}

// pprofMux serves Go's profiler, as net/http/pprof registers it on the
// default mux, which pushd does not use.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves the profiler on pprof_listen, a loopback address apart
// from the API, when one is configured. A CPU profile takes 30 s by
// default: the server has no write timeout.
func startPprof(lc fx.Lifecycle, cfg *config.Config, log *slog.Logger) {
	if cfg.PprofListen == "" {
		return
	}
	srv := &http.Server{Addr: cfg.PprofListen, Handler: pprofMux(), ReadHeaderTimeout: readHeaderTimeout}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", cfg.PprofListen)
			if err != nil {
				return fmt.Errorf("pprof_listen %s: %w", cfg.PprofListen, err)
			}
			log.Info("pprof serving", "listen", ln.Addr().String())
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("pprof", "err", err)
				}
			}()
			return nil
		},
		OnStop: srv.Shutdown,
	})
}

// newDeliveryPruner prunes delivery records past the configured
// retention, which config has checked outlives any job.
func newDeliveryPruner(cfg *config.Config, d *installations.Deliveries, log *slog.Logger) *installations.DeliveryPruner {
	return installations.NewDeliveryPruner(d, cfg.Database.DeliveryRetention, log)
}

// startPruners deletes delivery records past their retention and mutes
// that ended while pushd serves.
func startPruners(lc fx.Lifecycle, deliveries *installations.DeliveryPruner, mutes *mute.Pruner) {
	lc.Append(fx.StartStopHook(deliveries.Start, deliveries.Stop))
	lc.Append(fx.StartStopHook(mutes.Start, mutes.Stop))
}

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)); os.Exit(1) }
