package storage_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []storage.Config{
		{Driver: "mysql", DSN: "x"},
		{Driver: "sqlite"},
		{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "a?b.db")},
		{Driver: "postgres"},
	} {
		if db, err := storage.Open(ctx, cfg); err == nil {
			db.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestSQLiteMemory(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{Driver: "sqlite", Path: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Every query must see the one in-memory database the migration built.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := db.ExecContext(ctx, "SELECT COUNT(*) FROM installations"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "pushd.db")
	db, err := storage.Open(ctx, storage.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != storage.SQLite {
		t.Errorf("Dialect() = %q", db.Dialect())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
		"busy_timeout": "10000",
	} {
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// Transactions that read and then write must queue behind each other
// rather than fail with SQLITE_BUSY: that is what _txlock=immediate buys.
func TestSQLiteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db := storagetest.SQLite(t)
	storagetest.Exec(t, db, "CREATE TABLE counter (n INTEGER NOT NULL)")
	storagetest.Exec(t, db, "INSERT INTO counter (n) VALUES (0)")
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				errs <- db.Tx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT n FROM counter").Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, "UPDATE counter SET n = ?", n+1)
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT n FROM counter").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != workers*each {
		t.Errorf("counter = %d, want %d", n, workers*each)
	}
}

func TestMigrate(t *testing.T) {
	for _, tc := range []struct {
		name string
		open storagetest.Opener
	}{
		{"sqlite", storagetest.EmptySQLite},
		{"postgres", storagetest.EmptyPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			ms, err := storage.Migrations(db.Dialect())
			if err != nil {
				t.Fatal(err)
			}
			latest := ms[len(ms)-1].Version

			// Several processes starting at once each run Migrate.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent Migrate: %v", err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if v, err := db.Version(ctx); err != nil || v != latest {
				t.Fatalf("Version = %d, %v; want %d", v, err, latest)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(ms) {
				t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
			}
			for _, table := range []string{"installations", "mutes", "deliveries"} {
				if _, err := db.ExecContext(ctx, "SELECT COUNT(*) FROM "+table); err != nil {
					t.Errorf("table %s: %v", table, err)
				}
			}

			// A newer pushd migrated this database: refuse to run on it.
			storagetest.Exec(t, db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				latest+1, "from_the_future", db.Time(time.Now()))
			if err := db.Migrate(ctx); !errors.Is(err, storage.ErrSchemaTooNew) {
				t.Errorf("Migrate on a newer schema = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

func TestMigrationsBothDialects(t *testing.T) {
	lite, err := storage.Migrations(storage.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := storage.Migrations(storage.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d: every change needs both", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Version != pg[i].Version || lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %03d_%s, postgres %03d_%s", i, lite[i].Version, lite[i].Name, pg[i].Version, pg[i].Name)
		}
	}
}

func TestTime(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, open storagetest.Opener) {
		ctx := context.Background()
		db := open(t)
		in := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))
		var got time.Time
		var null *time.Time
		q := "SELECT ?, NULL"
		if db.Dialect() == storage.Postgres {
			q = "SELECT ?::timestamptz, NULL::timestamptz"
		}
		if err := db.QueryRowContext(ctx, db.Rebind(q), db.Time(in)).Scan(storage.ScanTime(&got), storage.ScanNullTime(&null)); err != nil {
			t.Fatal(err)
		}
		want := in.UTC().Truncate(time.Millisecond)
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("time read back as %v, want %v", got, want)
		}
		if null != nil {
			t.Errorf("NULL read back as %v", null)
		}
		if db.Time(time.Time{}) != nil {
			t.Errorf("Time(zero) = %v, want nil", db.Time(time.Time{}))
		}
	})
}

func TestTxRollsBack(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, open storagetest.Opener) {
		ctx := context.Background()
		db := open(t)
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO mutes (app_id, client_id, conversation_id, allow_mentions, created_at) VALUES (?, ?, ?, ?, ?)"),
				"a", "c", "v", false, db.Time(time.Now())); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx = %v, want boom", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mutes").Scan(&n); err != nil || n != 0 {
			t.Errorf("after rollback: %d rows, %v", n, err)
		}
	})
}

// Installations registered before 002 get the platform their provider
// implies, and from then on the database refuses an APNs device that names
// another platform than iOS, whichever code writes it.
func TestMigrateInstallationPlatform(t *testing.T) {
	for _, tc := range []struct {
		name string
		open storagetest.Opener
	}{
		{"sqlite", storagetest.EmptySQLite},
		{"postgres", storagetest.EmptyPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			if err := db.MigrateTo(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if v, err := db.Version(ctx); err != nil || v != 1 {
				t.Fatalf("Version = %d, %v; want 1", v, err)
			}
			now := db.Time(time.Now())
			insert := "INSERT INTO installations (app_id, installation_id, client_id, provider, token, apns_env, valid, badge, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
			storagetest.Exec(t, db, insert, "default", "iphone", "alice", "apns", "aa", "development", true, 3, now, now)
			storagetest.Exec(t, db, insert, "default", "pixel", "alice", "fcm", "f1", "", false, 0, now, now)
			storagetest.Exec(t, db, insert, "chat", "iphone", "bob", "apns", "bb", "", true, 0, now, now)

			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			type row struct {
				app, id, platform, env string
				valid                  bool
				badge                  int
			}
			rows, err := db.QueryContext(ctx, "SELECT app_id, installation_id, platform, apns_env, valid, badge FROM installations ORDER BY app_id, installation_id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.app, &r.id, &r.platform, &r.env, &r.valid, &r.badge); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			want := []row{
				{"chat", "iphone", "ios", "", true, 0},
				{"default", "iphone", "ios", "development", true, 3},
				{"default", "pixel", "android", "", false, 0},
			}
			if !slices.Equal(got, want) {
				t.Errorf("after 002:\n%+v\nwant\n%+v", got, want)
			}

			// A row that names no platform is what a pushd from before
			// 002 writes. PostgreSQL, which several pushd share during a
			// rolling upgrade, keeps it as '' (the store reads the
			// provider's default) and takes an APNs one; SQLite, which
			// one process owns, makes it android and refuses an APNs one.
			storagetest.Exec(t, db, insert, "default", "pixel-2", "carol", "fcm", "f2", "", true, 0, now, now)
			blank := "android"
			if tc.name == "postgres" {
				blank = ""
				storagetest.Exec(t, db, insert, "default", "iphone-old", "carol", "apns", "dd", "", true, 0, now, now)
			}
			var platform string
			if err := db.QueryRowContext(ctx, "SELECT platform FROM installations WHERE installation_id = 'pixel-2'").Scan(&platform); err != nil || platform != blank {
				t.Errorf("FCM row without a platform: %q, %v; want %q", platform, err, blank)
			}
			withPlatform := "INSERT INTO installations (app_id, installation_id, client_id, provider, platform, token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
			bads := []struct {
				query string
				args  []any
			}{
				{withPlatform, []any{"default", "ipad", "carol", "apns", "android", "cc", now, now}},
				{withPlatform, []any{"default", "ipad", "carol", "fcm", "windows", "cc", now, now}},
			}
			if tc.name == "sqlite" {
				bads = append(bads, struct {
					query string
					args  []any
				}{insert, []any{"default", "ipad", "carol", "apns", "cc", "", true, 0, now, now}})
			}
			for _, bad := range bads {
				if _, err := db.ExecContext(ctx, db.Rebind(bad.query), bad.args...); err == nil {
					t.Errorf("insert %v succeeded", bad.args)
				}
			}
			// The dispatcher's index survives.
			if tc.name == "sqlite" {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'installations_valid_by_client'").Scan(&n); err != nil || n != 1 {
					t.Errorf("installations_valid_by_client: %d, %v", n, err)
				}
			}
		})
	}
}

// A DSN shows which server and database, never the password, however it
// is printed.
func TestDSNRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"":                                       "",
		"postgres://u:pw@h:5432/db":              "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":                      "postgres://u@h/db",
		"postgresql:///db?host=/tmp&password=pw": "postgresql:///db?host=%2Ftmp&password=xxxxx",
		"postgres://u:p%zzw@h/db":                "postgres://xxxxx",
		"host=h user=u password=pw dbname=db":    "host=h user=u password=xxxxx dbname=db",
		"host=h password='p w\\' x' dbname=db":   "host=h password=xxxxx dbname=db",
		"host=h PASSWORD = pw":                   "host=h PASSWORD = xxxxx",
	} {
		d := storage.DSN(in)
		if got := d.String(); got != want {
			t.Errorf("DSN(%q).String() = %q, want %q", in, got, want)
		}
		if d.Reveal() != in {
			t.Errorf("DSN(%q).Reveal() = %q", in, d.Reveal())
		}
		j, _ := json.Marshal(struct{ DSN storage.DSN }{d})
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("open", "dsn", d)
		for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", d, d, d, d), string(j), logs.String()} {
			if strings.Contains(out, "pw") || strings.Contains(out, "p w") || strings.Contains(out, "zzw") {
				t.Errorf("DSN(%q) shows its password: %s", in, out)
			}
		}
	}
}

// A statement is prepared once and kept, on both databases; a transaction
// runs the kept statement on its own connection, so transactions holding
// every connection of the pool still get on (none waits for another
// connection to prepare).
func TestPreparedStatements(t *testing.T) {
	for name, db := range map[string]*storage.DB{"sqlite": storagetest.SQLite(t), "postgres": storagetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := db.Rebind("SELECT COUNT(*) FROM installations WHERE app_id = ?")
			a, err := db.Prepared(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := db.Prepared(ctx, q); a != b {
				t.Error("the same query was prepared twice")
			}
			if _, err := db.Prepared(ctx, "SELECT nope FROM nowhere"); err == nil {
				t.Error("a broken statement prepared")
			}
			var n int
			if err := db.QueryRowContext(ctx, q, "default").Scan(&n); err != nil || n != 0 {
				t.Errorf("QueryRowContext: %d, %v", n, err)
			}
			if err := db.QueryRowContext(ctx, "SELECT nope FROM nowhere").Scan(&n); err == nil {
				t.Error("QueryRowContext of a broken statement: no error")
			}
			db.SetMaxOpenConns(2)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					err := db.Tx(ctx, func(tx *sql.Tx) error {
						var n int
						return tx.StmtContext(ctx, a).QueryRowContext(ctx, "default").Scan(&n)
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		})
	}
}
