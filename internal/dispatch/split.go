package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/pushjob"
)

// TaskEnqueuer enqueues the child jobs of a split job; *asynq.Client is
// one.
type TaskEnqueuer interface {
	EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Splitter turns a job with more recipients than Size into child jobs of
// at most Size recipients each, so that the workers of every pushd process
// share a big group's work instead of one worker sending it all.
type Splitter struct {
	// Size is the most recipients a job is processed with; a larger one is
	// split.
	Size int
	// Children enqueues the child jobs.
	Children TaskEnqueuer
}

// splits reports whether job is split rather than processed.
func (s *Splitter) splits(job pushjob.Job) bool {
	return s != nil && s.Size > 0 && len(job.Recipients) > s.Size
}

// split enqueues job's child jobs to queue and reports how many it
// enqueued now; the others an earlier attempt of the parent enqueued.
//
// A child is the job with a run of the recipients and the mentions among
// them; it keeps the message id, so the record, the trace and the counts
// of the message read as one, and each child keeps its own retries. Its
// task id is pushjob.ChildTaskID, so a parent retried after enqueueing
// some children (Redis went away in the middle) meets their ids taken and
// enqueues only the rest. Children carry the parent's timestamp, so their
// TTL and retry bounds run from the message (or, for a parent enqueued
// without one, from its split, which its first attempt does).
func (s *Splitter) split(ctx context.Context, job pushjob.Job, queue string) (enqueued int, err error) {
	var mentioned map[string]bool
	if len(job.Mentions) > 0 {
		mentioned = make(map[string]bool, len(job.Mentions))
		for _, m := range job.Mentions {
			mentioned[m] = true
		}
	}
	for n, from := 0, 0; from < len(job.Recipients); n, from = n+1, from+s.Size {
		child := job
		child.Recipients = job.Recipients[from:min(from+s.Size, len(job.Recipients))]
		child.Mentions = nil
		for _, r := range child.Recipients {
			if mentioned[r] {
				child.Mentions = append(child.Mentions, r)
			}
		}
		id := pushjob.ChildTaskID(job.AppID, job.MessageID, n)
		t, err := pushjob.NewTask(child, asynq.Queue(queue), asynq.TaskID(id))
		if err != nil {
			return enqueued, fmt.Errorf("dispatch: split %s: child %d: %w", job.MessageID, n, err)
		}
		_, err = s.Children.EnqueueContext(ctx, t)
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
			// An earlier attempt of this parent enqueued it.
		case err != nil:
			return enqueued, fmt.Errorf("dispatch: split %s: enqueue child %d: %w", job.MessageID, n, err)
		default:
			enqueued++
		}
	}
	return enqueued, nil
}
