package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/testenv"
	"github.com/pushd/pushd/pushjob"
)

// redisDB is the Redis database this package's tests own and flush.
const redisDB = 8

// A job larger than the chunk is not sent by the worker that took it: it
// becomes child jobs in its queue, each a run of the recipients with the
// mentions among them, which any worker then sends. A parent retried after
// enqueueing its children enqueues none again, and the message's record
// reads as one.
func TestWorkerSplitsBigJob(t *testing.T) {
	testenv.Redis(t, redisDB)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(), DB: redisDB}
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()

	w := newWorld(t)
	var recipients []string
	tokens := map[string]string{}
	for i := range 250 {
		c := fmt.Sprintf("user-%03d", i)
		recipients = append(recipients, c)
		tokens[c] = w.iphone("iphone-"+c, c, installations.Production, i+1)
	}
	// user-230 muted the chat but lets mentions through: only the last
	// child, which holds it, may carry the mention.
	w.mute("user-230", "big-chat", true)
	wk, rej := newWorker(w)
	wk.Split = &dispatch.Splitter{Size: 100, Children: client}

	job := pushjob.Job{MessageID: "m-big", ConversationID: "big-chat", Recipients: recipients, Mentions: []string{"user-230", "user-999"}, Priority: pushjob.PriorityHigh}
	parent, err := pushjob.NewTask(job)
	if err != nil {
		t.Fatal(err)
	}
	if job, err = pushjob.Decode(parent.Payload()); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		if err := wk.ProcessTask(context.Background(), parent); err != nil {
			t.Fatalf("parent, attempt %d: %v", attempt+1, err)
		}
	}
	if n := w.apns.count(); n != 0 {
		t.Fatalf("the parent sent %d pushes itself", n)
	}
	children, err := insp.ListPendingTasks(pushjob.QueueHigh)
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 3 {
		t.Fatalf("%d child jobs in %s after two attempts of the parent, want 3", len(children), pushjob.QueueHigh)
	}
	slices.SortFunc(children, func(a, b *asynq.TaskInfo) int { return cmpString(a.ID, b.ID) })
	var got []string
	for n, c := range children {
		if want := pushjob.ChildTaskID("default", "m-big", n); c.ID != want {
			t.Errorf("child %d: task id %q, want %q", n, c.ID, want)
		}
		cj, err := pushjob.Decode(c.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if cj.MessageID != "m-big" || len(cj.Recipients) > 100 || !cj.Timestamp.Equal(job.Timestamp) {
			t.Errorf("child %d: %+v", n, cj)
		}
		wantMentions := []string(nil)
		if n == 2 {
			wantMentions = []string{"user-230"}
		}
		if !slices.Equal(cj.Mentions, wantMentions) {
			t.Errorf("child %d mentions %v, want %v", n, cj.Mentions, wantMentions)
		}
		got = append(got, cj.Recipients...)
		if err := wk.ProcessTask(context.Background(), asynq.NewTask(c.Type, c.Payload)); err != nil {
			t.Fatalf("child %d: %v", n, err)
		}
	}
	if !slices.Equal(got, recipients) {
		t.Errorf("the children's recipients are not the parent's, in order")
	}
	for c, tok := range tokens {
		if n := len(w.apns.to(tok)); n != 1 {
			t.Errorf("%s: %d pushes, want 1", c, n)
		}
	}
	tr := w.trace("m-big")
	if len(tr) != 250 || tr["user-230/iphone-user-230"] != "delivered" || tr["user-000/iphone-user-000"] != "delivered" {
		t.Errorf("trace of the message: %d rows, user-230 %q", len(tr), tr["user-230/iphone-user-230"])
	}
	if got := rej.list(); len(got) != 0 {
		t.Errorf("Rejected %q", got)
	}

	// A child retried reads its own recipients' record: nothing is sent
	// again, and it does not take the other children's rows for its own.
	if err := wk.ProcessTask(context.Background(), asynq.NewTask(children[1].Type, children[1].Payload)); err != nil {
		t.Fatal(err)
	}
	if n := w.apns.count(); n != 250 {
		t.Errorf("%d pushes after a child was retried, want 250", n)
	}
}

func cmpString(a, b string) int {
	switch {
	case len(a) != len(b):
		return len(a) - len(b)
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
