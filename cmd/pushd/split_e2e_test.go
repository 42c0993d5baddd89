package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/pushd/pushd/internal/pushsim/pushsimtest"
	"github.com/pushd/pushd/pushjob"
)

// A group larger than worker.chunk_size, posted as one message, reaches
// every device once through child jobs, and reads as one message in its
// trace and in the counts.
func TestBigGroupSplitIntoChildJobs(t *testing.T) {
	needRedis(t)
	t.Setenv("PUSHD_WORKER_CHUNK_SIZE", "100")
	sim := pushsimtest.Start(t, pushsim.Config{})
	e := startPushd(t, sim, fmt.Sprintf("{driver: sqlite, path: %q}", filepath.Join(t.TempDir(), "pushd.db")))
	m := sim.Minter()
	var recipients, tokens []string
	for i := range 250 {
		client := fmt.Sprintf("member-%03d", i)
		recipients = append(recipients, client)
		var tok string
		if i%3 == 0 {
			tok = m.FCM(pushsim.FateValid, e2eProject, uint64(i))
			e.register("dev-"+client, client, "fcm", tok, "")
		} else {
			tok = m.APNs(pushsim.FateValid, pushsim.Production, e2eTopic, uint64(i))
			e.register("dev-"+client, client, "apns", tok, "production")
		}
		tokens = append(tokens, tok)
	}
	job := map[string]any{"message_id": "big-1", "conversation_id": "all-hands", "recipients": recipients}
	if st := e.call("POST", "/v1/push", job, nil); st != 202 {
		t.Fatalf("push: %d", st)
	}
	got := e.waitTrace("big-1", 250)
	for _, c := range recipients {
		if got[c+"/dev-"+c] != "delivered" {
			t.Errorf("trace %s: %q, want delivered", c, got[c+"/dev-"+c])
		}
	}
	for i, tok := range tokens {
		if rc, ok := sim.Receipt(tok); !ok || rc.Count != 1 {
			t.Errorf("device %d: receipt %+v %v, want exactly one push", i, rc, ok)
		}
	}
	var metrics string
	e.call("GET", "/metrics", nil, &metrics)
	if !strings.Contains(metrics, `pushd_pushes_total{app="default",outcome="delivered",reason=""} 250`) {
		t.Errorf("metrics do not count 250 delivered:\n%s", metrics)
	}
	// It went as three child jobs, which asynq keeps (completed) under
	// their own task ids, and no more.
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redisAddr(), DB: e2eRedisDB})
	defer insp.Close()
	for n := range 4 {
		info, err := insp.GetTaskInfo(pushjob.QueueNormal, pushjob.ChildTaskID("default", "big-1", n))
		switch {
		case n < 3 && (err != nil || info.State != asynq.TaskStateCompleted):
			t.Errorf("child job %d: %+v %v, want a completed task", n, info, err)
		case n == 3 && err == nil:
			t.Errorf("a fourth child job: %+v", info)
		}
	}
	// The same message again is refused, children and all.
	if st := e.call("POST", "/v1/push", job, nil); st != 409 {
		t.Errorf("the message enqueued again: %d, want 409", st)
	}
}
