package pushjob_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/pushjob"
)

// An IM server enqueues one job per message for the members who are
// offline. This example needs a Redis server, so, like net/http's
// ListenAndServe example, it is compiled but not run.
func ExampleEnqueuer() {
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:6379"})
	defer client.Close()
	enq := pushjob.NewEnqueuer(client)

	id, err := enq.Enqueue(context.Background(), pushjob.Job{
		MessageID:      "msg-7f3a",
		ConversationID: "conv-42",
		FromClientID:   "alice",
		Recipients:     []string{"bob", "carol"},
		Mentions:       []string{"carol"},
		Priority:       pushjob.PriorityHigh,
		TTLSeconds:     3600,
	})
	var invalid *pushjob.ValidationError
	switch {
	case errors.Is(err, pushjob.ErrDuplicate):
		// An earlier attempt got through, and its reply was lost.
		log.Printf("already enqueued as %s", id)
	case errors.As(err, &invalid):
		for _, f := range invalid.Fields {
			log.Printf("bad job: %s: %s", f.Field, f.Rule)
		}
	case err != nil:
		log.Printf("Redis trouble, retry later: %v", err)
	default:
		log.Printf("enqueued %s", id)
	}
}

// NewTask builds the task without Redis, for a caller that enqueues it
// with options of its own, such as asynq.ProcessIn.
func ExampleNewTask() {
	task, err := pushjob.NewTask(pushjob.Job{
		MessageID:      "msg-7f3a",
		ConversationID: "conv-42",
		Recipients:     []string{"bob"},
		Push:           &pushjob.Content{Body: "Lunch?", Badge: &pushjob.Badge{Increment: true}},
		Timestamp:      time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Type())
	fmt.Println(pushjob.TaskID("", "msg-7f3a"))
	fmt.Println(string(task.Payload()))
	// Output:
	// push:offline
	// push:default:msg-7f3a
	// {"app_id":"default","message_id":"msg-7f3a","conversation_id":"conv-42","recipients":["bob"],"push":{"body":"Lunch?","badge":"Increment"},"priority":"normal","timestamp":"2025-06-01T12:00:00Z"}
}

// A server that takes jobs over HTTP decodes and validates each body and
// answers 400 with every field error at once. Decode reports the body's
// structure; Validate the values of a body that decoded.
func ExampleDecode() {
	for _, body := range []string{
		`{"message_id":"m1","recipients":["bob"],"colour":"red","push":{"badge":"one"}}`,
		`{"message_id":"m1","recipients":["bob","bob"],"priority":"urgent"}`,
	} {
		job, err := pushjob.Decode([]byte(body))
		if err == nil {
			err = job.Validate()
		}
		var invalid *pushjob.ValidationError
		if errors.As(err, &invalid) {
			out, _ := json.Marshal(invalid.Fields)
			fmt.Printf("400 %s\n", out)
		}
	}
	// Output:
	// 400 [{"field":"colour","rule":"unknown field"},{"field":"push.badge","rule":"want a whole number or \"Increment\""}]
	// 400 [{"field":"conversation_id","rule":"required"},{"field":"recipients[1]","rule":"duplicate of recipients[0]"},{"field":"priority","rule":"one of \"high\", \"normal\", \"low\""}]
}
