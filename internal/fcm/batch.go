package fcm

import (
	"context"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
)

// Pusher sends one message for an app: *Sender, or a fake in tests.
type Pusher interface {
	Send(ctx context.Context, appID string, m *messaging.Message) Result
	// Project is the Firebase project the app sends to.
	Project(appID string) (string, bool)
}

// BatchSender is the pipeline's Sender for FCM (dispatch.Sender): it
// builds a job's message once per platform its devices run on (Android,
// iOS, web) and sends each device's copy through a Pusher.
type BatchSender struct {
	push   Pusher
	fanout *dispatch.Fanout
}

// NewBatchSender returns the FCM Sender over p, sending through f, which
// bounds the messages in flight and may be shared with the other
// providers' Senders; nil is dispatch.NewFanout(0, 0).
func NewBatchSender(p Pusher, f *dispatch.Fanout) *BatchSender {
	if f == nil {
		f = dispatch.NewFanout(0, 0)
	}
	return &BatchSender{push: p, fanout: f}
}

// Send sends to every device of b (dispatch.Sender).
func (s *BatchSender) Send(ctx context.Context, b *dispatch.Batch) []dispatch.Result {
	project, _ := s.push.Project(b.AppID)
	tmpls := make(map[installations.Platform]*Template)
	errs := make(map[installations.Platform]error)
	for _, d := range b.Devices {
		pf := d.Platform
		if tmpls[pf] != nil || errs[pf] != nil {
			continue
		}
		var t *Template
		var err error
		switch pf {
		case installations.PlatformIOS:
			t, err = NewAPNsTemplate(b.Content.IOS, b.Job, b.Now)
		case installations.PlatformWeb:
			t = NewWebTemplate(b.Content.Web, b.Job, b.Now)
		default:
			t = NewAndroidTemplate(b.Content.Android, b.Job, b.Now)
		}
		if err != nil {
			errs[pf] = err
			continue
		}
		tmpls[pf] = t
	}
	return s.fanout.Each(b, func(d installations.Installation) dispatch.Result {
		t := tmpls[d.Platform]
		if t == nil {
			return dispatch.Result{Outcome: outcome.Rejected, Reason: errs[d.Platform].Error(), Route: project}
		}
		fr := s.push.Send(ctx, b.AppID, t.Message(d.Token, b.Badge(d)))
		res := dispatch.Result{
			Outcome: fr.Outcome, Reason: fr.Code, RetryAfter: fr.RetryAfter, ProviderID: fr.MessageName,
			Throttled: fr.Throttled, Route: project,
		}
		switch {
		case fr.Field != "":
			// What to fix: INVALID_ARGUMENT message.android.ttl.
			res.Reason += " " + fr.Field
		case res.Reason == "" && fr.Err != nil:
			res.Reason = fr.Err.Error()
		}
		return res
	})
}
