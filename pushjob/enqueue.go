package pushjob

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
)

// ErrDuplicate means the message was already enqueued, and is queued,
// running, or finished less than Retention ago.
var ErrDuplicate = errors.New("pushjob: message already enqueued")

// Enqueuer enqueues jobs through an asynq client. It is safe for
// concurrent use, as the client is.
type Enqueuer struct {
	c *asynq.Client
}

// NewEnqueuer returns an Enqueuer that uses c. The caller keeps ownership
// of c and closes it.
func NewEnqueuer(c *asynq.Client) *Enqueuer {
	return &Enqueuer{c: c}
}

// Enqueue validates j and enqueues it as NewTask describes, returning the
// task id. An invalid job yields a *ValidationError and nothing is
// enqueued. A message already enqueued yields an error that matches
// ErrDuplicate, with the id of the task that holds the message, so that
// a caller retrying after a lost reply can treat it as success.
func (e *Enqueuer) Enqueue(ctx context.Context, j Job) (taskID string, err error) {
	t, err := NewTask(j)
	if err != nil {
		return "", err
	}
	id := TaskID(j.AppID, j.MessageID)
	info, err := e.c.EnqueueContext(ctx, t)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		return id, fmt.Errorf("%w: task %s", ErrDuplicate, id)
	case err != nil:
		return "", fmt.Errorf("pushjob: enqueue task %s: %w", id, err)
	}
	return info.ID, nil
}
