package storage

import (
	"context"
	"database/sql"
	"errors"
)

// Statements are prepared once per DB and kept: parsing and planning a
// statement cost SQLite about a quarter of a direct-message job's CPU,
// more than running it. database/sql prepares a kept statement again on
// each connection that first runs it, and closes it with the DB.
//
// QueryContext, QueryRowContext and ExecContext shadow *sql.DB's with the
// prepared form; a statement must therefore hold one SQL statement, as
// every store's does (migrations, which hold several, run on a *sql.Tx).
// A transaction runs a kept statement with tx.StmtContext(ctx, st), st
// from Prepared called before the transaction begins: preparing takes a
// connection of its own, which a transaction holding one must not wait
// for (with every connection in a transaction, none would come).

// Prepared returns query's kept statement, preparing it on first use.
func (db *DB) Prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if kept, loaded := db.stmts.LoadOrStore(query, st); loaded {
		// Another goroutine prepared it first: keep one.
		st.Close()
		return kept.(*sql.Stmt), nil
	}
	return st, nil
}

// QueryContext runs query, prepared once, with args.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.Prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query, prepared once, with args, for one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := db.Prepared(ctx, query)
	if err != nil {
		// *sql.Row carries its error only from database/sql itself: let
		// it prepare and report the same failure.
		return db.DB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// ExecContext runs query, prepared once, with args.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := db.Prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Close closes the kept statements and the database.
func (db *DB) Close() error {
	var errs []error
	db.stmts.Range(func(k, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		db.stmts.Delete(k)
		return true
	})
	return errors.Join(append(errs, db.DB.Close())...)
}
