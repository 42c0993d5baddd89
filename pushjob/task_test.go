package pushjob_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/pushjob"
)

func TestPriorityQueue(t *testing.T) {
	for p, want := range map[pushjob.Priority]string{
		pushjob.PriorityHigh:   pushjob.QueueHigh,
		pushjob.PriorityNormal: pushjob.QueueNormal,
		pushjob.PriorityLow:    pushjob.QueueLow,
		"":                     pushjob.QueueNormal,
	} {
		if got := p.Queue(); got != want {
			t.Errorf("Priority(%q).Queue() = %q, want %q", p, got, want)
		}
	}
}

func TestQueues(t *testing.T) {
	want := map[string]int{"push-high": 6, "push-normal": 3, "push-low": 1}
	q := pushjob.Queues()
	if !maps.Equal(q, want) {
		t.Fatalf("Queues() = %v, want %v", q, want)
	}
	q["push-high"] = 100 // a caller tuning its copy changes nobody else's
	if got := pushjob.Queues(); !maps.Equal(got, want) {
		t.Errorf("Queues() after a caller changed its map = %v", got)
	}
}

func TestTaskID(t *testing.T) {
	tests := []struct {
		app, msg, want string
	}{
		{"", "m1", "push:default:m1"},
		{"default", "m1", "push:default:m1"},
		{"chat-app_1.0", "0b5e7c1a-6d3f-4a0e-9b1e-2f4c8d9e0a1b", "push:chat-app_1.0:0b5e7c1a-6d3f-4a0e-9b1e-2f4c8d9e0a1b"},
		{"app", "a:b", "push:app:a%3Ab"},
		{"app", "100%", "push:app:100%25"},
		{"app", "a/b c~", "push:app:a%2Fb%20c%7E"},
		{"app", "消", "push:app:%E6%B6%88"},
		{"a:b", "c", "push:a%3Ab:c"},
		{"app", strings.Repeat("x", 128), "push:app:" + strings.Repeat("x", 128)},
	}
	for _, tt := range tests {
		if got := pushjob.TaskID(tt.app, tt.msg); got != tt.want {
			t.Errorf("TaskID(%q, %q) = %q, want %q", tt.app, tt.msg, got, tt.want)
		}
	}

	// Long ids are hashed, so task ids stay short, and stay distinct.
	long1 := pushjob.TaskID("app", strings.Repeat("x", 129))
	long2 := pushjob.TaskID("app", strings.Repeat("x", 130))
	for _, id := range []string{long1, long2} {
		part := strings.TrimPrefix(id, "push:app:~")
		if len(part) != 64 || strings.Trim(part, "0123456789abcdef") != "" {
			t.Errorf("long id -> %q, want push:app:~ and 64 hex digits", id)
		}
	}
	if long1 == long2 {
		t.Errorf("two long ids share task id %q", long1)
	}
	// 43 three-byte runes escape to 387 bytes: hashed too.
	if id := pushjob.TaskID("app", strings.Repeat("消", 43)); !strings.HasPrefix(id, "push:app:~") {
		t.Errorf("escaped past the limit: %q", id)
	}

	// Escaping keeps the parts apart: no two (app, message) pairs collide.
	pairs := [][2]string{{"a", "b:c"}, {"a:b", "c"}, {"a", "b%3Ac"}, {"a", "b:c "}, {"", "x"}, {"x", ""}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		id := pushjob.TaskID(p[0], p[1])
		if q, ok := seen[id]; ok {
			t.Errorf("TaskID(%q) == TaskID(%q) == %q", p, q, id)
		}
		seen[id] = p
	}
}

func TestNewTask(t *testing.T) {
	in := validJob()
	in.Recipients = []string{"bob"}
	task, err := pushjob.NewTask(in)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != pushjob.TaskType {
		t.Errorf("Type() = %q, want %q", task.Type(), pushjob.TaskType)
	}
	got, err := pushjob.Decode(task.Payload())
	if err != nil {
		t.Fatalf("payload %s does not decode: %v", task.Payload(), err)
	}
	// The payload is normalized, so the worker counts TTL from the time
	// the job was made.
	if got.AppID != pushjob.DefaultApp || got.Priority != pushjob.PriorityNormal || got.Timestamp.IsZero() {
		t.Errorf("payload not normalized: %s", task.Payload())
	}
	if got.MessageID != "m1" || got.ConversationID != "c1" || len(got.Recipients) != 1 {
		t.Errorf("payload = %s", task.Payload())
	}
	if in.AppID != "" || !in.Timestamp.IsZero() {
		t.Errorf("NewTask changed the caller's job: %+v", in)
	}
}

func TestNewTaskInvalid(t *testing.T) {
	in := validJob()
	in.ConversationID = ""
	task, err := pushjob.NewTask(in)
	var ve *pushjob.ValidationError
	if task != nil || !errors.As(err, &ve) || ve.Fields[0].Field != "conversation_id" {
		t.Fatalf("NewTask = %v, %v; want nil and a *ValidationError for conversation_id", task, err)
	}
}

// Redis that does not answer is an error for the caller to retry, not a
// duplicate. Port 1 on loopback refuses at once; this needs no Redis.
func TestEnqueueUnreachable(t *testing.T) {
	c := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	id, err := pushjob.NewEnqueuer(c).Enqueue(ctx, validJob())
	if err == nil || errors.Is(err, pushjob.ErrDuplicate) {
		t.Fatalf("Enqueue = %q, %v; want a connection error", id, err)
	}
	if id != "" || !strings.HasPrefix(err.Error(), "pushjob: enqueue task push:default:m1: ") {
		t.Errorf("Enqueue = %q, %q; want no id and the task named", id, err)
	}
}
