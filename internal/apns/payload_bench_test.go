package apns

import (
	"strings"
	"testing"

	"github.com/pushd/pushd/internal/content"
)

// The per-device cost of a payload: building it whole for every device, or
// building a template once per job and splicing in each device's badge.
func BenchmarkAPNsPerDevice(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"short", "Are we still on for dinner tonight? 🍝"},
		{"truncated", strings.Repeat("你好世界，这是一条很长的消息。", 200)},
	} {
		p := content.Platform{Title: "alice", Body: bc.body, Sound: "default", ThreadID: "conv-1", Category: "MESSAGE",
			Data: map[string]any{"conversation": "conv-1", "message": "m-123", "n": 3}}
		b.Run(bc.name+"/payload", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				badge := i % 100
				if _, err := payloadOnce(p, &badge, MaxPayload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/template", func(b *testing.B) {
			b.ReportAllocs()
			tmpl, err := NewPayloadTemplate(p, MaxPayload)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				badge := i % 100
				if _, err := tmpl.Payload(&badge); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
