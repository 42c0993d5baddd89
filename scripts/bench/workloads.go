package main

import "fmt"

// sizes are a run's workload sizes (flags).
type sizes struct {
	clients              int
	dm                   int
	groupJobs, groupSize int
	mega                 int
	latencySeconds       float64
	latencyRate          float64 // jobs/s; 0 is half of dm's measured rate
	references           int     // pushes per reference run
}

// dmJobs are n one-recipient jobs, each to the next client from first.
func dmJobs(run, name string, n, first, clients int) []benchJob {
	jobs := make([]benchJob, n)
	for i := range jobs {
		c := (first + i) % clients
		jobs[i] = benchJob{id: fmt.Sprintf("%s-%s-%d", run, name, i), conv: fmt.Sprintf("dm-%s-%d", name, c), recipients: []int{c}}
	}
	return jobs
}

// groupJobs are n jobs of size recipients each, consecutive clients from
// first, so that a client is in as few of a workload's jobs as the sizes
// allow (the receipts then time each of its pushes).
func groupJobs(run, name string, n, size, first, clients int) []benchJob {
	jobs := make([]benchJob, n)
	for j := range jobs {
		rs := make([]int, size)
		for r := range rs {
			rs[r] = (first + j*size + r) % clients
		}
		jobs[j] = benchJob{id: fmt.Sprintf("%s-%s-%d", run, name, j), conv: fmt.Sprintf("g-%s-%d", name, j), recipients: rs}
	}
	return jobs
}

// mixedJobs interleaves dm jobs to one half of the clients with group
// jobs to the other half, as chat traffic arrives.
func mixedJobs(run string, dm, groups, size, clients int) []benchJob {
	half := clients / 2
	d := dmJobs(run, "mixed-dm", dm, 0, max(half, 1))
	g := groupJobs(run, "mixed-group", groups, size, half, clients)
	out := make([]benchJob, 0, len(d)+len(g))
	every := max(1, len(d)/max(1, len(g)))
	for i, j := range d {
		out = append(out, j)
		if i%every == every-1 && len(g) > 0 {
			out, g = append(out, g[0]), g[1:]
		}
	}
	return append(out, g...)
}
