package pushjob_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pushd/pushd/pushjob"
)

// BenchmarkDecode decodes the largest job: 10 000 recipients. The worker
// decodes a job on every attempt.
func BenchmarkDecode(b *testing.B) {
	recipients := make([]string, pushjob.MaxRecipients)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("user-%06d", i)
	}
	body, err := json.Marshal(map[string]any{"message_id": "m1", "conversation_id": "c1", "recipients": recipients})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pushjob.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
