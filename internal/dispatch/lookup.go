package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/outcome"
)

// Why a recipient has no device (Observer's why, and the start of the
// trace's reason).
const (
	whyNeverRegistered = "never_registered"
	whyAllInvalid      = "all_invalid"
	// whyUnregistered: a device waiting for a retry left the registry.
	whyUnregistered = "unregistered"
)

// lookup finds the valid devices of the recipients still open, in one
// query, and sets aside the devices settled on an earlier attempt. A
// recipient without a valid device is no_device, with why: never
// registered, or every device died (when and why the last did).
func (p *Pipeline) lookup(ctx context.Context, a *attempt) error {
	if len(a.open) == 0 {
		return nil
	}
	devices, err := p.cfg.Registry.ValidForClients(ctx, a.job.AppID, a.open)
	if err != nil {
		return fmt.Errorf("installations: %w", err)
	}
	valid := make(map[string]bool, len(devices))
	withDevice := make(map[string]bool, len(devices))
	for _, d := range devices {
		valid[d.ID] = true
		withDevice[d.ClientID] = true
		if a.ledger.deviceState(d.ID).Final() {
			// Settled on an earlier attempt (accepted, dead token,
			// refused): never pushed again.
			a.ledger.seen(d)
			continue
		}
		a.pending = append(a.pending, d)
	}
	var none []string
	for _, c := range a.open {
		// A device waiting for this retry that is no longer valid
		// (marked dead by another job's push, deleted, moved to another
		// client) gets nothing; its row must not wait forever.
		for _, e := range a.ledger.unsettledDevices(c) {
			if !valid[e.row.InstallationID] {
				d := installations.Installation{ID: e.row.InstallationID, ClientID: c}
				a.ledger.moveDevice(d, Result{Outcome: outcome.NoDevice, Reason: whyUnregistered + ": removed, moved or invalid since an earlier attempt"}, whyUnregistered)
			}
		}
		if !withDevice[c] && !a.ledger.onRecord(c) {
			none = append(none, c)
		}
	}
	if len(none) == 0 {
		return nil
	}
	dead, err := p.cfg.Registry.LastInvalid(ctx, a.job.AppID, none)
	if err != nil {
		return fmt.Errorf("installations: %w", err)
	}
	for _, c := range none {
		reason, why := whyNeverRegistered, whyNeverRegistered
		if d, ok := dead[c]; ok {
			why = whyAllInvalid
			reason = fmt.Sprintf("%s: last device (%s) invalid since %s: %s", whyAllInvalid, d.Provider, d.InvalidAt.UTC().Format(time.RFC3339), d.InvalidReason)
		}
		a.ledger.settleRecipient(c, outcome.NoDevice, reason, why)
	}
	return nil
}
