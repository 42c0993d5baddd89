package content

import (
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/pushjob"
)

// The one-device forms of the templates, for tests: pushd builds a
// template once per job.

// APNsPayload builds p's payload with badge (nil for none) in at most
// maxBytes: APNsLimit(p.PushType), APNsMaxPayload for alert and background
// pushes, APNsMaxVoIPPayload for VoIP.
// It is NewAPNsTemplate and Payload in one; a job with many devices should
// build the template once.
func APNsPayload(p Platform, badge *int, maxBytes int) ([]byte, error) {
	t, err := NewAPNsTemplate(p, maxBytes)
	if err != nil {
		return nil, err
	}
	return t.Payload(badge)
}

// FCMMessage builds p's Android message for job j and one device token,
// with its TTL counted from now. A job with many devices should use
// NewFCMTemplate once.
func FCMMessage(p Platform, j pushjob.Job, token string, badge *int) *messaging.Message {
	return NewFCMTemplate(p, j, time.Now()).Message(token, badge)
}
