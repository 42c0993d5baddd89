package mute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushd/pushd/internal/storage"
)

// Store keeps mutes in the database.
type Store struct {
	db *storage.DB
	q  struct{ set, del, list, active, prune string }
}

// NewStore returns a store over db, which must be migrated.
func NewStore(db *storage.DB) *Store {
	s := &Store{db: db}
	inList := db.InList()
	// Re-muting changes the terms but keeps when the mute began, unless
	// the stored one had run out: then this is a new mute.
	s.q.set = db.Rebind(`INSERT INTO mutes (app_id, client_id, conversation_id, until, allow_mentions, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (app_id, client_id, conversation_id) DO UPDATE SET
			until = excluded.until,
			allow_mentions = excluded.allow_mentions,
			created_at = CASE WHEN mutes.until <= excluded.created_at THEN excluded.created_at ELSE mutes.created_at END`)
	s.q.del = db.Rebind(`DELETE FROM mutes WHERE app_id = ? AND client_id = ? AND conversation_id = ?`)
	s.q.list = db.Rebind(`SELECT app_id, client_id, conversation_id, until, allow_mentions, created_at FROM mutes
		WHERE app_id = ? AND client_id = ? AND (until IS NULL OR until > ?)
		ORDER BY conversation_id`)
	s.q.active = db.Rebind(`SELECT app_id, client_id, conversation_id, until, allow_mentions, created_at FROM mutes
		WHERE app_id = ? AND conversation_id = ? AND (until IS NULL OR until > ?) AND client_id ` + inList)
	s.q.prune = db.Rebind(`DELETE FROM mutes WHERE until <= ?`)
	return s
}

// Set mutes a conversation for a client, or changes the terms of an
// existing mute. now is the time the request is judged at.
func (s *Store) Set(ctx context.Context, m Mute, now time.Time) error {
	if err := m.Validate(now); err != nil {
		return err
	}
	var until any
	if m.Until != nil {
		until = s.db.Time(*m.Until)
	}
	_, err := s.db.ExecContext(ctx, s.q.set, m.AppID, m.ClientID, m.ConversationID, until, m.AllowMentions, s.db.Time(now))
	if err != nil {
		return fmt.Errorf("mute: set %s/%s: %w", m.ClientID, m.ConversationID, err)
	}
	return nil
}

// Delete unmutes, or returns ErrNotFound. An expired mute that is still
// stored (Prune has not yet deleted it) is deleted like any other.
func (s *Store) Delete(ctx context.Context, app, client, conv string) error {
	res, err := s.db.ExecContext(ctx, s.q.del, app, client, conv)
	if err != nil {
		return fmt.Errorf("mute: delete %s/%s: %w", client, conv, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("mute: delete %s/%s: %w", client, conv, err)
	}
	if n == 0 {
		return fmt.Errorf("mute: delete %s/%s: %w", client, conv, ErrNotFound)
	}
	return nil
}

// List returns a client's mutes in force at now, by conversation id.
func (s *Store) List(ctx context.Context, app, client string, now time.Time) ([]Mute, error) {
	var list []Mute
	err := s.query(ctx, func(m Mute) { list = append(list, m) }, s.q.list, app, client, s.db.Time(now))
	if err != nil {
		return nil, fmt.Errorf("mute: list %s: %w", client, err)
	}
	return list, nil
}

// Active returns, in one query, the mutes of conversation conv in force at
// now among clients, by client id. Clients without one are absent.
func (s *Store) Active(ctx context.Context, app, conv string, clients []string, now time.Time) (map[string]Mute, error) {
	out := make(map[string]Mute)
	if len(clients) == 0 {
		return out, nil
	}
	err := s.query(ctx, func(m Mute) { out[m.ClientID] = m }, s.q.active, app, conv, s.db.Time(now), s.db.List(clients))
	if err != nil {
		return nil, fmt.Errorf("mute: active in %s for %d clients: %w", conv, len(clients), err)
	}
	return out, nil
}

// Prune deletes every app's mutes that ended at or before now and reports
// how many went. List and Active ignore such mutes already, so pruning
// changes no answer: it keeps the table to the mutes that can still matter.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	if now.IsZero() {
		return 0, errors.New("mute: prune: a time is required")
	}
	res, err := s.db.ExecContext(ctx, s.q.prune, s.db.Time(now))
	if err != nil {
		return 0, fmt.Errorf("mute: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mute: prune: %w", err)
	}
	return n, nil
}

func (s *Store) query(ctx context.Context, each func(Mute), query string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m Mute
		if err := rows.Scan(&m.AppID, &m.ClientID, &m.ConversationID, storage.ScanNullTime(&m.Until), &m.AllowMentions, storage.ScanTime(&m.CreatedAt)); err != nil {
			return err
		}
		each(m)
	}
	return rows.Err()
}
