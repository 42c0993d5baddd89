package installations

import (
	"context"
	"database/sql"
	"sync"
)

// groupCommit runs the record statements of concurrent jobs in one
// transaction instead of one each. Every job in flight ends in a write of
// its delivery rows; on SQLite those writers queue on one lock, each
// waiting in the busy handler's sleeps of up to 100 ms, and on PostgreSQL
// each commit waits for its own WAL flush. Batched, a busy pushd commits
// once for all the jobs that finished while the previous commit ran, and
// an idle one commits at once: nothing waits for a timer.
//
// The first caller to find no commit running leads: it takes every queued
// statement and commits them. Callers that arrive meanwhile queue; when
// the leader is done it hands the lead to the first of them, so no caller
// commits for others for longer than one round.
type groupCommit struct {
	mu    sync.Mutex
	queue []*groupStmt
	busy  bool
}

// txRunner runs a function in a transaction: *storage.DB.
type txRunner interface {
	Tx(context.Context, func(*sql.Tx) error) error
}

// groupStmt is one caller's statement and, once committed, its result.
type groupStmt struct {
	exec func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{} // closed when committed or failed
	lead chan struct{} // closed to make this caller the next leader
}

// do runs exec in a transaction shared with the other callers' and returns
// exec's own outcome: a statement that fails fails alone.
func (g *groupCommit) do(ctx context.Context, db txRunner, exec func(ctx context.Context, tx *sql.Tx) error) error {
	s := &groupStmt{exec: exec, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, s)
	if g.busy {
		g.mu.Unlock()
		select {
		case <-s.done:
			return s.err
		case <-s.lead:
		}
		g.mu.Lock()
	}
	g.busy = true
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	commit(ctx, db, batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead) // busy stays true: the lead passes on
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return s.err
}

// commit runs batch in one transaction. When that fails, each statement is
// run in a transaction of its own, so that one statement's error is its
// caller's alone and the others still commit.
func commit(ctx context.Context, db txRunner, batch []*groupStmt) {
	defer func() {
		for _, s := range batch {
			close(s.done)
		}
	}()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for _, s := range batch {
			if err := s.exec(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, s := range batch {
			s.err = err
		}
		return
	}
	for _, s := range batch {
		s.err = db.Tx(ctx, func(tx *sql.Tx) error { return s.exec(ctx, tx) })
	}
}
