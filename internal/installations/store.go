package installations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pushd/pushd/internal/storage"
)

// MaxReasonLen bounds a stored provider reason; error texts can be long.
const MaxReasonLen = 1024

// Store keeps installations in the database.
type Store struct {
	db  *storage.DB
	now func() time.Time
	q   queries
}

// queries are the store's statements, in the database's dialect.
type queries struct {
	lockToken, deleteToken, upsert, get, del, listByClient, validForClients string
	markInvalid, setAPNsEnv, incrementBadges, resetBadge, lastInvalid       string
}

const columns = `installation_id, app_id, client_id, provider, platform, token, apns_env, apns_topic, locale, timezone,
	badge, valid, invalid_reason, invalid_at, created_at, updated_at`

// NewStore returns a store over db, which must be migrated.
func NewStore(db *storage.DB) *Store {
	inList := db.InList()
	r := db.Rebind
	s := &Store{db: db, now: time.Now, q: queries{
		deleteToken: r(`DELETE FROM installations
			WHERE app_id = ? AND provider = ? AND token = ? AND installation_id <> ?`),
		// The badge counts pushes the device has not opened; a new token
		// or a new client is a fresh start. An empty apns_env keeps the
		// environment a push proved for the same token, so re-registering
		// at each launch does not undo the correction.
		upsert: r(`INSERT INTO installations (` + columns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, TRUE, '', NULL, ?, ?)
			ON CONFLICT (app_id, installation_id) DO UPDATE SET
				client_id = excluded.client_id,
				provider = excluded.provider,
				platform = excluded.platform,
				token = excluded.token,
				apns_env = CASE
					WHEN excluded.apns_env = '' AND installations.provider = excluded.provider AND installations.token = excluded.token
					THEN installations.apns_env ELSE excluded.apns_env END,
				apns_topic = excluded.apns_topic,
				locale = excluded.locale,
				timezone = excluded.timezone,
				badge = CASE
					WHEN installations.provider = excluded.provider AND installations.token = excluded.token AND installations.client_id = excluded.client_id
					THEN installations.badge ELSE 0 END,
				valid = TRUE,
				invalid_reason = '',
				invalid_at = NULL,
				updated_at = excluded.updated_at
			RETURNING ` + columns),
		get: r(`SELECT ` + columns + ` FROM installations WHERE app_id = ? AND installation_id = ?`),
		del: r(`DELETE FROM installations WHERE app_id = ? AND installation_id = ?`),
		listByClient: r(`SELECT ` + columns + ` FROM installations
			WHERE app_id = ? AND client_id = ? ORDER BY created_at, installation_id`),
		// "valid = TRUE" spelled exactly as in the partial index, or SQLite
		// will not use it.
		validForClients: r(`SELECT ` + columns + ` FROM installations
			WHERE app_id = ? AND valid = TRUE AND client_id ` + inList + `
			ORDER BY client_id, installation_id`),
		// "valid = FALSE" spelled exactly as in the partial index. The
		// newest first, so the first row of a client is its last death.
		lastInvalid: r(`SELECT ` + columns + ` FROM installations
			WHERE app_id = ? AND valid = FALSE AND client_id ` + inList + `
			ORDER BY client_id, invalid_at DESC, installation_id`),
		markInvalid: r(`UPDATE installations SET valid = FALSE, invalid_reason = ?, invalid_at = ?, updated_at = ?
			WHERE app_id = ? AND provider = ? AND valid = TRUE AND token ` + inList),
		setAPNsEnv: r(`UPDATE installations SET apns_env = ?, updated_at = ?
			WHERE app_id = ? AND installation_id = ? AND provider = 'apns'`),
		incrementBadges: r(`UPDATE installations SET badge = badge + 1
			WHERE app_id = ? AND installation_id ` + inList + `
			RETURNING installation_id, badge`),
		resetBadge: r(`UPDATE installations SET badge = 0 WHERE app_id = ? AND client_id = ? AND badge <> 0`),
	}}
	if db.Dialect() == storage.Postgres {
		// Registrations of one token queue on a lock of their own.
		// Without it two of them both find no holder to delete, and the
		// second fails on the token's unique key; under a burst, retrying
		// that can lose again and again. SQLite needs none: its
		// transactions already run one at a time.
		s.q.lockToken = `SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2 || chr(10) || $3, 0))`
	}
	return s
}

// Upsert registers in, or updates the installation with its id, and
// returns the stored row.
//
// A token belongs to one client: any other installation of the app holding
// the same token is deleted, so a shared phone stops receiving the previous
// user's chats. Registering re-validates the installation: an app that
// presents a token was just handed it by the operating system, so it is
// live; if it is dead after all, the next push marks it again. The badge is
// kept while the token and client stay the same and starts at 0 otherwise;
// in.Badge is ignored. The platform is the one this registration names, or
// its provider's default: unlike apns_env, which only a push can prove, the
// app knows what it runs on every time it registers.
func (s *Store) Upsert(ctx context.Context, in Installation) (Installation, error) {
	if err := in.Validate(); err != nil {
		return Installation{}, err
	}
	in = normalize(in)
	now := s.db.Time(s.now())
	var out Installation
	var lock *sql.Stmt
	if s.q.lockToken != "" {
		var err error
		if lock, err = s.db.Prepared(ctx, s.q.lockToken); err != nil {
			return Installation{}, fmt.Errorf("installations: upsert %s: %w", in.ID, err)
		}
	}
	del, err := s.db.Prepared(ctx, s.q.deleteToken)
	if err != nil {
		return Installation{}, fmt.Errorf("installations: upsert %s: %w", in.ID, err)
	}
	upsert, err := s.db.Prepared(ctx, s.q.upsert)
	if err != nil {
		return Installation{}, fmt.Errorf("installations: upsert %s: %w", in.ID, err)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if lock != nil {
			if _, err := tx.StmtContext(ctx, lock).ExecContext(ctx, in.AppID, in.Provider, in.Token); err != nil {
				return err
			}
		}
		if _, err := tx.StmtContext(ctx, del).ExecContext(ctx, in.AppID, in.Provider, in.Token, in.ID); err != nil {
			return err
		}
		var err error
		out, err = scan(tx.StmtContext(ctx, upsert).QueryRowContext(ctx,
			in.ID, in.AppID, in.ClientID, in.Provider, in.Platform, in.Token, in.APNsEnv, in.APNsTopic, in.Locale, in.Timezone, now, now))
		return err
	})
	if err != nil {
		return Installation{}, fmt.Errorf("installations: upsert %s: %w", in.ID, err)
	}
	return out, nil
}

// Get returns one installation, or ErrNotFound.
func (s *Store) Get(ctx context.Context, app, id string) (Installation, error) {
	in, err := scan(s.db.QueryRowContext(ctx, s.q.get, app, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Installation{}, fmt.Errorf("installations: get %s: %w", id, err)
	}
	return in, nil
}

// Delete removes one installation, or returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, app, id string) error {
	res, err := s.db.ExecContext(ctx, s.q.del, app, id)
	if err == nil {
		err = notFoundIfNone(res)
	}
	if err != nil {
		return fmt.Errorf("installations: delete %s: %w", id, err)
	}
	return nil
}

// ListByClient returns all of a client's installations, valid or not,
// oldest first.
func (s *Store) ListByClient(ctx context.Context, app, client string) ([]Installation, error) {
	list, err := s.query(ctx, s.q.listByClient, app, client)
	if err != nil {
		return nil, fmt.Errorf("installations: list client %s: %w", client, err)
	}
	return list, nil
}

// ValidForClients returns the valid installations of all the given clients
// in one query, ordered by client and installation id.
func (s *Store) ValidForClients(ctx context.Context, app string, clients []string) ([]Installation, error) {
	if len(clients) == 0 {
		return nil, nil
	}
	list, err := s.query(ctx, s.q.validForClients, app, s.db.List(clients))
	if err != nil {
		return nil, fmt.Errorf("installations: valid for %d clients: %w", len(clients), err)
	}
	return list, nil
}

// LastInvalid returns, in one query, the most recently invalidated
// installation of each of the given clients that has one: for a recipient
// without a valid device, when and why its last device died. Clients with
// none are absent.
func (s *Store) LastInvalid(ctx context.Context, app string, clients []string) (map[string]Installation, error) {
	out := make(map[string]Installation)
	if len(clients) == 0 {
		return out, nil
	}
	list, err := s.query(ctx, s.q.lastInvalid, app, s.db.List(clients))
	if err != nil {
		return nil, fmt.Errorf("installations: last invalid of %d clients: %w", len(clients), err)
	}
	for _, in := range list {
		if _, seen := out[in.ClientID]; !seen {
			out[in.ClientID] = in
		}
	}
	return out, nil
}

// MarkInvalid records that the provider rejected tokens of one provider for
// one reason, and when, so that nothing is sent to them again until the
// device registers anew; one statement for the whole list, however long. It
// reports how many installations it invalidated: a token unknown or already
// invalid counts 0, so that a token is counted once however many workers
// saw it fail.
func (s *Store) MarkInvalid(ctx context.Context, app, provider, reason string, tokens []string, at time.Time) (int64, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	if Provider(provider) == APNs {
		lower := make([]string, len(tokens))
		for i, t := range tokens {
			lower[i] = strings.ToLower(t)
		}
		tokens = lower
	}
	res, err := s.db.ExecContext(ctx, s.q.markInvalid, clean(reason, MaxReasonLen), s.db.Time(at), s.db.Time(s.now()), app, provider, s.db.List(tokens))
	if err != nil {
		return 0, fmt.Errorf("installations: mark %d %s tokens invalid: %w", len(tokens), provider, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("installations: mark %d %s tokens invalid: %w", len(tokens), provider, err)
	}
	return n, nil
}

// SetAPNsEnv records the APNs environment a push proved an installation's
// token belongs to. ErrNotFound when there is no such APNs installation.
func (s *Store) SetAPNsEnv(ctx context.Context, app, id, env string) error {
	if env != Production && env != Development {
		return fmt.Errorf("installations: set apns_env of %s: %q is not production or development", id, env)
	}
	res, err := s.db.ExecContext(ctx, s.q.setAPNsEnv, env, s.db.Time(s.now()), app, id)
	if err == nil {
		err = notFoundIfNone(res)
	}
	if err != nil {
		return fmt.Errorf("installations: set apns_env of %s: %w", id, err)
	}
	return nil
}

// IncrementBadges adds one to the badge of each installation, atomically
// and in one statement, and returns the new numbers by installation id.
// Ids that do not exist are absent from the result.
func (s *Store) IncrementBadges(ctx context.Context, app string, ids []string) (map[string]int, error) {
	out := make(map[string]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	st, err := s.db.Prepared(ctx, s.q.incrementBadges)
	if err != nil {
		return nil, fmt.Errorf("installations: increment %d badges: %w", len(ids), err)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		clear(out)
		rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, app, s.db.List(ids))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			out[id] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("installations: increment %d badges: %w", len(ids), err)
	}
	return out, nil
}

// ResetBadge sets the badge of all a client's installations to 0; apps
// call it when opened. A client without installations is not an error.
func (s *Store) ResetBadge(ctx context.Context, app, client string) error {
	if _, err := s.db.ExecContext(ctx, s.q.resetBadge, app, client); err != nil {
		return fmt.Errorf("installations: reset badge of %s: %w", client, err)
	}
	return nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]Installation, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []Installation
	for rows.Next() {
		in, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, in)
	}
	return list, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Installation, error) {
	var in Installation
	err := row.Scan(&in.ID, &in.AppID, &in.ClientID, &in.Provider, &in.Platform, &in.Token, &in.APNsEnv, &in.APNsTopic, &in.Locale, &in.Timezone,
		&in.Badge, &in.Valid, &in.InvalidReason, storage.ScanTime(&in.InvalidAt), storage.ScanTime(&in.CreatedAt), storage.ScanTime(&in.UpdatedAt))
	if in.Platform == "" {
		// Written by a pushd from before platforms, during a rolling
		// upgrade (PostgreSQL's migration 002).
		in.Platform = DefaultPlatform(in.Provider)
	}
	return in, err
}

func notFoundIfNone(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// clean makes s storable in either dialect: valid UTF-8, no NUL (which
// PostgreSQL text refuses), at most maxLen bytes cut on a rune boundary.
func clean(s string, maxLen int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
