package apns

import "github.com/pushd/pushd/internal/content"

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
