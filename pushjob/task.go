package pushjob

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// The queues jobs go to, by priority.
const (
	QueueHigh   = "push-high"
	QueueNormal = "push-normal"
	QueueLow    = "push-low"
)

// Queues returns the queues of all priorities with their default weights,
// for asynq.Config.Queues: a worker takes high-priority jobs six times as
// often as low ones, yet never starves the low queue.
func Queues() map[string]int {
	return map[string]int{QueueHigh: 6, QueueNormal: 3, QueueLow: 1}
}

// Queue returns the queue of jobs with priority p. An empty or unknown
// priority is normal.
func (p Priority) Queue() string {
	switch p {
	case PriorityHigh:
		return QueueHigh
	case PriorityLow:
		return QueueLow
	}
	return QueueNormal
}

// Options NewTask gives every task.
const (
	// MaxRetry is how many times a job is retried after transient
	// failures; with the worker's backoff that covers hours of provider
	// trouble.
	MaxRetry = 12
	// Timeout bounds one attempt of a job. pushd splits a job larger than
	// its chunk size into child jobs, each with its own attempts, so no
	// attempt sends to more than a chunk's devices.
	Timeout = 2 * time.Minute
	// Retention is how long a finished task is kept, and so how long its
	// message id stays taken: the same message enqueued again within it
	// is refused with ErrDuplicate.
	Retention = 24 * time.Hour
)

// maxIDPart is the longest escaped app or message id that TaskID keeps
// readable; longer ones are hashed so task ids stay short.
const maxIDPart = 128

// TaskID returns the asynq task id of a message: "push:", the app id, ":"
// and the message id, each escaped so that the id can be split on ':' and
// two messages never share an id. Bytes other than [A-Za-z0-9_.-] become
// %XX ("a:b" → "a%3Ab"); a part that would still be longer than 128 bytes
// becomes "~" and its SHA-256 in hex, which escaping never produces. An
// empty appID is DefaultApp, as after Normalize.
//
// asynq refuses a task whose id is already taken in the same queue, which
// is what makes a message enqueued twice fail with ErrDuplicate. The check
// is per queue: the same message with another priority is not refused, and
// the worker's per-device record is what keeps it from being pushed twice.
func TaskID(appID, messageID string) string {
	if appID == "" {
		appID = DefaultApp
	}
	return "push:" + idPart(appID) + ":" + idPart(messageID)
}

// ChildTaskID returns the task id of the child job n (from 0) of a
// message split by pushd: TaskID(appID, messageID), ":" and n. A parent
// retried after it enqueued some of its children meets their ids taken and
// does not enqueue them twice.
func ChildTaskID(appID, messageID string, n int) string {
	return TaskID(appID, messageID) + ":" + strconv.Itoa(n)
}

func idPart(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if idByte(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xF])
		}
		if b.Len() > maxIDPart {
			sum := sha256.Sum256([]byte(s))
			return "~" + hex.EncodeToString(sum[:])
		}
	}
	return b.String()
}

// NewTask returns the asynq task that carries j: it normalizes a copy of
// j, validates it (returning a *ValidationError), and sets the queue by
// priority, TaskID, Retention, MaxRetry and Timeout. opts come after these
// and so override them.
//
// NewTask sets no asynq.Deadline at the job's expiry, on purpose: asynq
// never hands a task past its deadline to the handler but fails it with
// context.DeadlineExceeded, retries it MaxRetry times to no avail and
// archives it, so the worker could not record it as expired, asynqmon
// would show a failure where nothing failed, and a deadline falling in the
// middle of a send would cancel it before the devices that accepted the
// push were recorded. The worker checks Job.Expiry when it starts instead,
// and providers get the expiry with each push.
func NewTask(j Job, opts ...asynq.Option) (*asynq.Task, error) {
	j.Normalize()
	if err := j.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("pushjob: encode job %q: %w", j.MessageID, err)
	}
	o := []asynq.Option{
		asynq.Queue(j.Priority.Queue()),
		asynq.TaskID(TaskID(j.AppID, j.MessageID)),
		asynq.Retention(Retention),
		asynq.MaxRetry(MaxRetry),
		asynq.Timeout(Timeout),
	}
	return asynq.NewTask(TaskType, payload, append(o, opts...)...), nil
}
