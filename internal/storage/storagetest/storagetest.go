// Package storagetest opens throwaway, migrated databases of both dialects,
// so that one conformance suite runs against SQLite and PostgreSQL alike.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/testenv"
)

// DefaultPostgresDSN is the server the PostgreSQL tests use unless
// PUSHD_TEST_POSTGRES_DSN names another.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Opener opens a fresh, migrated database that lives as long as the test.
type Opener func(t testing.TB) *storage.DB

// Each runs fn once per dialect, as subtests named "sqlite" and "postgres".
func Each(t *testing.T, fn func(t *testing.T, open Opener)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres) })
}

// Case is one test of a conformance suite: it gets a fresh, migrated
// database of the dialect under test.
type Case struct {
	Name string
	Test func(t *testing.T, db *storage.DB)
}

// Suite runs every case, in parallel, each on its own database from open:
// one suite, called once per dialect, so that what passes on SQLite must
// pass on PostgreSQL.
func Suite(t *testing.T, open Opener, cases []Case) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Test(t, open(t))
		})
	}
}

// SQLite opens a migrated SQLite database in a file of the test's temporary
// directory.
func SQLite(t testing.TB) *storage.DB {
	t.Helper()
	return sqliteDB(t, true)
}

// EmptySQLite is [SQLite] without the migrations, for tests of migrating.
func EmptySQLite(t testing.TB) *storage.DB {
	t.Helper()
	return sqliteDB(t, false)
}

func sqliteDB(t testing.TB, migrate bool) *storage.DB {
	t.Helper()
	db := open(t, storage.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "data", "pushd.db")}, migrate)
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN is the server PostgreSQL tests run against.
func PostgresDSN() string {
	if dsn := os.Getenv("PUSHD_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// Postgres creates a schema of the test's own on the server [PostgresDSN]
// names, opens a migrated database confined to it, and drops the schema when
// the test ends, so that parallel tests and runs never see each other's rows.
// When the server cannot be reached the test is skipped, unless CI=true:
// CI must not pass by skipping.
func Postgres(t testing.TB) *storage.DB {
	t.Helper()
	return postgresDB(t, true)
}

// EmptyPostgres is [Postgres] without the migrations, for tests of
// migrating.
func EmptyPostgres(t testing.TB) *storage.DB {
	t.Helper()
	return postgresDB(t, false)
}

func postgresDB(t testing.TB, migrate bool) *storage.DB {
	t.Helper()
	db := open(t, storage.Config{Driver: "postgres", DSN: storage.DSN(PostgresSchemaDSN(t))}, migrate)
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresSchemaDSN creates an empty schema of the test's own, dropped when
// the test ends, and returns a DSN confined to it, for tests that hand a
// DSN to pushd itself. Unreachable servers skip the test, or fail it in CI.
func PostgresSchemaDSN(t testing.TB) string {
	t.Helper()
	dsn := PostgresDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := storage.Open(ctx, storage.Config{Driver: "postgres", DSN: storage.DSN(dsn), MaxOpenConns: 2})
	if err != nil {
		testenv.Need(t, "PostgreSQL at "+storage.DSN(dsn).String(), err, "start PostgreSQL or set PUSHD_TEST_POSTGRES_DSN")
	}
	t.Cleanup(func() { admin.Close() })

	// Lower case, which PostgreSQL folds unquoted names to anyway.
	schema := "pushd_test_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(dsn, schema)
}

func open(t testing.TB, cfg storage.Config, migrate bool) *storage.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Driver, err)
	}
	if !migrate {
		return db
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		t.Fatalf("migrate %s: %v", cfg.Driver, err)
	}
	return db
}

// withSearchPath confines every connection of dsn to schema; pgx passes
// unknown parameters to the server as run-time settings.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Exec runs statements on db, failing the test on error; for fixtures.
func Exec(t testing.TB, db *storage.DB, query string, args ...any) sql.Result {
	t.Helper()
	res, err := db.ExecContext(context.Background(), db.Rebind(query), args...)
	if err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
	return res
}
