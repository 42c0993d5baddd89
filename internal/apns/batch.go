package apns

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushd/pushd/internal/dispatch"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Pusher sends one push for an app: *Sender, or a fake in tests.
type Pusher interface {
	Send(ctx context.Context, appID string, r Request) Result
	// Topic is the app's default apns-topic (its bundle id).
	Topic(appID string) string
}

// EnvCorrector records the APNs environment a device's token proved to
// belong to: the installation registry.
type EnvCorrector interface {
	SetAPNsEnv(ctx context.Context, app, installationID, env string) error
}

// BatchConfig configures a BatchSender.
type BatchConfig struct {
	// Registry corrects an installation's environment after the other
	// gateway accepted its token; nil corrects nothing.
	Registry EnvCorrector
	// Fanout bounds the pushes in flight, of one batch and of all, and may
	// be shared with the other providers' Senders; nil is
	// dispatch.NewFanout(0, 0).
	Fanout *dispatch.Fanout
	Logger *slog.Logger
}

// BatchSender is the pipeline's Sender for APNs (dispatch.Sender): it
// builds a job's payload once, routes each device to its environment's
// gateway and topic, pushes through a Pusher, and recovers a token of the
// other environment.
type BatchSender struct {
	push   Pusher
	cfg    BatchConfig
	log    *slog.Logger
	fanout *dispatch.Fanout
}

// NewBatchSender returns the APNs Sender over p.
func NewBatchSender(p Pusher, cfg BatchConfig) *BatchSender {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BatchSender{push: p, cfg: cfg, log: log, fanout: cmp.Or(cfg.Fanout, dispatch.NewFanout(0, 0))}
}

// job is what every push of one batch shares.
type job struct {
	appID    string
	tmpl     *PayloadTemplate
	tmplErr  error
	pushType pushjob.PushType
	priority int
	appTopic string
	// collapseID and expiration are computed once, not per device.
	collapseID string
	expiration time.Time
}

// Send pushes to every device of b (dispatch.Sender).
func (s *BatchSender) Send(ctx context.Context, b *dispatch.Batch) []dispatch.Result {
	p := b.Content.IOS
	pt := p.PushType
	if pt == "" {
		pt = pushjob.PushTypeAlert
	}
	if pt == pushjob.PushTypeLiveActivity && p.Timestamp == 0 {
		// Apple orders a Live Activity's updates by timestamp.
		p.Timestamp = b.Now.Unix()
	}
	j := &job{
		appID: b.AppID, pushType: pt, priority: Priority(pt, b.Job.Priority), appTopic: s.push.Topic(b.AppID),
		collapseID: CollapseID(b.Job), expiration: b.Job.Expiry(),
	}
	j.tmpl, j.tmplErr = NewPayloadTemplate(p, PayloadLimit(pt))
	return s.fanout.Each(b, func(d installations.Installation) dispatch.Result {
		return s.send(ctx, j, d, b.Badge(d))
	})
}

func (s *BatchSender) send(ctx context.Context, j *job, d installations.Installation, badge *int) dispatch.Result {
	err := j.tmplErr
	var payload []byte
	if err == nil {
		payload, err = j.tmpl.Payload(badge)
	}
	if err != nil {
		return dispatch.Result{Outcome: outcome.Rejected, Reason: err.Error(), Route: envOf(d)}
	}
	topic := topicFor(j.pushType, d.APNsTopic, j.appTopic)
	suffix, suffixed := topicSuffixes[j.pushType]
	if suffixed && topic == "" {
		return dispatch.Result{Outcome: outcome.Rejected, Route: envOf(d),
			Reason: string(j.pushType) + " push: no APNs topic: register the installation with apns_topic, or set the app's apns.topic"}
	}
	res := s.sendEnv(ctx, j, d, topic, payload)
	if suffixed && res.Outcome == outcome.InvalidToken && topic != d.APNsTopic {
		// The suffixed topic was pushd's guess, not the installation's
		// registration: Apple refusing the token there says it is no
		// token for that push type (a VoIP, Live Activity or Push to
		// Talk token), not that it is dead, and marking it would cost
		// the device its message pushes.
		res.Outcome = outcome.Rejected
		res.Reason += " for " + topic + ": token kept, the installation registered no " + suffix + " topic"
	}
	return res
}

// reasonBadDeviceToken is Apple's answer to a token it does not know in
// the environment asked, which is also its answer to a token of the other
// environment.
const reasonBadDeviceToken = "BadDeviceToken"

// sendEnv pushes payload to d at the gateway of its apns_env (empty is
// production). A BadDeviceToken there is tried once, with the same
// payload, at the other environment's gateway: delivered there is
// env_corrected, and the installation is corrected; only a token refused
// by both is invalid. The other environment having no credentials leaves
// the first answer standing; any other answer from it (transient, auth,
// rejected) is the device's outcome, and the token is not blamed.
func (s *BatchSender) sendEnv(ctx context.Context, j *job, d installations.Installation, topic string, payload []byte) dispatch.Result {
	env := envOf(d)
	req := Request{
		Token:      d.Token,
		Env:        env,
		Topic:      topic,
		PushType:   string(j.pushType),
		Priority:   j.priority,
		Expiration: j.expiration,
		// A duplicate after a crash replaces the first on the device
		// rather than stacking beside it; a collapsing job's push
		// replaces its conversation's last.
		CollapseID: j.collapseID,
		Payload:    payload,
	}
	ar := s.push.Send(ctx, j.appID, req)
	res := result(ar, env)
	if ar.Reason != reasonBadDeviceToken {
		return res
	}
	other := otherEnv(env)
	req.Env = other
	br := s.push.Send(ctx, j.appID, req)
	switch br.Outcome {
	case outcome.Delivered:
		res = result(br, other)
		res.Outcome, res.Reason = outcome.EnvCorrected, reasonBadDeviceToken+" in "+env
		s.correct(ctx, j.appID, d.ID, res.Route)
	case outcome.NoCredentials:
		// Nothing to learn from an environment pushd cannot reach: the
		// first answer stands.
	default:
		// Refused by both: invalid, with the other environment's reason
		// (BadDeviceToken again, or Unregistered when the token was the
		// other environment's and has died). Transient, auth or content
		// trouble at the other gateway says nothing against the token:
		// the device takes that outcome, and is not marked.
		res = result(br, other)
	}
	return res
}

// correctTimeout bounds an environment correction, which runs on after
// the batch's context has ended: the push is out either way.
const correctTimeout = 10 * time.Second

// correct records d's proven environment. The push is delivered whatever
// becomes of the correction: a failed one is only logged, and the next
// push to the device corrects it again.
func (s *BatchSender) correct(ctx context.Context, app, id, env string) {
	if s.cfg.Registry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), correctTimeout)
	defer cancel()
	if err := s.cfg.Registry.SetAPNsEnv(ctx, app, id, env); err != nil {
		s.log.Warn("apns environment not corrected", "app", app, "installation", id, "apns_env", env, "err", err)
	}
}

func result(ar Result, env string) dispatch.Result {
	res := dispatch.Result{
		Outcome: ar.Outcome, Reason: ar.Reason, RetryAfter: ar.RetryAfter, ProviderID: ar.ApnsID,
		Throttled: ar.Status == http.StatusTooManyRequests,
		Route:     ar.Env,
	}
	if res.Reason == "" && ar.Err != nil {
		res.Reason = ar.Err.Error()
	}
	if res.Route == "" {
		res.Route = env
	}
	return res
}

// envOf is d's environment; an installation that names none is production.
func envOf(d installations.Installation) string {
	if d.APNsEnv == "" {
		return Production
	}
	return d.APNsEnv
}

func otherEnv(env string) string {
	if env == Development {
		return Production
	}
	return Development
}
