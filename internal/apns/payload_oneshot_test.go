package apns

import (
	"encoding/json"
	"testing"

	"github.com/pushd/pushd/internal/content"
)

// template once per job.

// APNsPayload builds p's payload with badge (nil for none) in at most
// maxBytes: PayloadLimit(p.PushType), MaxPayload for alert and background
// pushes, MaxVoIPPayload for VoIP.
// It is NewPayloadTemplate and Payload in one; a job with many devices should
// build the template once.
func payloadOnce(p content.Platform, badge *int, maxBytes int) ([]byte, error) {
	t, err := NewPayloadTemplate(p, maxBytes)
	if err != nil {
		return nil, err
	}
	return t.Payload(badge)
}

// payloadCase is a platform's content and badge, and the payload wanted.
type payloadCase struct {
	name  string
	p     content.Platform
	badge *int
	want  string
}

// checkPayloads builds each case's payload within Apple's limit for its
// push type and compares it with the one wanted.
func checkPayloads(t *testing.T, cases []payloadCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := payloadOnce(tc.p, tc.badge, PayloadLimit(tc.p.PushType))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
}
