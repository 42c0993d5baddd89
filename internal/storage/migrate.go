package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// ErrSchemaTooNew is returned by [DB.Migrate] when the database has been
// migrated by a newer pushd than this one: running on would write rows the
// newer schema does not expect.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migration is one schema change, from migrations/<dialect>/NNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the dialect's migrations in the order they apply.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("storage: migrations for %s: %w", d, err)
	}
	var ms []Migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, label, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("storage: migration %s/%s: want NNN_name.sql", dir, e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("storage: migration %s: %w", e.Name(), err)
		}
		// ReadDir sorts by name, and the numbers are zero-padded, so a
		// repeated or misnumbered version shows up as a step backwards.
		if len(ms) > 0 && v <= ms[len(ms)-1].Version {
			return nil, fmt.Errorf("storage: migration %s/%s: version %d is not after %d", dir, e.Name(), v, ms[len(ms)-1].Version)
		}
		ms = append(ms, Migration{Version: v, Name: label, SQL: string(body)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("storage: no migrations for %s", d)
	}
	return ms, nil
}

// Migrate applies the migrations the database lacks, each in its own
// transaction, and records them in schema_migrations. Running it again is a
// no-op, and several processes may run it at once: on PostgreSQL an
// advisory lock serializes them, on SQLite the write lock does.
func (db *DB) Migrate(ctx context.Context) error {
	return db.migrate(ctx, 0)
}

// migrate is Migrate, stopping after version upTo unless it is 0: tests
// build a database as an older pushd left it, to check what the next
// migration makes of its rows.
func (db *DB) migrate(ctx context.Context, upTo int) error {
	ms, err := Migrations(db.dialect)
	if err != nil {
		return err
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.createMigrationsTable())
		return err
	}); err != nil {
		return fmt.Errorf("storage: migrate: create schema_migrations: %w", err)
	}
	latest := ms[len(ms)-1].Version
	current, err := db.Version(ctx)
	if err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	if current > latest {
		return fmt.Errorf("storage: migrate: database is at version %d, this binary knows up to %d: %w", current, latest, ErrSchemaTooNew)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		if upTo > 0 && m.Version > upTo {
			break
		}
		if err := db.apply(ctx, m); err != nil {
			return fmt.Errorf("storage: migrate: %03d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// Version reports the newest migration applied, 0 for a fresh database.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("storage: version: %w", err)
	}
	return int(v.Int64), nil
}

func (db *DB) apply(ctx context.Context, m Migration) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		// Another process may have applied it while this one waited.
		var n int
		err := tx.QueryRowContext(ctx, db.Rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.Version).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.Rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.Version, m.Name, db.Time(time.Now()))
		return err
	})
}

// lockMigrations holds PostgreSQL's migration lock until tx ends; the key
// includes the schema, so databases sharing a server do not wait on each
// other. SQLite needs none: tx began with the write lock.
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('pushd.migrate.' || current_schema()))")
	return err
}

func (db *DB) createMigrationsTable() string {
	if db.dialect == Postgres {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`
}
