// Bench measures pushd as a user would run it: pushsim, Redis and `pushd
// serve` as separate processes on this machine, a seeded registry, jobs
// enqueued through the HTTP API (or the Go pushjob enqueuer), and every
// expected push counted at pushsim. It prints one JSON line per reference
// and per workload and database, with pushd's figures as ratios to the
// bare apns2 client measured in the same run, and exits non-zero when any
// workload lost, duplicated or misclassified a push.
//
// Run it with `make bench` (full sizes, several minutes) or `make
// bench-check` (small sizes, for correctness).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pushd/pushd/pushjob"
)

const (
	appID   = "bench"
	topic   = "com.example.chat"
	project = "pushsim-bench"
	seed    = "bench"
)

type options struct {
	sizes
	dbs, workloads, enqueuers []string
	procs                     int
	pgDSN                     string
	work                      string
	h2load                    bool
	concurrency               int
	profileSeconds            int
}

func main() {
	var o options
	var dbs, workloads, enqueuers string
	small := flag.Bool("small", false, "small sizes, for checking correctness (CI): 4 000 clients, 2 000 dm jobs, 20×100 group, mega 3 000")
	flag.StringVar(&dbs, "db", "sqlite,postgres", "`databases` to run pushd on, in order: sqlite, postgres")
	flag.StringVar(&workloads, "workloads", "dm,group,mega,mixed,latency", "`workloads` to run, in order")
	flag.StringVar(&enqueuers, "enqueue", "api", "how jobs are enqueued: api (POST /v1/push), go (pushjob.Enqueuer), or both as api,go")
	flag.IntVar(&o.clients, "clients", 100_000, "`clients` in the registry, each with 1 to 3 devices")
	flag.IntVar(&o.dm, "dm", 100_000, "`jobs` of one recipient in dm")
	flag.IntVar(&o.groupJobs, "group-jobs", 1000, "`jobs` in group")
	flag.IntVar(&o.groupSize, "group-size", 200, "`recipients` per group job")
	flag.IntVar(&o.mega, "mega", 100_000, "`recipients` of mega's one job (at most -clients and pushjob.MaxRecipients)")
	flag.Float64Var(&o.latencySeconds, "latency-seconds", 20, "`seconds` latency enqueues for")
	flag.Float64Var(&o.latencyRate, "latency-rate", 0, "jobs per `second` in latency; 0 is half of dm's measured rate")
	flag.IntVar(&o.references, "references", 200_000, "`pushes` per reference run (pushsim load, h2load); 0 skips them")
	flag.BoolVar(&o.h2load, "h2load", true, "run h2load as a reference too (installs nghttp2-client when missing)")
	flag.IntVar(&o.procs, "procs", 1, "pushd `processes` sharing Redis and the database (more than one needs postgres)")
	flag.IntVar(&o.concurrency, "concurrency", 0, "worker.concurrency of each pushd; 0 keeps pushd's default")
	flag.IntVar(&o.profileSeconds, "profile", 0, "take a CPU profile of pushd over the first `seconds` of each workload, into WORK/profiles/DB-WORKLOAD.pprof (go tool pprof reads it)")
	flag.StringVar(&o.pgDSN, "postgres-dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL `dsn`; the run uses its own schema, pushd_bench")
	flag.StringVar(&o.work, "work", "data/bench", "`directory` for binaries, state and logs (emptied first)")
	flag.Parse()
	if *small {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"clients": "4000", "dm": "2000", "group-jobs": "20", "group-size": "100", "mega": "3000",
			"latency-seconds": "3", "references": "20000"} {
			if !set[name] {
				flag.Set(name, v)
			}
		}
	}
	o.dbs, o.workloads, o.enqueuers = split(dbs), split(workloads), split(enqueuers)
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o *options) check() error {
	for _, d := range o.dbs {
		if d != "sqlite" && d != "postgres" {
			return fmt.Errorf("-db %q: want sqlite or postgres", d)
		}
		if d == "sqlite" && o.procs > 1 {
			return fmt.Errorf("-procs %d: several pushd processes need -db postgres (SQLite is one process's file)", o.procs)
		}
	}
	known := map[string]bool{"dm": true, "group": true, "mega": true, "mixed": true, "latency": true}
	for _, w := range o.workloads {
		if !known[w] {
			return fmt.Errorf("-workloads %q: want dm, group, mega, mixed or latency", w)
		}
	}
	for _, e := range o.enqueuers {
		if e != "api" && e != "go" {
			return fmt.Errorf("-enqueue %q: want api or go", e)
		}
	}
	switch {
	case len(o.dbs) == 0 || len(o.workloads) == 0 || len(o.enqueuers) == 0:
		return fmt.Errorf("-db, -workloads and -enqueue must each name at least one")
	case o.clients < 2:
		return fmt.Errorf("-clients %d: want at least 2", o.clients)
	case o.mega > o.clients:
		return fmt.Errorf("-mega %d: at most -clients (%d), since a job names each recipient once", o.mega, o.clients)
	case o.mega > pushjob.MaxRecipients:
		return fmt.Errorf("-mega %d: at most %d, the most recipients a job may name", o.mega, pushjob.MaxRecipients)
	case o.dm < 1 || o.groupJobs < 1 || o.groupSize < 1 || o.mega < 1:
		return fmt.Errorf("-dm, -group-jobs, -group-size and -mega must be at least 1")
	case o.procs < 1:
		return fmt.Errorf("-procs %d: want at least 1", o.procs)
	case o.latencySeconds <= 0:
		return fmt.Errorf("-latency-seconds %v: want more than 0", o.latencySeconds)
	}
	return nil
}

// machine is the first line: what the figures were measured on.
type machine struct {
	Kind    string `json:"kind"`
	Date    string `json:"date"`
	Cores   int    `json:"cores"`
	CPU     string `json:"cpu"`
	Go      string `json:"go"`
	Clients int    `json:"clients"`
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return ""
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
