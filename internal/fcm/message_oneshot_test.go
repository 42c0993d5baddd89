package fcm

import (
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// FCMMessage builds p's Android message for job j and one device token,
// with its TTL counted from now. A job with many devices should use
// NewAndroidTemplate once.
func messageOnce(p content.Platform, j pushjob.Job, token string, badge *int) *messaging.Message {
	return NewAndroidTemplate(p, j, time.Now()).Message(token, badge)
}
