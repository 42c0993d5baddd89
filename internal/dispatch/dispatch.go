// Package dispatch is the pipeline that turns one "recipients offline" job
// into pushes: mute filter, installation lookup, content, routing to APNs or
// FCM, classification, and recording. Every stage works on the whole job at
// once: one query for mutes, one for installations, sends in parallel.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushd/pushd/internal/apns"
	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/fcm"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/mute"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// Mutes reports the active mutes of a conversation's recipients.
type Mutes interface {
	Active(ctx context.Context, app, conv string, clients []string, now time.Time) (map[string]mute.Mute, error)
}

// Registry is the device registry as the pipeline uses it.
type Registry interface {
	ValidForClients(ctx context.Context, app string, clients []string) ([]installations.Installation, error)
	MarkInvalid(ctx context.Context, app, provider, reason string, tokens []string, at time.Time) (int64, error)
	// SetAPNsEnv corrects an installation's APNs environment after the
	// other environment's gateway accepted its token.
	SetAPNsEnv(ctx context.Context, app, id, env string) error
	IncrementBadges(ctx context.Context, app string, ids []string) (map[string]int, error)
}

// Deliveries is the per-message record that keeps a retry from pushing a
// device twice.
type Deliveries interface {
	Outcomes(ctx context.Context, app, messageID string, installationIDs []string) (map[string]string, error)
	Record(ctx context.Context, app, messageID string, rows []installations.Delivery) error
}

// APNs sends one push to Apple.
type APNs interface {
	Send(ctx context.Context, appID string, r apns.Request) apns.Result
}

// FCM sends one message to Firebase.
type FCM interface {
	Send(ctx context.Context, appID string, m *messaging.Message) fcm.Result
}

// App is what the pipeline needs of a configured app.
type App struct {
	Defaults content.Defaults
	// APNsTopic is the app's default APNs topic (its bundle id). VoIP
	// pushes to installations without an apns_topic of their own go to
	// APNsTopic + ".voip"; with neither, a VoIP push is rejected rather
	// than sent to the alert topic.
	APNsTopic string
}

// Observer learns every outcome, for metrics.
type Observer interface {
	Observe(app string, o outcome.Outcome, n int)
}

// Config wires a Pipeline.
type Config struct {
	Apps       map[string]App
	Mutes      Mutes
	Registry   Registry
	Deliveries Deliveries
	APNs       APNs
	FCM        FCM
	Observer   Observer
	Logger     *slog.Logger
	// Parallel bounds the sends in flight for one job; zero is 256.
	Parallel int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Pipeline processes jobs.
type Pipeline struct {
	cfg Config
	log *slog.Logger
}

// New returns a pipeline.
func New(cfg Config) (*Pipeline, error) {
	switch {
	case cfg.Mutes == nil, cfg.Registry == nil, cfg.Deliveries == nil:
		return nil, errors.New("dispatch: mutes, registry and deliveries are required")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{cfg: cfg, log: log}, nil
}

// RecipientResult is what became of one recipient: an outcome per device,
// or one outcome for a recipient who was muted or had no device.
type RecipientResult struct {
	ClientID string
	Devices  []DeviceResult
	// Outcome is set when no device was tried: muted, no_device, expired.
	Outcome outcome.Outcome
}

// DeviceResult is what became of one push to one device.
type DeviceResult struct {
	InstallationID string
	Provider       string
	APNsEnv        string
	Outcome        outcome.Outcome
	// Reason is the provider's reason or error code, when it gave one.
	Reason string
	// Throttled says the provider asked to slow down (429).
	Throttled bool
}

// Report is what a job's attempt did.
type Report struct {
	Recipients []RecipientResult
	// RetryAfter is the longest Retry-After a provider asked for, when some
	// devices are to be retried.
	RetryAfter time.Duration
}

// Pending reports how many devices are left for a retry.
func (r *Report) Pending() int {
	n := 0
	for _, rr := range r.Recipients {
		for _, d := range rr.Devices {
			if d.Outcome == outcome.Retrying {
				n++
			}
		}
	}
	return n
}

// ErrUnknownApp is returned for a job naming an app that is not configured.
var ErrUnknownApp = errors.New("unknown app")

// Process runs one attempt of job. firstAttempt says whether this is the
// job's first run: recipient outcomes (muted, no device, expired) are counted
// once per message, not once per attempt.
func (p *Pipeline) Process(ctx context.Context, job pushjob.Job, firstAttempt bool) (*Report, error) {
	now := p.cfg.Now()
	app, ok := p.cfg.Apps[job.AppID]
	if !ok {
		return nil, fmt.Errorf("dispatch: app %q: %w", job.AppID, ErrUnknownApp)
	}
	rep := &Report{Recipients: make([]RecipientResult, 0, len(job.Recipients))}
	byClient := make(map[string]*RecipientResult, len(job.Recipients))
	for _, c := range job.Recipients {
		rep.Recipients = append(rep.Recipients, RecipientResult{ClientID: c})
	}
	for i := range rep.Recipients {
		byClient[rep.Recipients[i].ClientID] = &rep.Recipients[i]
	}
	exp := job.Expiry()
	expired := !exp.IsZero() && !now.Before(exp)
	if expired && firstAttempt {
		for i := range rep.Recipients {
			rep.Recipients[i].Outcome = outcome.Expired
		}
		p.observe(job.AppID, outcome.Expired, len(rep.Recipients))
		return rep, p.recordRecipients(ctx, job, rep, now)
	}

	var active map[string]mute.Mute
	if !job.Force {
		// A forced job pushes to the muted too: nothing to look up.
		var err error
		if active, err = p.cfg.Mutes.Active(ctx, job.AppID, job.ConversationID, job.Recipients, now); err != nil {
			return nil, fmt.Errorf("dispatch: mutes: %w", err)
		}
	}
	keep, dropped := mute.Decide(job.Recipients, active, job.Mentions, job.MentionAll, job.Force)
	for c := range dropped {
		byClient[c].Outcome = outcome.Muted
	}
	// Recipients are counted once per message, not once per attempt.
	if firstAttempt {
		p.observe(job.AppID, outcome.Muted, len(dropped))
	}

	devices, err := p.cfg.Registry.ValidForClients(ctx, job.AppID, keep)
	if err != nil {
		return nil, fmt.Errorf("dispatch: installations: %w", err)
	}
	withDevice := make(map[string]bool, len(devices))
	for _, d := range devices {
		withDevice[d.ClientID] = true
	}
	noDevice := 0
	for _, c := range keep {
		if !withDevice[c] {
			byClient[c].Outcome = outcome.NoDevice
			noDevice++
		}
	}
	if firstAttempt {
		p.observe(job.AppID, outcome.NoDevice, noDevice)
	}
	if err := p.recordRecipients(ctx, job, rep, now); err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return rep, nil
	}

	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	seen, err := p.cfg.Deliveries.Outcomes(ctx, job.AppID, job.MessageID, ids)
	if err != nil {
		return nil, fmt.Errorf("dispatch: deliveries: %w", err)
	}
	pending := devices[:0:0]
	var attempts []installations.Delivery
	for _, d := range devices {
		if o, ok := seen[d.ID]; ok && outcome.Outcome(o).Final() {
			// Settled on an earlier attempt (accepted, dead token,
			// refused): never push it again.
			byClient[d.ClientID].Devices = append(byClient[d.ClientID].Devices, DeviceResult{
				InstallationID: d.ID, Provider: string(d.Provider), APNsEnv: d.APNsEnv, Outcome: outcome.Outcome(o), Reason: "earlier attempt",
			})
			continue
		}
		pending = append(pending, d)
		attempts = append(attempts, installations.Delivery{InstallationID: d.ID, ClientID: d.ClientID, Outcome: string(outcome.Retrying), Reason: "sending", At: now})
	}
	if len(pending) == 0 {
		return rep, nil
	}
	if expired {
		// The message outlived its use while these devices waited for a
		// retry: they get nothing, and the trace says why.
		for i := range attempts {
			attempts[i].Outcome, attempts[i].Reason = string(outcome.Expired), ""
			byClient[attempts[i].ClientID].Devices = append(byClient[attempts[i].ClientID].Devices, DeviceResult{
				InstallationID: attempts[i].InstallationID, Outcome: outcome.Expired,
			})
		}
		p.observe(job.AppID, outcome.Expired, len(attempts))
		if err := p.cfg.Deliveries.Record(ctx, job.AppID, job.MessageID, attempts); err != nil {
			return nil, fmt.Errorf("dispatch: record expired: %w", err)
		}
		return rep, nil
	}

	resolved := content.Resolve(app.Defaults, job)
	// A device with no record yet has never been tried for this message:
	// only those get the badge incremented, so that no retry, throttled or
	// not, counts the message twice.
	fresh := make(map[string]bool, len(pending))
	for _, d := range pending {
		if _, ok := seen[d.ID]; !ok {
			fresh[d.ID] = true
		}
	}
	// The attempt goes on record before badges are incremented and pushes
	// sent: the trace shows the devices in flight, and one whose answer
	// cannot be recorded (or a crash) leaves it "retrying"; and no later
	// attempt increments again: a crash in between costs a badge a count
	// rather than adding one twice.
	if err := p.cfg.Deliveries.Record(ctx, job.AppID, job.MessageID, attempts); err != nil {
		return nil, fmt.Errorf("dispatch: record attempt: %w", err)
	}
	badges, err := p.badges(ctx, job, resolved, pending, fresh)
	if err != nil {
		return nil, err
	}

	results := p.sendAll(ctx, job, newPayloads(app, resolved, job, now, pending), pending, badges)

	// The pushes are out: what the providers said must be recorded even
	// when the attempt's context has ended (asynq's timeout, shutdown), or
	// the retry would push the devices that accepted the message again.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	// Dead tokens are marked one statement per provider and reason, not
	// one per device: a large job can carry many.
	type deadKey struct{ provider, reason string }
	dead := make(map[deadKey][]int)
	// Refusals are a content bug or a credential to fix: worth a line in
	// the log, but one per job and reason, not one per device.
	type refusal struct {
		o                outcome.Outcome
		provider, reason string
	}
	refused := make(map[refusal]int)
	for i, d := range pending {
		res := results[i]
		if res.Outcome == outcome.Rejected || res.Outcome == outcome.AuthError {
			refused[refusal{res.Outcome, string(d.Provider), res.Reason}]++
		}
		byClient[d.ClientID].Devices = append(byClient[d.ClientID].Devices, res.DeviceResult)
		p.observe(job.AppID, res.Outcome, 1)
		if res.Outcome == outcome.Retrying && res.retryAfter > rep.RetryAfter {
			rep.RetryAfter = res.retryAfter
		}
		if res.correctEnv != "" {
			// The push is delivered whatever becomes of the correction:
			// a failed one is only logged, and the next push to the
			// device corrects it again.
			if err := p.cfg.Registry.SetAPNsEnv(bg, job.AppID, d.ID, res.correctEnv); err != nil {
				p.log.Warn("apns environment not corrected", "app", job.AppID, "installation", d.ID, "apns_env", res.correctEnv, "err", err)
			}
		}
		if res.Outcome == outcome.InvalidToken {
			k := deadKey{string(d.Provider), res.Reason}
			dead[k] = append(dead[k], i)
		}
	}
	for r, n := range refused {
		p.log.Warn("push refused", "app", job.AppID, "message", job.MessageID, "outcome", r.o, "provider", r.provider, "reason", r.reason, "devices", n)
	}
	var errs []error
	unmarked := make(map[int]bool)
	for k, idx := range dead {
		tokens := make([]string, len(idx))
		for j, i := range idx {
			tokens[j] = pending[i].Token
		}
		if _, err := p.cfg.Registry.MarkInvalid(bg, job.AppID, k.provider, k.reason, tokens, now); err != nil {
			// Left unrecorded, so the retry tries these tokens, and
			// marking them, again; the other devices' records still go in.
			errs = append(errs, fmt.Errorf("dispatch: mark %d tokens invalid: %w", len(tokens), err))
			for _, i := range idx {
				unmarked[i] = true
			}
		}
	}
	records := make([]installations.Delivery, 0, len(pending))
	for i, d := range pending {
		if unmarked[i] {
			continue
		}
		res := results[i]
		// Retrying devices are recorded too: the trace shows them, and
		// the record says their badge already counts this message.
		records = append(records, installations.Delivery{
			InstallationID: d.ID, ClientID: d.ClientID, Outcome: string(res.Outcome), Reason: res.Reason, ProviderID: res.providerID, At: now,
		})
	}
	if len(records) > 0 {
		if err := p.cfg.Deliveries.Record(bg, job.AppID, job.MessageID, records); err != nil {
			errs = append(errs, fmt.Errorf("dispatch: record deliveries: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rep, nil
}

// recordTimeout bounds the bookkeeping after the sends, which runs on even
// when the attempt's context has ended.
const recordTimeout = 30 * time.Second

// recordRecipients keeps the outcomes of recipients no device was tried
// for (muted, no device, expired) in the message's trace, so an operator
// can read why someone got nothing.
func (p *Pipeline) recordRecipients(ctx context.Context, job pushjob.Job, rep *Report, now time.Time) error {
	var rows []installations.Delivery
	for _, r := range rep.Recipients {
		if r.Outcome != "" {
			rows = append(rows, installations.Delivery{ClientID: r.ClientID, Outcome: string(r.Outcome), At: now})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := p.cfg.Deliveries.Record(ctx, job.AppID, job.MessageID, rows); err != nil {
		return fmt.Errorf("dispatch: record recipients: %w", err)
	}
	return nil
}

// RecordFailed turns the devices still to retry into failed: retries are
// exhausted. They are kept in the trace and counted.
func (p *Pipeline) RecordFailed(ctx context.Context, job pushjob.Job, rep *Report) error {
	now := p.cfg.Now()
	var rows []installations.Delivery
	for i := range rep.Recipients {
		r := &rep.Recipients[i]
		for j := range r.Devices {
			d := &r.Devices[j]
			if d.Outcome != outcome.Retrying {
				continue
			}
			d.Outcome = outcome.Failed
			rows = append(rows, installations.Delivery{InstallationID: d.InstallationID, ClientID: r.ClientID, Outcome: string(outcome.Failed), Reason: d.Reason, At: now})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	p.observe(job.AppID, outcome.Failed, len(rows))
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := p.cfg.Deliveries.Record(bg, job.AppID, job.MessageID, rows); err != nil {
		return fmt.Errorf("dispatch: record failed: %w", err)
	}
	return nil
}

func (p *Pipeline) observe(app string, o outcome.Outcome, n int) {
	if p.cfg.Observer != nil && n > 0 {
		p.cfg.Observer.Observe(app, o, n)
	}
}

// badges returns the badge number to send to each pending device that gets
// one. "Increment" bumps the stored badge of the fresh devices (never tried
// for this message); the others' stored number already counts it.
func (p *Pipeline) badges(ctx context.Context, job pushjob.Job, r content.Resolved, pending []installations.Installation, fresh map[string]bool) (map[string]int, error) {
	out := make(map[string]int)
	var bump []string
	for _, d := range pending {
		var b *pushjob.Badge
		switch d.Platform {
		case installations.PlatformIOS:
			b = r.IOS.Badge
		case installations.PlatformAndroid:
			b = r.Android.Badge
		}
		// A browser shows no number: web devices get none.
		switch {
		case b == nil:
		case !b.Increment:
			out[d.ID] = b.Value
		case fresh[d.ID]:
			bump = append(bump, d.ID)
		default:
			out[d.ID] = d.Badge
		}
	}
	if len(bump) == 0 {
		return out, nil
	}
	got, err := p.cfg.Registry.IncrementBadges(ctx, job.AppID, bump)
	if err != nil {
		return nil, fmt.Errorf("dispatch: increment badges: %w", err)
	}
	for id, n := range got {
		out[id] = n
	}
	return out, nil
}

type sendResult struct {
	DeviceResult
	retryAfter time.Duration
	providerID string
	// correctEnv is the APNs environment the installation is to be
	// corrected to: its token was delivered there after the other said
	// BadDeviceToken.
	correctEnv string
}

// payloads are a job's provider payloads, encoded once for all its
// devices; only the badge differs per device.
type payloads struct {
	apns    *content.APNsTemplate
	apnsErr error
	// apnsPushType and apnsPriority are the job's APNs headers, the same
	// for all its devices; appTopic is the app's default topic.
	apnsPushType pushjob.PushType
	apnsPriority int
	appTopic     string
	// apnsCollapseID and apnsExpiration are the job's, for every push.
	apnsCollapseID string
	apnsExpiration time.Time
	// fcm is the job's FCM message per platform, built for the platforms
	// its devices run on; fcmErr says why one could not be.
	fcm    map[installations.Platform]*content.FCMTemplate
	fcmErr map[installations.Platform]error
}

func newPayloads(app App, r content.Resolved, job pushjob.Job, now time.Time, pending []installations.Installation) *payloads {
	pt := r.IOS.PushType
	if pt == "" {
		pt = pushjob.PushTypeAlert
	}
	if pt == pushjob.PushTypeLiveActivity && r.IOS.Timestamp == 0 {
		// Apple orders a Live Activity's updates by timestamp.
		r.IOS.Timestamp = now.Unix()
	}
	pl := &payloads{
		apnsPushType: pt, apnsPriority: content.APNsPriority(pt, job.Priority), appTopic: app.APNsTopic,
		apnsCollapseID: content.CollapseID(job), apnsExpiration: job.Expiry(),
		fcm:    make(map[installations.Platform]*content.FCMTemplate),
		fcmErr: make(map[installations.Platform]error),
	}
	var apns bool
	for _, d := range pending {
		if d.Provider == installations.APNs {
			apns = true
			continue
		}
		pf := d.Platform
		if _, done := pl.fcm[pf]; done || pl.fcmErr[pf] != nil {
			continue
		}
		var t *content.FCMTemplate
		var err error
		switch pf {
		case installations.PlatformIOS:
			t, err = content.NewFCMAPNsTemplate(r.IOS, job, now)
		case installations.PlatformWeb:
			t = content.NewFCMWebTemplate(r.Web, job, now)
		default:
			t = content.NewFCMTemplate(r.Android, job, now)
		}
		if err != nil {
			pl.fcmErr[pf] = err
			continue
		}
		pl.fcm[pf] = t
	}
	if apns {
		pl.apns, pl.apnsErr = content.NewAPNsTemplate(r.IOS, content.APNsLimit(pt))
	}
	return pl
}

// apnsTopicSuffixes are the push types whose apns-topic is not the bundle
// id itself but the bundle id with Apple's suffix for the type. Alert and
// background pushes (and unknown types) use the topic as it is.
var apnsTopicSuffixes = map[pushjob.PushType]string{
	pushjob.PushTypeVoIP:         ".voip",
	pushjob.PushTypeComplication: ".complication",
	pushjob.PushTypeLocation:     ".location-query",
	pushjob.PushTypePushToTalk:   ".voip-ptt",
	pushjob.PushTypeWidgets:      ".push-type.widgets",
	pushjob.PushTypeControls:     ".push-type.controls",
	pushjob.PushTypeFileProvider: ".pushkit.fileprovider",
	pushjob.PushTypeLiveActivity: ".push-type.liveactivity",
}

// apnsTopic is the apns-topic for d: its own apns_topic, or empty for the
// app's. A push type with a topic suffix goes to the suffixed form of that
// topic (the installation's own topic kept when it already ends in the
// suffix, another type's suffix replaced); it is empty only when neither
// the installation nor the app names a topic.
func apnsTopic(pt pushjob.PushType, installTopic, appTopic string) string {
	suffix, ok := apnsTopicSuffixes[pt]
	if !ok {
		return installTopic
	}
	t := installTopic
	if t == "" {
		t = appTopic
	}
	if t == "" || strings.HasSuffix(t, suffix) {
		return t
	}
	// An installation registered with another type's topic (its .voip
	// topic, say) names the same app: its bundle id is the base.
	for _, other := range apnsTopicSuffixes {
		if other == suffix {
			continue
		}
		if base, found := strings.CutSuffix(t, other); found && base != "" {
			t = base
			break
		}
	}
	return t + suffix
}

// sendAll pushes to every pending device with at most Parallel in flight.
func (p *Pipeline) sendAll(ctx context.Context, job pushjob.Job, pl *payloads, pending []installations.Installation, badges map[string]int) []sendResult {
	results := make([]sendResult, len(pending))
	sem := make(chan struct{}, p.cfg.Parallel)
	var wg sync.WaitGroup
	for i, d := range pending {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = p.send(ctx, job, pl, d, badges)
		})
	}
	wg.Wait()
	return results
}

func (p *Pipeline) send(ctx context.Context, job pushjob.Job, pl *payloads, d installations.Installation, badges map[string]int) sendResult {
	res := sendResult{DeviceResult: DeviceResult{InstallationID: d.ID, Provider: string(d.Provider), APNsEnv: d.APNsEnv}}
	var badge *int
	if b, ok := badges[d.ID]; ok {
		badge = &b
	}
	switch d.Provider {
	case installations.APNs:
		if p.cfg.APNs == nil {
			res.Outcome = outcome.NoCredentials
			return res
		}
		err := pl.apnsErr
		var payload []byte
		if err == nil {
			payload, err = pl.apns.Payload(badge)
		}
		if err != nil {
			res.Outcome, res.Reason = outcome.Rejected, err.Error()
			return res
		}
		topic := apnsTopic(pl.apnsPushType, d.APNsTopic, pl.appTopic)
		suffix, suffixed := apnsTopicSuffixes[pl.apnsPushType]
		if suffixed && topic == "" {
			res.Outcome, res.Reason = outcome.Rejected, string(pl.apnsPushType)+" push: no APNs topic: register the installation with apns_topic, or set the app's apns.topic"
			return res
		}
		p.sendAPNs(ctx, job, d, pl, topic, payload, &res)
		if suffixed && res.Outcome == outcome.InvalidToken && topic != d.APNsTopic {
			// The suffixed topic was pushd's guess, not the
			// installation's registration: Apple refusing the token
			// there says it is no token for that push type (a VoIP,
			// Live Activity or Push to Talk token), not that it is
			// dead, and marking it would cost the device its message
			// pushes.
			res.Outcome = outcome.Rejected
			res.Reason += " for " + topic + ": token kept, the installation registered no " + suffix + " topic"
		}
	case installations.FCM:
		if p.cfg.FCM == nil {
			res.Outcome = outcome.NoCredentials
			return res
		}
		pf := d.Platform
		t := pl.fcm[pf]
		if t == nil {
			res.Outcome, res.Reason = outcome.Rejected, pl.fcmErr[pf].Error()
			return res
		}
		fr := p.cfg.FCM.Send(ctx, job.AppID, t.Message(d.Token, badge))
		res.Outcome, res.Reason, res.retryAfter, res.providerID, res.Throttled = fr.Outcome, fr.Code, fr.RetryAfter, fr.MessageName, fr.Throttled
		switch {
		case fr.Field != "":
			// What to fix: INVALID_ARGUMENT message.android.ttl.
			res.Reason += " " + fr.Field
		case res.Reason == "" && fr.Err != nil:
			res.Reason = fr.Err.Error()
		}
	default:
		res.Outcome, res.Reason = outcome.Rejected, "unknown provider "+string(d.Provider)
	}
	return res
}

// reasonBadDeviceToken is Apple's answer to a token it does not know in
// the environment asked, which is also its answer to a token of the other
// environment.
const reasonBadDeviceToken = "BadDeviceToken"

// sendAPNs pushes payload to d at the gateway of its apns_env (empty is
// production). A BadDeviceToken there is tried once, with the same payload,
// at the other environment's gateway: delivered there is env_corrected,
// with res.correctEnv set for the registry; only a token refused by both
// is invalid. The other environment having no credentials leaves the
// first answer standing; any other answer from it (transient, auth,
// rejected) is the device's outcome, and the token is not blamed.
func (p *Pipeline) sendAPNs(ctx context.Context, job pushjob.Job, d installations.Installation, pl *payloads, topic string, payload []byte, res *sendResult) {
	env := d.APNsEnv
	if env == "" {
		env = installations.Production
	}
	req := apns.Request{
		Token:      d.Token,
		Env:        env,
		Topic:      topic,
		PushType:   string(pl.apnsPushType),
		Priority:   pl.apnsPriority,
		Expiration: pl.apnsExpiration,
		// A duplicate after a crash replaces the first on the device
		// rather than stacking beside it; a collapsing job's push
		// replaces its conversation's last.
		CollapseID: pl.apnsCollapseID,
		Payload:    payload,
	}
	ar := p.cfg.APNs.Send(ctx, job.AppID, req)
	setAPNsResult(res, ar, env)
	if ar.Reason != reasonBadDeviceToken {
		return
	}
	other := otherEnv(env)
	req.Env = other
	br := p.cfg.APNs.Send(ctx, job.AppID, req)
	switch br.Outcome {
	case outcome.Delivered:
		setAPNsResult(res, br, other)
		res.Outcome, res.Reason = outcome.EnvCorrected, reasonBadDeviceToken+" in "+env
		res.correctEnv = res.APNsEnv
	case outcome.NoCredentials:
		// Nothing to learn from an environment pushd cannot reach: the
		// first answer stands.
	default:
		// Refused by both: invalid, with the other environment's reason
		// (BadDeviceToken again, or Unregistered when the token was the
		// other environment's and has died). Transient, auth or content
		// trouble at the other gateway says nothing against the token:
		// the device takes that outcome, and is not marked.
		setAPNsResult(res, br, other)
	}
}

func setAPNsResult(res *sendResult, ar apns.Result, env string) {
	res.Outcome, res.Reason, res.retryAfter, res.providerID = ar.Outcome, ar.Reason, ar.RetryAfter, ar.ApnsID
	res.Throttled = ar.Status == http.StatusTooManyRequests
	if res.Reason == "" && ar.Err != nil {
		res.Reason = ar.Err.Error()
	}
	res.APNsEnv = ar.Env
	if res.APNsEnv == "" {
		res.APNsEnv = env
	}
}

func otherEnv(env string) string {
	if env == installations.Development {
		return installations.Production
	}
	return installations.Development
}
