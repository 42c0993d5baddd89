// Package storage opens pushd's database and migrates its schema.
//
// Two dialects serve the same schema: SQLite (pure Go, WAL, one file) is the
// embedded default, PostgreSQL serves several pushd nodes. Stores write one
// SQL text with ? placeholders and pass it through [DB.Rebind]; where the
// dialects differ (binding a list, timestamps) they ask [DB.Dialect].
package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" with database/sql
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names a supported database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says which database to open.
type Config struct {
	// Driver is "sqlite" or "postgres". Empty means postgres when DSN is
	// set and sqlite otherwise.
	Driver string
	// Path is the SQLite file, e.g. data/pushd.db; its directory is
	// created. ":memory:" gives a private in-memory database.
	Path string
	// DSN is a PostgreSQL URL or keyword/value string, as pgx accepts.
	DSN DSN
	// MaxOpenConns bounds the connection pool; zero picks a default for
	// the dialect.
	MaxOpenConns int
}

// BusyTimeout is how long a SQLite connection waits for another writer
// before giving up with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// DB is an open database and the dialect its SQL must be written in.
type DB struct {
	*sql.DB
	dialect Dialect
	// stmts keeps every statement run through QueryContext,
	// QueryRowContext, ExecContext or Stmt, prepared once (prepared.go).
	stmts sync.Map // query -> *sql.Stmt
}

// Open opens the database cfg names and checks that it answers. It does not
// migrate: call [DB.Migrate].
func Open(ctx context.Context, cfg Config) (*DB, error) {
	driver := cfg.Driver
	if driver == "" {
		driver = string(SQLite)
		if cfg.DSN != "" {
			driver = string(Postgres)
		}
	}
	var (
		db  *sql.DB
		err error
	)
	switch Dialect(driver) {
	case SQLite:
		db, err = openSQLite(cfg)
	case Postgres:
		db, err = openPostgres(cfg)
	default:
		return nil, fmt.Errorf("storage: unknown driver %q (want sqlite or postgres)", cfg.Driver)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: %s: ping: %w", driver, err)
	}
	return &DB{DB: db, dialect: Dialect(driver)}, nil
}

func openSQLite(cfg Config) (*sql.DB, error) {
	path := cfg.Path
	if path == "" {
		return nil, errors.New("storage: sqlite: path is required")
	}
	// The driver reads everything after '?' as its own parameters.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("storage: sqlite: path %q must not contain '?'", path)
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("storage: sqlite: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if !memory {
		q.Add("_pragma", "journal_mode(WAL)")
		// WAL with synchronous=NORMAL loses at most the last commits on
		// power failure, never consistency; FULL would fsync every job.
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	// Every transaction takes the write lock when it begins. A deferred
	// transaction that reads first and writes later cannot wait for a
	// concurrent writer: SQLite fails it at once with SQLITE_BUSY instead
	// of applying busy_timeout.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("storage: sqlite: %w", err)
	}
	n := cfg.MaxOpenConns
	switch {
	case memory:
		// Each connection to ":memory:" is a database of its own.
		n = 1
	case n <= 0:
		// Readers run in parallel under WAL; writers queue on SQLite's
		// lock, so more connections than cores buy nothing.
		n = max(4, runtime.GOMAXPROCS(0))
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	// A connection stays open for good: reopening one repeats the pragmas
	// and, for ":memory:", would lose the database.
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func openPostgres(cfg Config) (*sql.DB, error) {
	if cfg.DSN == "" {
		return nil, errors.New("storage: postgres: dsn is required")
	}
	db, err := sql.Open("pgx", cfg.DSN.Reveal())
	if err != nil {
		return nil, fmt.Errorf("storage: postgres: %w", err)
	}
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = 4 * runtime.GOMAXPROCS(0)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	// Recycle connections now and then so that a failover or a pgbouncer
	// restart is picked up without errors piling up on stale sockets.
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Dialect reports which database db talks to.
func (db *DB) Dialect() Dialect { return db.dialect }

// Rebind turns the ? placeholders of query into PostgreSQL's $1, $2, ...
// and returns SQLite queries unchanged. A ? inside a quoted string,
// identifier or comment is left alone.
func (db *DB) Rebind(query string) string {
	if db.dialect != Postgres {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		case c == '\'' || c == '"':
			// Copy through to the closing quote; a doubled quote is an
			// escaped one and just reopens the span.
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
			continue
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
			continue
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+4])
			i += j + 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// InList is the SQL that matches a column against a list bound as one
// parameter (List): "col " + db.InList() reads "col IN (...)". One
// statement then takes any number of values, with no bound-parameter
// limit.
func (db *DB) InList() string {
	if db.dialect == Postgres {
		return "= ANY(?)"
	}
	return "IN (SELECT value FROM json_each(?))"
}

// List binds values as the one parameter of InList: a PostgreSQL array,
// or JSON text for SQLite's json_each.
func (db *DB) List(values []string) any {
	if db.dialect == Postgres {
		return values
	}
	b, _ := json.Marshal(values) // strings always marshal
	return string(b)
}

// Time returns t as db stores timestamps, or nil for the zero time:
// integer Unix milliseconds in SQLite, timestamptz in PostgreSQL. Both keep
// millisecond precision, so a time reads back equal in either dialect.
func (db *DB) Time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if db.dialect == SQLite {
		return t.UnixMilli()
	}
	return t.UTC().Truncate(time.Millisecond)
}

// ScanTime returns a [sql.Scanner] that reads a timestamp column of either
// dialect into *t, in UTC; NULL reads as the zero time.
func ScanTime(t *time.Time) sql.Scanner { return timeScanner{t: t} }

// ScanNullTime is [ScanTime] for nullable columns read into a pointer:
// NULL reads as nil.
func ScanNullTime(t **time.Time) sql.Scanner { return timeScanner{p: t} }

type timeScanner struct {
	t *time.Time
	p **time.Time
}

func (s timeScanner) Scan(src any) error {
	var t time.Time
	switch v := src.(type) {
	case nil:
	case int64:
		t = time.UnixMilli(v).UTC()
	case time.Time:
		t = v.UTC()
	default:
		return fmt.Errorf("storage: cannot read %T as a timestamp", src)
	}
	if s.p != nil {
		if src == nil {
			*s.p = nil
		} else {
			*s.p = &t
		}
		return nil
	}
	*s.t = t
	return nil
}

// Tx runs fn in a transaction and commits it. When the database reports a
// conflict that running again resolves (a PostgreSQL serialization failure,
// deadlock, or a unique violation from a concurrent insert of the same
// key), it rolls back and runs fn again, a few times at most; fn must
// therefore have no effects outside tx.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = db.tx(ctx, fn)
		if err == nil || !retryable(err) || i == attempts-1 {
			break
		}
		// A short random pause, growing with each attempt, lets the
		// transaction that won finish instead of colliding again.
		pause := time.Duration(1+rand.IntN(5<<i)) * time.Millisecond
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
	}
	return err
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func retryable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "40001", "40P01", "23505":
			return true
		}
		return false
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		// A snapshot that went stale under a concurrent writer; with
		// immediate transactions it is rare, and a fresh one cures it.
		return lite.Code() == sqlite3.SQLITE_BUSY_SNAPSHOT
	}
	return false
}

// DSN is a PostgreSQL connection string, a URL or key=value pairs. It may
// carry a password, so it prints, logs and marshals with the password
// replaced by "xxxxx" (as url.URL.Redacted does) and the rest readable:
// which server and database is worth showing. Reveal gives it whole, for
// the driver.
type DSN string

// Reveal returns the DSN with its password, for the driver alone.
func (d DSN) Reveal() string { return string(d) }

// String returns the DSN with its password hidden.
func (d DSN) String() string {
	if d == "" {
		return ""
	}
	dsn := string(d)
	u, err := url.Parse(dsn)
	switch {
	case err == nil && u.Scheme != "":
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	case err != nil && strings.Contains(dsn, "://"):
		// A URL that does not parse (a stray % in the password) has no
		// part that is known not to be the password.
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://xxxxx"
	}
	// The password of a key=value DSN, quoted or not.
	password := regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)
	return password.ReplaceAllString(dsn, "${1}xxxxx")
}

// GoString is String as Go syntax, for fmt's %#v.
func (d DSN) GoString() string { return "storage.DSN(" + strconv.Quote(d.String()) + ")" }

// LogValue is String, for log/slog.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalJSON encodes String as a JSON string.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalText is String, for YAML and the other encoders that take
// encoding.TextMarshaler.
func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
