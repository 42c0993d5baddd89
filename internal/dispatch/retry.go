package dispatch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/outcome"
)

// RetryPolicy is the one retry policy for every provider.
//
// A device whose answer was transient is retried with the job, after the
// provider's Retry-After or an exponential backoff with jitter, and each
// such attempt spends one of the job's retries (asynq's MaxRetry). When
// every device left was throttled (APNs 429, FCM QUOTA_EXCEEDED), waiting
// is the cure: the retry waits the Retry-After but at least ThrottleFloor,
// and spends no budget; it is still bounded, for a job the provider keeps
// throttling past its expiry ends with those devices failed, reason
// throttled. No retry of any kind is made past MaxWait after the job's
// message: the delivery records that keep a device from getting a message
// twice must outlive the job (config checks its retention against it). No
// answer produces a hot loop.
type RetryPolicy struct {
	// ThrottleFloor is the least wait after throttling; zero is a minute.
	ThrottleFloor time.Duration
	// MaxWait bounds how long after its message a job may still be
	// retried for throttling; zero is 24 hours.
	MaxWait time.Duration
}

// The policy's defaults.
const (
	DefaultThrottleFloor = time.Minute
	DefaultMaxWait       = 24 * time.Hour
)

func (r RetryPolicy) withDefaults() RetryPolicy {
	if r.ThrottleFloor <= 0 {
		r.ThrottleFloor = DefaultThrottleFloor
	}
	if r.MaxWait <= 0 {
		r.MaxWait = DefaultMaxWait
	}
	return r
}

// Why a device failed (Observer's why, and the start of its reason).
const (
	whyThrottled        = "throttled"
	whyRetriesExhausted = "retries_exhausted"
)

// decide sets when a's devices left to retry are retried, or says to give
// up on them, and why.
func (r RetryPolicy) decide(a *attempt) (giveUp bool, why string) {
	var after time.Duration
	left, throttled := 0, 0
	for i := range a.pending {
		res := a.results[i]
		if res.Outcome != outcome.Retrying {
			continue
		}
		left++
		if res.Throttled {
			throttled++
		}
		after = max(after, res.RetryAfter)
	}
	if left == 0 {
		return false, ""
	}
	if throttled > 0 {
		// A throttled device is not asked again within the floor, even
		// beside others that only met a transient failure.
		after = max(after, r.ThrottleFloor)
	}
	why = whyRetriesExhausted
	if throttled == left {
		why = whyThrottled
	}
	next := a.now.Add(after)
	if exp := a.job.Expiry(); throttled == left && !exp.IsZero() && !next.Before(exp) {
		return true, why
	}
	// However long the providers ask to wait, a job ends MaxWait after
	// its message: its delivery records must outlive it.
	if !a.job.Timestamp.IsZero() && next.After(a.job.Timestamp.Add(r.MaxWait)) {
		return true, why
	}
	if throttled == left {
		a.retryAfter, a.throttled = after, true
		return false, ""
	}
	if a.last {
		return true, why
	}
	a.retryAfter = after
	return false, ""
}

// RetryError asks asynq to run the job again for the devices that have not
// accepted the message yet.
type RetryError struct {
	Pending int
	// After is how long to wait, by the policy: the providers'
	// Retry-After, or the throttling floor.
	After time.Duration
	// Throttled means every pending device met a rate limit: waiting is
	// the cure, so the attempt does not count against the retry budget.
	Throttled bool
}

func (e *RetryError) Error() string {
	s := fmt.Sprintf("dispatch: %d devices to retry", e.Pending)
	if e.Throttled {
		s += " (throttled)"
	}
	if e.After > 0 {
		s += fmt.Sprintf(" after %v", e.After)
	}
	return s
}

// IsFailure tells asynq whether an error spends the retry budget:
// throttling does not.
func IsFailure(err error) bool {
	var re *RetryError
	if errors.As(err, &re) && re.Throttled {
		return false
	}
	return true
}

// RetryDelay is asynq's RetryDelayFunc: the policy's wait when the attempt
// set one, and otherwise an exponential backoff from one second to five
// minutes, plus up to half again of jitter so that many workers do not
// return at once.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var re *RetryError
	if errors.As(err, &re) && re.After > 0 {
		return re.After
	}
	d := min(time.Second<<min(n, 9), 5*time.Minute)
	return d + rand.N(d/2+1)
}
