package dispatch

// The delivery record of one message, and the one place that decides what
// a delivery may become.
//
// A delivery row is what became of the message for one device, or, for a
// recipient no device was tried for, for the recipient as a whole. Device
// rows move by this table; a final state never moves again:
//
//	from             may become                                   final
//	(none)           sending, expired, any answer, no_device      -
//	sending          any answer, expired, failed, no_device       no
//	retrying         any answer, expired, failed, no_device       no
//	delivered        -                                            yes
//	env_corrected    -                                            yes
//	invalid_token    -                                            yes
//	rejected         -                                            yes
//	auth_error       -                                            yes
//	no_credentials   -                                            yes
//	failed           -                                            yes
//	expired          -                                            yes
//	no_device        -                                            yes
//
// "sending" is stored as retrying with the reason "sending": the device is
// claimed for an attempt whose answer is not in yet (claim.go: only devices
// whose badge the message bumps are claimed before the send). A row that stays
// retrying keeps the time it was first claimed. An answer is any outcome a
// Sender may return (isAnswer): delivered, env_corrected, invalid_token,
// rejected, auth_error, no_credentials, retrying.
//
// Recipient rows (no installation) are written once: muted, no_device
// (never_registered, or all_invalid with when and why the last device
// died) or expired. A recipient with device rows gets none: its devices
// say what became of it, even after they all died.
//
// What follows from the table:
//   - A device that accepted the message is never pushed it again: a
//     retried, re-delivered or duplicated job finds it final.
//   - Only a device with no row at all is fresh: its badge counts the
//     message; a retry's never counts it twice.
//   - A recipient settled on an earlier attempt (a recipient row, or
//     every device final) is settled for good: no later attempt counts it,
//     expires it or pushes to it again.
//   - Whether an attempt is a job's first is what the record says, never
//     asynq's retry count: each row counts once, when it turns final.
//
// The database applies the first two lines again (a delivered row is never
// overwritten), for two workers that race on one message.

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/pushjob"
)

// reasonSending marks a device claimed for an attempt.
const reasonSending = "sending"

// deviceMay reports whether a device row in state from (empty: no row)
// may move to state to: the table above.
func deviceMay(from, to outcome.Outcome) bool {
	if from.Final() {
		return false
	}
	switch to {
	case "", outcome.Muted:
		// Recipient states, not a device's.
		return false
	}
	return true
}

// isAnswer reports whether a Sender may answer o for a device.
func isAnswer(o outcome.Outcome) bool {
	switch o {
	case outcome.Delivered, outcome.EnvCorrected, outcome.InvalidToken, outcome.Rejected,
		outcome.AuthError, outcome.NoCredentials, outcome.Retrying:
		return true
	}
	return false
}

// recipientMay reports whether a recipient row may be written, given the
// recipient's row (empty: none) and whether it has device rows.
func recipientMay(from outcome.Outcome, hasDevices bool, to outcome.Outcome) bool {
	if from != "" || hasDevices {
		return false
	}
	switch to {
	case outcome.Muted, outcome.NoDevice, outcome.Expired:
		return true
	}
	return false
}

// entry is one delivery row as this attempt knows it.
type entry struct {
	row installations.Delivery
	// prior is the row's outcome when the attempt began; empty for none.
	prior outcome.Outcome
	// provider, route and throttled are this attempt's, for the report.
	provider, route string
	throttled       bool
	dirty           bool
}

func (e *entry) state() outcome.Outcome { return outcome.Outcome(e.row.Outcome) }

// ledger is one message's delivery record during an attempt: what earlier
// attempts left, and this attempt's moves, written in one batch per flush.
type ledger struct {
	p       *Pipeline
	app     string
	message string
	now     time.Time
	// recipients are the recipient rows by client; devices the device
	// rows by installation, and byClient the same per client, in order.
	recipients map[string]*entry
	devices    map[string]*entry
	byClient   map[string][]*entry
	dirty      []*entry
	// settled counts rows turned final since the last flush, observed
	// once they are written.
	settled map[settledKey]int
}

type settledKey struct {
	o   outcome.Outcome
	why string
}

// openLedger reads the record of the message's recipients in this job:
// one query.
func (p *Pipeline) openLedger(ctx context.Context, job pushjob.Job, now time.Time) (*ledger, error) {
	rows, err := p.cfg.Deliveries.TraceClients(ctx, job.AppID, job.MessageID, job.Recipients)
	if err != nil {
		return nil, fmt.Errorf("dispatch: read deliveries: %w", err)
	}
	l := &ledger{
		p: p, app: job.AppID, message: job.MessageID, now: now,
		recipients: make(map[string]*entry),
		devices:    make(map[string]*entry, len(rows)),
		byClient:   make(map[string][]*entry),
		settled:    make(map[settledKey]int),
	}
	for _, r := range rows {
		e := &entry{row: r, prior: outcome.Outcome(r.Outcome)}
		if r.InstallationID == "" {
			l.recipients[r.ClientID] = e
			continue
		}
		l.devices[r.InstallationID] = e
		l.byClient[r.ClientID] = append(l.byClient[r.ClientID], e)
	}
	return l, nil
}

// since is when the message's first attempt began, as its record tells:
// the earliest time a row was written (a waiting device keeps the time it
// was first claimed), or now when nothing is on record.
func (l *ledger) since(now time.Time) time.Time {
	t := now
	for _, m := range []map[string]*entry{l.recipients, l.devices} {
		for _, e := range m {
			if !e.row.At.IsZero() && e.row.At.Before(t) {
				t = e.row.At
			}
		}
	}
	return t
}

// recipientSettled reports whether c was settled on an earlier attempt.
func (l *ledger) recipientSettled(c string) bool {
	if l.recipients[c] != nil {
		return true
	}
	ds := l.byClient[c]
	for _, e := range ds {
		if !e.state().Final() {
			return false
		}
	}
	return len(ds) > 0
}

// onRecord reports whether c has any row: it passed the mute check on an
// earlier attempt.
func (l *ledger) onRecord(c string) bool {
	return l.recipients[c] != nil || len(l.byClient[c]) > 0
}

// deviceState is d's state (empty for no row).
func (l *ledger) deviceState(id string) outcome.Outcome {
	if e := l.devices[id]; e != nil {
		return e.state()
	}
	return ""
}

// fresh reports whether the device has no row: it was never tried for
// this message, so its badge does not count it yet.
func (l *ledger) fresh(id string) bool { return l.devices[id] == nil }

// unsettledDevices are c's device rows not yet final.
func (l *ledger) unsettledDevices(c string) []*entry {
	var out []*entry
	for _, e := range l.byClient[c] {
		if !e.state().Final() {
			out = append(out, e)
		}
	}
	return out
}

// seen notes d's provider for the report, without moving its row.
func (l *ledger) seen(d installations.Installation) {
	if e := l.devices[d.ID]; e != nil {
		e.provider = string(d.Provider)
	}
}

// settleRecipient writes c's recipient row, if the table allows it.
func (l *ledger) settleRecipient(c string, o outcome.Outcome, reason, why string) bool {
	var from outcome.Outcome
	if e := l.recipients[c]; e != nil {
		from = e.state()
	}
	if !recipientMay(from, len(l.byClient[c]) > 0, o) {
		return false
	}
	e := &entry{row: installations.Delivery{ClientID: c, Outcome: string(o), Reason: reason, At: l.now}}
	l.recipients[c] = e
	l.mark(e, o, why)
	return true
}

// moveDevice moves d's row to res's outcome, if the table allows it.
func (l *ledger) moveDevice(d installations.Installation, res Result, why string) bool {
	e := l.devices[d.ID]
	var from outcome.Outcome
	if e != nil {
		from = e.state()
	}
	if !deviceMay(from, res.Outcome) {
		return false
	}
	if e == nil {
		e = &entry{row: installations.Delivery{InstallationID: d.ID, ClientID: d.ClientID}}
		l.devices[d.ID] = e
		l.byClient[d.ClientID] = append(l.byClient[d.ClientID], e)
	}
	if !(from == outcome.Retrying && res.Outcome == outcome.Retrying) {
		// A device still waiting keeps the time it was first claimed:
		// the trace shows how long it has waited, and since reads the
		// job's first attempt from it.
		e.row.At = l.now
	}
	e.row.Outcome, e.row.Reason, e.row.ProviderID = string(res.Outcome), res.Reason, res.ProviderID
	if d.Provider != "" {
		e.provider = string(d.Provider)
	}
	e.route, e.throttled = res.Route, res.Throttled
	l.mark(e, res.Outcome, why)
	return true
}

func (l *ledger) mark(e *entry, o outcome.Outcome, why string) {
	if !e.dirty {
		e.dirty = true
		l.dirty = append(l.dirty, e)
	}
	if o.Final() {
		l.settled[settledKey{o, why}]++
	}
}

// flush writes every row moved since the last flush in one batch, then
// counts the rows that turned final. A failed write counts nothing: the
// retry moves them again.
func (l *ledger) flush(ctx context.Context) error {
	if len(l.dirty) == 0 {
		return nil
	}
	rows := make([]installations.Delivery, len(l.dirty))
	for i, e := range l.dirty {
		rows[i] = e.row
	}
	if err := l.p.cfg.Deliveries.Record(ctx, l.app, l.message, rows); err != nil {
		return fmt.Errorf("record %d deliveries: %w", len(rows), err)
	}
	for _, e := range l.dirty {
		e.dirty = false
	}
	l.dirty = l.dirty[:0]
	for k, n := range l.settled {
		l.p.cfg.Observer.Observe(l.app, k.o, k.why, n)
	}
	clear(l.settled)
	return nil
}

// recipient is what the record says of c, for the report.
func (l *ledger) recipient(c string) RecipientResult {
	r := RecipientResult{ClientID: c}
	if e := l.recipients[c]; e != nil {
		r.Outcome, r.Reason = e.state(), e.row.Reason
	}
	for _, e := range l.byClient[c] {
		d := DeviceResult{
			InstallationID: e.row.InstallationID, Provider: e.provider, Route: e.route,
			Outcome: e.state(), Reason: e.row.Reason, Throttled: e.throttled,
		}
		if e.prior.Final() {
			// Settled before this attempt and left alone by it.
			d.Reason = "earlier attempt"
		}
		r.Devices = append(r.Devices, d)
	}
	return r
}
