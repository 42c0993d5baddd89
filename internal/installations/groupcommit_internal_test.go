package installations

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// countingDB counts the transactions run through it.
type countingDB struct {
	*storage.DB
	txs atomic.Int64
}

func (c *countingDB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	c.txs.Add(1)
	return c.DB.Tx(ctx, fn)
}

// Statements that arrive while a commit runs are committed together in
// the next one; a statement that fails fails alone, and the others of its
// batch still commit.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := &countingDB{DB: storagetest.SQLite(t)}
	storagetest.Exec(t, db.DB, "CREATE TABLE t (x INTEGER PRIMARY KEY)")
	var g groupCommit
	boom := errors.New("boom")

	run := func(n, failing int) []error {
		errs := make([]error, n)
		release := make(chan struct{})
		var wg sync.WaitGroup
		// The first statement holds its commit until the others have
		// queued behind it.
		wg.Go(func() {
			errs[0] = g.do(ctx, db, func(ctx context.Context, tx *sql.Tx) error {
				<-release
				_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", 0+n*10)
				return err
			})
		})
		for deadline := time.Now().Add(5 * time.Second); ; {
			g.mu.Lock()
			busy := g.busy
			g.mu.Unlock()
			if busy {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first statement never began its commit")
			}
			time.Sleep(time.Millisecond)
		}
		for i := 1; i < n; i++ {
			wg.Go(func() {
				errs[i] = g.do(ctx, db, func(ctx context.Context, tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", i+n*10); err != nil {
						return err
					}
					if i == failing {
						return boom
					}
					return nil
				})
			})
		}
		for deadline := time.Now().Add(5 * time.Second); ; {
			g.mu.Lock()
			queued := len(g.queue)
			g.mu.Unlock()
			if queued == n-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d statements queued", queued, n-1)
			}
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		return errs
	}

	errs := run(20, -1)
	for i, err := range errs {
		if err != nil {
			t.Errorf("statement %d: %v", i, err)
		}
	}
	if n := db.txs.Load(); n != 2 {
		t.Errorf("20 statements took %d transactions, want 2: the first, then the 19 that queued behind it", n)
	}

	db.txs.Store(0)
	errs = run(10, 4)
	for i, err := range errs {
		if (err != nil) != (i == 4) || (i == 4 && !errors.Is(err, boom)) {
			t.Errorf("statement %d: %v", i, err)
		}
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE x >= 100 AND x < 200").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 9 {
		t.Errorf("%d rows committed of the second round, want 9: all but the failing statement's", rows)
	}
	if g.busy || len(g.queue) != 0 {
		t.Errorf("after the commits: busy %v, %d queued", g.busy, len(g.queue))
	}
}
