package installations

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/outcome"
	"github.com/pushd/pushd/internal/storage"
)

// Delivery is what became of one message for one device, or, with no
// InstallationID, for a recipient as a whole (muted, no_device).
type Delivery struct {
	InstallationID string `json:"installation_id,omitempty"`
	ClientID       string `json:"client_id,omitempty"`
	// Outcome is one of internal/outcome's names.
	Outcome string `json:"outcome"`
	// Reason is the provider's reason or error, when it gave one.
	Reason string `json:"reason,omitempty"`
	// ProviderID is the provider's id for the push: apns-id, or the FCM
	// message name.
	ProviderID string    `json:"provider_id,omitempty"`
	At         time.Time `json:"at"`
}

// accepted reports whether the device has the message: such a record is
// final for good.
func accepted(o string) bool {
	return o == string(outcome.Delivered) || o == string(outcome.EnvCorrected)
}

// Deliveries is the per-message trace, and the idempotency record that
// keeps a device from receiving one message twice.
type Deliveries struct {
	db *storage.DB
	// group commits the records of concurrent jobs together.
	group groupCommit
	q     struct{ record, trace, traceClients, prune string }
}

// NewDeliveries returns the delivery record over db, which must be
// migrated.
func NewDeliveries(db *storage.DB) *Deliveries {
	d := &Deliveries{db: db}
	// Rows travel as one JSON parameter, so a batch of any size is one
	// statement and never meets a bound-parameter limit. A device that
	// accepted the message keeps that record whatever comes later.
	if db.Dialect() == storage.Postgres {
		d.q.record = `INSERT INTO deliveries (app_id, message_id, installation_id, client_id, outcome, reason, provider_id, at)
			SELECT $1::text, $2::text, r.i, r.c, r.o, r.r, r.p, r.t
			FROM jsonb_to_recordset($3::jsonb) AS r(i text, c text, o text, r text, p text, t timestamptz)
			ON CONFLICT (app_id, message_id, installation_id, client_id) DO UPDATE SET
				outcome = excluded.outcome, reason = excluded.reason, provider_id = excluded.provider_id, at = excluded.at
			WHERE deliveries.outcome NOT IN ($4, $5)`
	} else {
		// "WHERE true" tells SQLite's parser that ON CONFLICT belongs to
		// the INSERT, not to a join in the SELECT.
		d.q.record = `INSERT INTO deliveries (app_id, message_id, installation_id, client_id, outcome, reason, provider_id, at)
			SELECT ?1, ?2, value ->> '$.i', value ->> '$.c', value ->> '$.o', value ->> '$.r', value ->> '$.p', value ->> '$.t'
			FROM json_each(?3) WHERE true
			ON CONFLICT (app_id, message_id, installation_id, client_id) DO UPDATE SET
				outcome = excluded.outcome, reason = excluded.reason, provider_id = excluded.provider_id, at = excluded.at
			WHERE deliveries.outcome NOT IN (?4, ?5)`
	}
	d.q.trace = db.Rebind(`SELECT installation_id, client_id, outcome, reason, provider_id, at FROM deliveries
		WHERE app_id = ? AND message_id = ? ORDER BY client_id, installation_id`)
	d.q.traceClients = db.Rebind(`SELECT installation_id, client_id, outcome, reason, provider_id, at FROM deliveries
		WHERE app_id = ? AND message_id = ? AND client_id ` + db.InList() + ` ORDER BY client_id, installation_id`)
	d.q.prune = db.Rebind(`DELETE FROM deliveries WHERE at < ?`)
	return d
}

// recordRow is a Delivery as the record statement reads it from JSON.
type recordRow struct {
	I string `json:"i"`
	C string `json:"c"`
	O string `json:"o"`
	R string `json:"r"`
	P string `json:"p"`
	T any    `json:"t"`
}

// Record stores the outcomes of one message in one statement, committed
// with those of the other jobs recording at the same time. A row
// replaces the earlier record of the same device (or recipient), except
// that a device that accepted the message (delivered, env_corrected) keeps
// that record: a later failure cannot make it receive the message again.
func (d *Deliveries) Record(ctx context.Context, app, messageID string, rows []Delivery) error {
	if len(rows) == 0 {
		return nil
	}
	type key struct{ i, c string }
	byKey := make(map[key]int, len(rows))
	batch := make([]recordRow, 0, len(rows))
	for n, r := range rows {
		if r.Outcome == "" {
			return fmt.Errorf("installations: record %s: row %d: outcome is required", messageID, n)
		}
		if r.InstallationID == "" && r.ClientID == "" {
			return fmt.Errorf("installations: record %s: row %d: installation_id or client_id is required", messageID, n)
		}
		at := r.At
		if at.IsZero() {
			at = time.Now()
		}
		rr := recordRow{I: r.InstallationID, C: r.ClientID, O: r.Outcome, R: clean(r.Reason, MaxReasonLen), P: clean(r.ProviderID, MaxReasonLen), T: d.jsonTime(at)}
		// PostgreSQL refuses to update one row twice in a statement, so a
		// batch holds each key once, merged by the same rule as the table.
		k := key{r.InstallationID, r.ClientID}
		if j, ok := byKey[k]; ok {
			if !accepted(batch[j].O) {
				batch[j] = rr
			}
			continue
		}
		byKey[k] = len(batch)
		batch = append(batch, rr)
	}
	// Two workers recording overlapping rows lock them in the same order,
	// so they queue instead of deadlocking.
	slices.SortFunc(batch, func(a, b recordRow) int {
		return cmp.Or(strings.Compare(a.I, b.I), strings.Compare(a.C, b.C))
	})
	b, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("installations: record %s: %w", messageID, err)
	}
	st, err := d.db.Prepared(ctx, d.q.record)
	if err != nil {
		return fmt.Errorf("installations: record %s: %w", messageID, err)
	}
	err = d.group.do(ctx, d.db, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, st).ExecContext(ctx, app, messageID, string(b), string(outcome.Delivered), string(outcome.EnvCorrected))
		return err
	})
	if err != nil {
		return fmt.Errorf("installations: record %s: %w", messageID, err)
	}
	return nil
}

// jsonTime is t as the record statement reads it: Unix milliseconds for
// SQLite's INTEGER column, RFC 3339 for PostgreSQL's timestamptz.
func (d *Deliveries) jsonTime(t time.Time) any {
	v := d.db.Time(t)
	if t, ok := v.(time.Time); ok {
		return t.Format(time.RFC3339Nano)
	}
	return v
}

// Trace returns everything recorded for a message, ordered by client and
// installation: what an operator reads to learn why a push failed.
func (d *Deliveries) Trace(ctx context.Context, app, messageID string) ([]Delivery, error) {
	return d.trace(ctx, messageID, d.q.trace, app, messageID)
}

// TraceClients is Trace for the rows of clients only: what one job of a
// message split into child jobs has to know of it.
func (d *Deliveries) TraceClients(ctx context.Context, app, messageID string, clients []string) ([]Delivery, error) {
	return d.trace(ctx, messageID, d.q.traceClients, app, messageID, d.db.List(clients))
}

func (d *Deliveries) trace(ctx context.Context, messageID, query string, args ...any) ([]Delivery, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("installations: trace %s: %w", messageID, err)
	}
	defer rows.Close()
	var list []Delivery
	for rows.Next() {
		var r Delivery
		if err := rows.Scan(&r.InstallationID, &r.ClientID, &r.Outcome, &r.Reason, &r.ProviderID, storage.ScanTime(&r.At)); err != nil {
			return nil, fmt.Errorf("installations: trace %s: %w", messageID, err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("installations: trace %s: %w", messageID, err)
	}
	return list, nil
}

// Prune deletes records older than before and reports how many went.
// DeliveryPruner calls it with a cut-off its retention ago, which a
// message's records must outlive (database.delivery_retention).
func (d *Deliveries) Prune(ctx context.Context, before time.Time) (int64, error) {
	if before.IsZero() {
		return 0, errors.New("installations: prune: a cut-off time is required")
	}
	res, err := d.db.ExecContext(ctx, d.q.prune, d.db.Time(before))
	if err != nil {
		return 0, fmt.Errorf("installations: prune deliveries: %w", err)
	}
	return res.RowsAffected()
}
