package installations_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/internal/storage"
	"github.com/pushd/pushd/internal/storage/storagetest"
)

// The same suite runs against each dialect: what passes on SQLite must pass
// on PostgreSQL.
func TestSQLite(t *testing.T)   { storagetest.Suite(t, storagetest.SQLite, conformance) }
func TestPostgres(t *testing.T) { storagetest.Suite(t, storagetest.Postgres, conformance) }

var conformance = []storagetest.Case{
	{Name: "MigrateTwice", Test: testMigrateTwice},
	{Name: "UpsertGetListDelete", Test: testUpsertGetListDelete},
	{Name: "UpsertUpdates", Test: testUpsertUpdates},
	{Name: "TokenMovesToNewClient", Test: testTokenMoves},
	{Name: "TokenRegisteredConcurrently", Test: testTokenConcurrent},
	{Name: "InvalidWritesNothing", Test: testInvalidWritesNothing},
	{Name: "PlatformDefaults", Test: testPlatformDefaults},
	{Name: "PlatformRoundTrip", Test: testPlatformRoundTrip},
	{Name: "PlatformRefused", Test: testPlatformRefused},
	{Name: "PlatformReregistered", Test: testPlatformReregistered},
	{Name: "ValidForClients10000", Test: testValidForClients},
	{Name: "MarkInvalid", Test: testMarkInvalid},
	{Name: "LastInvalid", Test: testLastInvalid},
	{Name: "SetAPNsEnv", Test: testSetAPNsEnv},
	{Name: "IncrementBadgesConcurrent", Test: testIncrementBadgesConcurrent},
	{Name: "ResetBadge", Test: testResetBadge},
	{Name: "Deliveries", Test: testDeliveries},
	{Name: "DeliveredNeverOverwritten", Test: testDeliveredNeverOverwritten},
	{Name: "RecordConcurrent", Test: testRecordConcurrent},
}

func apnsToken(n int) string { return fmt.Sprintf("%064x", n) }

func apns(id, client string, n int) installations.Installation {
	return installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.APNs,
		Token: apnsToken(n), APNsEnv: installations.Production, Locale: "en-US", Timezone: "Europe/Paris"}
}

func fcm(id, client string, n int) installations.Installation {
	return installations.Installation{ID: id, AppID: "default", ClientID: client, Provider: installations.FCM,
		Token: fmt.Sprintf("fcm:APA91b-%d", n)}
}

func mustUpsert(t *testing.T, s *installations.Store, in installations.Installation) installations.Installation {
	t.Helper()
	out, err := s.Upsert(context.Background(), in)
	if err != nil {
		t.Fatalf("Upsert(%s): %v", in.ID, err)
	}
	return out
}

func ids(list []installations.Installation) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

func testMigrateTwice(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	before, err := db.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	if after, err := db.Version(ctx); err != nil || after != before {
		t.Errorf("Version after re-running = %d, %v; want %d", after, err, before)
	}
}

func testUpsertGetListDelete(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)

	in := apns("iphone", "alice", 1)
	in.Token = strings.ToUpper(in.Token)
	in.Badge = 7 // the registry owns the badge
	got := mustUpsert(t, s, in)
	if got.Token != apnsToken(1) {
		t.Errorf("APNs token stored as %q, want lower-case", got.Token)
	}
	if !got.Valid || got.Badge != 0 || got.ClientID != "alice" || got.APNsEnv != installations.Production ||
		got.Locale != "en-US" || got.Timezone != "Europe/Paris" || got.AppID != "default" {
		t.Errorf("Upsert returned %+v", got)
	}
	if got.CreatedAt.IsZero() || !got.CreatedAt.Equal(got.UpdatedAt) || !got.InvalidAt.IsZero() {
		t.Errorf("timestamps: created %v updated %v invalid %v", got.CreatedAt, got.UpdatedAt, got.InvalidAt)
	}
	fetched, err := s.Get(ctx, "default", "iphone")
	if err != nil {
		t.Fatal(err)
	}
	if fetched != got {
		t.Errorf("Get = %+v\nUpsert returned %+v", fetched, got)
	}

	mustUpsert(t, s, fcm("pixel", "alice", 1))
	mustUpsert(t, s, fcm("other", "bob", 2))
	other := fcm("pixel", "alice", 1)
	other.AppID = "second" // same id and token in another app: a different device
	mustUpsert(t, s, other)

	list, err := s.ListByClient(ctx, "default", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(list); !slices.Equal(got, []string{"iphone", "pixel"}) {
		t.Errorf("ListByClient(alice) = %v", got)
	}

	if err := s.Delete(ctx, "default", "iphone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "default", "iphone"); !errors.Is(err, installations.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "default", "iphone"); !errors.Is(err, installations.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "second", "pixel"); err != nil {
		t.Errorf("the other app's installation: %v", err)
	}
	if list, _ := s.ListByClient(ctx, "default", "nobody"); len(list) != 0 {
		t.Errorf("ListByClient(nobody) = %v", list)
	}
}

func testUpsertUpdates(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	first := mustUpsert(t, s, apns("iphone", "alice", 1))
	if _, err := s.IncrementBadges(ctx, "default", []string{"iphone"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAPNsEnv(ctx, "default", "iphone", installations.Development); err != nil {
		t.Fatal(err)
	}

	// The app relaunches and registers again, not knowing its environment.
	again := apns("iphone", "alice", 1)
	again.APNsEnv = ""
	again.Locale = "fr-FR"
	got := mustUpsert(t, s, again)
	if got.Locale != "fr-FR" || got.Badge != 1 || got.APNsEnv != installations.Development {
		t.Errorf("same token re-registered: %+v; want locale fr-FR, badge kept at 1, apns_env development kept", got)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) || got.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("created %v -> %v, updated %v -> %v", first.CreatedAt, got.CreatedAt, first.UpdatedAt, got.UpdatedAt)
	}

	// A dead token re-registered is live again, as the device says.
	if _, err := s.MarkInvalid(ctx, "default", "apns", "Unregistered", []string{apnsToken(1)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	got = mustUpsert(t, s, again)
	if !got.Valid || got.InvalidReason != "" || !got.InvalidAt.IsZero() {
		t.Errorf("re-registered invalid installation: %+v", got)
	}

	// A new token starts over: valid, badge 0, the environment it claims.
	if _, err := s.MarkInvalid(ctx, "default", "apns", "Unregistered", []string{apnsToken(1)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	renewed := apns("iphone", "alice", 2)
	renewed.APNsEnv = ""
	got = mustUpsert(t, s, renewed)
	if !got.Valid || got.InvalidReason != "" || got.Badge != 0 || got.Token != apnsToken(2) || got.APNsEnv != "" {
		t.Errorf("new token: %+v; want valid, badge 0, apns_env empty", got)
	}

	// The same device handed to another user: the badge was not theirs.
	if _, err := s.IncrementBadges(ctx, "default", []string{"iphone"}); err != nil {
		t.Fatal(err)
	}
	got = mustUpsert(t, s, apns("iphone", "carol", 2))
	if got.ClientID != "carol" || got.Badge != 0 {
		t.Errorf("new client: %+v; want client carol, badge 0", got)
	}

	// Switching provider under the same id works too.
	got = mustUpsert(t, s, fcm("iphone", "carol", 3))
	if got.Provider != installations.FCM || got.APNsEnv != "" {
		t.Errorf("provider switch: %+v", got)
	}
}

func testTokenMoves(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("alice-phone", "alice", 1))
	mustUpsert(t, s, fcm("alice-tablet", "alice", 1))

	// Bob logs in on Alice's phone: the app registers the same token
	// under its new installation id (upper-case this time).
	moved := apns("bob-phone", "bob", 1)
	moved.Token = strings.ToUpper(moved.Token)
	mustUpsert(t, s, moved)

	if _, err := s.Get(ctx, "default", "alice-phone"); !errors.Is(err, installations.ErrNotFound) {
		t.Errorf("previous holder of the token: %v, want ErrNotFound", err)
	}
	got, err := s.ValidForClients(ctx, "default", []string{"alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(got); !slices.Equal(ids, []string{"alice-tablet", "bob-phone"}) {
		t.Errorf("ValidForClients = %v, want alice-tablet and bob-phone", ids)
	}

	// An FCM token with the same text as an APNs one is a different token.
	mustUpsert(t, s, fcm("x", "dave", 9))
	mustUpsert(t, s, installations.Installation{ID: "y", AppID: "default", ClientID: "erin", Provider: installations.APNs, Token: apnsToken(9)})
	if _, err := s.Get(ctx, "default", "x"); err != nil {
		t.Errorf("FCM installation: %v", err)
	}
}

// Several users log in on one phone at once (or one app retries its
// registration under new ids): the token ends with exactly one of them.
func testTokenConcurrent(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	clients := make([]string, n)
	for i := range n {
		clients[i] = fmt.Sprintf("user%d", i)
		wg.Go(func() {
			for range 5 {
				if _, err := s.Upsert(ctx, apns(fmt.Sprintf("dev%d", i), clients[i], 42)); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.ValidForClients(ctx, "default", clients)
	if err != nil || len(got) != 1 || got[0].Token != apnsToken(42) {
		t.Errorf("after concurrent registrations: %v, %v; want exactly one holder", ids(got), err)
	}
}

func testInvalidWritesNothing(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	bad := installations.Installation{ID: "bad/id", AppID: "default", ClientID: "", Provider: installations.APNs,
		Token: "not-hex", APNsEnv: "staging", Timezone: "Mars/Base"}
	_, err := s.Upsert(ctx, bad)
	var fe *installations.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Upsert(bad) = %v, want *FieldErrors", err)
	}
	var got []string
	for _, f := range fe.Fields {
		got = append(got, f.Field)
		if f.Rule == "" {
			t.Errorf("field %s has no rule", f.Field)
		}
	}
	if want := []string{"installation_id", "client_id", "token", "apns_env", "timezone"}; !slices.Equal(got, want) {
		t.Errorf("fields = %v, want %v", got, want)
	}
	_, err = s.Upsert(ctx, installations.Installation{ID: "f", AppID: "default", ClientID: "c", Provider: installations.FCM, Token: "has space"})
	if !errors.As(err, &fe) || len(fe.Fields) != 1 || fe.Fields[0].Field != "token" {
		t.Errorf("FCM token with a space: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM installations").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after invalid upserts: %d, %v", n, err)
	}
}

// readBack returns the installation as each read path sees it: Get,
// ListByClient and ValidForClients.
func readBack(t *testing.T, s *installations.Store, in installations.Installation) []installations.Installation {
	t.Helper()
	ctx := context.Background()
	got, err := s.Get(ctx, in.AppID, in.ID)
	if err != nil {
		t.Fatalf("Get(%s): %v", in.ID, err)
	}
	out := []installations.Installation{got}
	listed, err := s.ListByClient(ctx, in.AppID, in.ClientID)
	if err != nil {
		t.Fatalf("ListByClient(%s): %v", in.ClientID, err)
	}
	valid, err := s.ValidForClients(ctx, in.AppID, []string{in.ClientID})
	if err != nil {
		t.Fatalf("ValidForClients(%s): %v", in.ClientID, err)
	}
	for _, list := range [][]installations.Installation{listed, valid} {
		i := slices.IndexFunc(list, func(x installations.Installation) bool { return x.ID == in.ID })
		if i < 0 {
			t.Fatalf("%s missing from %v", in.ID, ids(list))
		}
		out = append(out, list[i])
	}
	return out
}

// wantPlatform checks the platform Upsert returned and every read path
// reads back.
func wantPlatform(t *testing.T, s *installations.Store, got installations.Installation, want installations.Platform) {
	t.Helper()
	if got.Platform != want {
		t.Errorf("%s: Upsert returned platform %q, want %q", got.ID, got.Platform, want)
	}
	for _, read := range readBack(t, s, got) {
		if read != got {
			t.Errorf("%s: read back %+v\nUpsert returned %+v", got.ID, read, got)
		}
	}
}

// A registration that names no platform gets its provider's: APNs reaches
// only iOS, and FCM clients from before the field were Android apps.
func testPlatformDefaults(t *testing.T, db *storage.DB) {
	s := installations.NewStore(db)
	wantPlatform(t, s, mustUpsert(t, s, apns("iphone", "alice", 1)), installations.PlatformIOS)
	wantPlatform(t, s, mustUpsert(t, s, fcm("pixel", "alice", 1)), installations.PlatformAndroid)
}

func testPlatformRoundTrip(t *testing.T, db *storage.DB) {
	s := installations.NewStore(db)
	for _, c := range []struct {
		in       installations.Installation
		platform installations.Platform
	}{
		{fcm("browser", "alice", 1), installations.PlatformWeb},
		{fcm("firebase-ios", "alice", 2), installations.PlatformIOS},
		{fcm("pixel", "bob", 3), installations.PlatformAndroid},
		{apns("iphone", "bob", 4), installations.PlatformIOS},
	} {
		c.in.Platform = c.platform
		wantPlatform(t, s, mustUpsert(t, s, c.in), c.platform)
	}
}

func testPlatformRefused(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	const (
		apnsRule  = `"ios" or empty for provider apns`
		knownRule = `one of "ios", "android", "web", or empty`
	)
	for _, c := range []struct {
		in       installations.Installation
		platform installations.Platform
		rule     string
	}{
		{apns("iphone", "alice", 1), installations.PlatformAndroid, apnsRule},
		{apns("iphone", "alice", 1), installations.PlatformWeb, apnsRule},
		{apns("iphone", "alice", 1), "windows", knownRule},
		{fcm("pixel", "alice", 1), "windows", knownRule},
		{fcm("pixel", "alice", 1), "Android", knownRule},
	} {
		in := c.in
		in.Platform = c.platform
		_, err := s.Upsert(ctx, in)
		var fe *installations.FieldErrors
		if !errors.As(err, &fe) {
			t.Fatalf("Upsert(%s %s) = %v, want *FieldErrors", in.Provider, in.Platform, err)
		}
		want := []installations.FieldError{{Field: "platform", Rule: c.rule}}
		if !slices.Equal(fe.Fields, want) {
			t.Errorf("Upsert(%s %s) fields = %+v, want %+v", in.Provider, in.Platform, fe.Fields, want)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM installations").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after refused platforms: %d, %v", n, err)
	}

	// Nor does a refused re-registration touch the stored device.
	before := mustUpsert(t, s, apns("iphone", "alice", 1))
	bad := apns("iphone", "alice", 2)
	bad.Platform = installations.PlatformAndroid
	if _, err := s.Upsert(ctx, bad); err == nil {
		t.Fatal("Upsert(apns android) succeeded")
	}
	if got, err := s.Get(ctx, "default", "iphone"); err != nil || got != before {
		t.Errorf("after a refused re-registration: %+v, %v; want %+v", got, err, before)
	}
}

// The device states its platform at each registration, and the latest
// stands; one that states none gets its provider's default again.
func testPlatformReregistered(t *testing.T, db *storage.DB) {
	s := installations.NewStore(db)
	in := fcm("dev", "alice", 1)
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformAndroid)

	in.Platform = installations.PlatformWeb
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformWeb)

	in.Platform = installations.PlatformIOS
	in.Token = fcm("", "", 2).Token
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformIOS)

	in.Platform = ""
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformAndroid)

	// Switching provider takes the new provider's platform.
	in.Platform = installations.PlatformWeb
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformWeb)
	wantPlatform(t, s, mustUpsert(t, s, apns("dev", "alice", 3)), installations.PlatformIOS)
	in = fcm("dev", "alice", 4)
	wantPlatform(t, s, mustUpsert(t, s, in), installations.PlatformAndroid)
}

// seed inserts many installations in one statement, much faster than
// Upsert one at a time.
func seed(t testing.TB, db *storage.DB, rows []installations.Installation) {
	t.Helper()
	type row struct {
		I, A, C, P, L, T, E string
		V                   bool
	}
	list := make([]row, len(rows))
	for i, in := range rows {
		if in.Platform == "" {
			in.Platform = installations.DefaultPlatform(in.Provider)
		}
		list[i] = row{in.ID, in.AppID, in.ClientID, string(in.Provider), string(in.Platform), in.Token, in.APNsEnv, in.Valid}
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	query := `INSERT INTO installations (installation_id, app_id, client_id, provider, platform, token, apns_env, valid, created_at, updated_at)
		SELECT value ->> 'I', value ->> 'A', value ->> 'C', value ->> 'P', value ->> 'L', value ->> 'T', value ->> 'E', value ->> 'V', ?, ?
		FROM json_each(?)`
	if db.Dialect() == storage.Postgres {
		query = `INSERT INTO installations (installation_id, app_id, client_id, provider, platform, token, apns_env, valid, created_at, updated_at)
			SELECT r."I", r."A", r."C", r."P", r."L", r."T", r."E", r."V", $1, $2
			FROM jsonb_to_recordset($3::jsonb) AS r("I" text, "A" text, "C" text, "P" text, "L" text, "T" text, "E" text, "V" boolean)`
	}
	now := db.Time(time.Now())
	if _, err := db.ExecContext(context.Background(), query, now, now, string(b)); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// population is n clients: every even one has an FCM device (a web
// browser for every fourth, else Android), every tenth also an APNs device,
// invalid for every twentieth. It returns the rows and
// the ids ValidForClients must return for all n clients.
func population(n int) (rows []installations.Installation, want []string) {
	for i := range n {
		client := fmt.Sprintf("c%05d", i)
		if i%2 == 0 {
			platform := installations.PlatformAndroid
			if i%4 == 0 {
				platform = installations.PlatformWeb
			}
			rows = append(rows, installations.Installation{ID: client + "-a", AppID: "default", ClientID: client,
				Provider: installations.FCM, Platform: platform, Token: "fcm-" + client, Valid: true})
			want = append(want, client+"-a")
		}
		if i%10 == 0 {
			rows = append(rows, installations.Installation{ID: client + "-i", AppID: "default", ClientID: client,
				Provider: installations.APNs, Token: apnsToken(i), APNsEnv: installations.Production, Valid: i%20 != 0})
			if i%20 != 0 {
				want = append(want, client+"-i")
			}
		}
	}
	// Clients nobody asks about, and the same clients in another app.
	for i := range 100 {
		rows = append(rows,
			installations.Installation{ID: fmt.Sprintf("stranger-%d", i), AppID: "default", ClientID: fmt.Sprintf("s%d", i),
				Provider: installations.FCM, Token: fmt.Sprintf("fcm-s%d", i), Valid: true},
			installations.Installation{ID: fmt.Sprintf("other-%d", i), AppID: "other", ClientID: fmt.Sprintf("c%05d", i),
				Provider: installations.FCM, Token: fmt.Sprintf("fcm-o%d", i), Valid: true})
	}
	return rows, want
}

func clientIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%05d", i)
	}
	return out
}

func testValidForClients(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	const n = 10_000
	rows, want := population(n)
	seed(t, db, rows)
	platforms := make(map[string]installations.Platform)
	for _, in := range rows {
		platforms[in.ID] = cmp.Or(in.Platform, installations.DefaultPlatform(in.Provider))
	}

	got, err := s.ValidForClients(ctx, "default", clientIDs(n))
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := ids(got)
	slices.Sort(gotIDs)
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("ValidForClients(%d clients) returned %d installations, want %d", n, len(gotIDs), len(want))
	}
	for _, in := range got {
		if !in.Valid || in.AppID != "default" || !strings.HasPrefix(in.ID, in.ClientID) {
			t.Fatalf("unexpected row %+v", in)
		}
		if in.Platform != platforms[in.ID] {
			t.Fatalf("%s: platform %q, want %q", in.ID, in.Platform, platforms[in.ID])
		}
	}
	// Ordered by client, then installation.
	if !slices.IsSortedFunc(got, func(a, b installations.Installation) int {
		return strings.Compare(a.ClientID+"\x00"+a.ID, b.ClientID+"\x00"+b.ID)
	}) {
		t.Error("ValidForClients is not ordered by client and installation id")
	}

	// Clients named twice count once; unknown clients are no error.
	got, err = s.ValidForClients(ctx, "default", []string{"c00002", "c00002", "nobody", "O'Brien"})
	if err != nil || !slices.Equal(ids(got), []string{"c00002-a"}) {
		t.Errorf("ValidForClients(duplicates) = %v, %v", ids(got), err)
	}
	if got, err := s.ValidForClients(ctx, "default", nil); err != nil || len(got) != 0 {
		t.Errorf("ValidForClients(nil) = %v, %v", got, err)
	}
}

func testMarkInvalid(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("iphone", "alice", 1))
	mustUpsert(t, s, fcm("pixel", "alice", 1))

	at := time.Date(2025, 6, 1, 12, 0, 0, 123_456_789, time.UTC)
	n, err := s.MarkInvalid(ctx, "default", "apns", "Unregistered", []string{strings.ToUpper(apnsToken(1))}, at)
	if err != nil || n != 1 {
		t.Fatalf("MarkInvalid = %d, %v; want 1", n, err)
	}
	got, err := s.ValidForClients(ctx, "default", []string{"alice"})
	if err != nil || !slices.Equal(ids(got), []string{"pixel"}) {
		t.Errorf("ValidForClients after MarkInvalid = %v, %v; want only pixel", ids(got), err)
	}
	in, err := s.Get(ctx, "default", "iphone")
	if err != nil {
		t.Fatal(err)
	}
	if in.Valid || in.InvalidReason != "Unregistered" || !in.InvalidAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("invalid installation: %+v", in)
	}
	// Listing shows invalid devices too.
	if list, _ := s.ListByClient(ctx, "default", "alice"); len(list) != 2 {
		t.Errorf("ListByClient = %v, want both devices", ids(list))
	}
	// Counted once, whoever else saw it fail; the first reason stands.
	if n, err := s.MarkInvalid(ctx, "default", "apns", "BadDeviceToken", []string{apnsToken(1)}, at.Add(time.Second)); err != nil || n != 0 {
		t.Errorf("second MarkInvalid = %d, %v; want 0", n, err)
	}
	if n, err := s.MarkInvalid(ctx, "default", "fcm", "UNREGISTERED", []string{"unknown"}, at); err != nil || n != 0 {
		t.Errorf("MarkInvalid(unknown) = %d, %v; want 0", n, err)
	}
	if n, err := s.MarkInvalid(ctx, "default", "fcm", "UNREGISTERED", nil, at); err != nil || n != 0 {
		t.Errorf("MarkInvalid(no tokens) = %d, %v; want 0", n, err)
	}
	// A job's dead tokens of one reason go in one statement.
	mustUpsert(t, s, apns("iphone-b", "bob", 2))
	mustUpsert(t, s, apns("iphone-c", "carol", 3))
	if n, err := s.MarkInvalid(ctx, "default", "apns", "BadDeviceToken", []string{apnsToken(2), apnsToken(3), apnsToken(9)}, at); err != nil || n != 2 {
		t.Errorf("MarkInvalid(three tokens, one unknown) = %d, %v; want 2", n, err)
	}
	if got, _ := s.ValidForClients(ctx, "default", []string{"bob", "carol"}); len(got) != 0 {
		t.Errorf("after marking both: %v still valid", ids(got))
	}
	if n, err := s.MarkInvalid(ctx, "default", "fcm", strings.Repeat("é", 2000)+"\x00", []string{fcm("", "", 1).Token}, at); err != nil || n != 1 {
		t.Errorf("MarkInvalid(long reason) = %d, %v; want 1", n, err)
	}
}

func testSetAPNsEnv(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("iphone", "alice", 1))
	mustUpsert(t, s, fcm("pixel", "alice", 1))
	if err := s.SetAPNsEnv(ctx, "default", "iphone", installations.Development); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Get(ctx, "default", "iphone"); in.APNsEnv != installations.Development {
		t.Errorf("apns_env = %q", in.APNsEnv)
	}
	if err := s.SetAPNsEnv(ctx, "default", "pixel", installations.Development); !errors.Is(err, installations.ErrNotFound) {
		t.Errorf("SetAPNsEnv(FCM device) = %v, want ErrNotFound", err)
	}
	if err := s.SetAPNsEnv(ctx, "default", "missing", installations.Production); !errors.Is(err, installations.ErrNotFound) {
		t.Errorf("SetAPNsEnv(missing) = %v, want ErrNotFound", err)
	}
	if err := s.SetAPNsEnv(ctx, "default", "iphone", "sandbox"); err == nil {
		t.Error("SetAPNsEnv(sandbox) succeeded")
	}
}

func testIncrementBadgesConcurrent(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("iphone", "alice", 1))
	mustUpsert(t, s, fcm("pixel", "alice", 1))
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			prev := 0
			for range each {
				got, err := s.IncrementBadges(ctx, "default", []string{"iphone", "pixel"})
				if err != nil {
					errs <- err
					return
				}
				// Each caller sees its own increment: numbers only grow.
				if got["iphone"] <= prev || got["pixel"] == 0 {
					errs <- fmt.Errorf("IncrementBadges returned %v after %d", got, prev)
					return
				}
				prev = got["iphone"]
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range []string{"iphone", "pixel"} {
		if in, _ := s.Get(ctx, "default", id); in.Badge != workers*each {
			t.Errorf("%s badge = %d, want %d", id, in.Badge, workers*each)
		}
	}
	got, err := s.IncrementBadges(ctx, "default", []string{"iphone", "missing"})
	if err != nil || len(got) != 1 || got["iphone"] != workers*each+1 {
		t.Errorf("IncrementBadges(iphone, missing) = %v, %v", got, err)
	}
	if got, err := s.IncrementBadges(ctx, "default", nil); err != nil || len(got) != 0 {
		t.Errorf("IncrementBadges(nil) = %v, %v", got, err)
	}
}

func testResetBadge(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("iphone", "alice", 1))
	mustUpsert(t, s, fcm("pixel", "alice", 1))
	mustUpsert(t, s, fcm("bobs", "bob", 2))
	for range 3 {
		if _, err := s.IncrementBadges(ctx, "default", []string{"iphone", "pixel", "bobs"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ResetBadge(ctx, "default", "alice"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"iphone": 0, "pixel": 0, "bobs": 3} {
		if in, _ := s.Get(ctx, "default", id); in.Badge != want {
			t.Errorf("%s badge = %d, want %d", id, in.Badge, want)
		}
	}
	if err := s.ResetBadge(ctx, "default", "nobody"); err != nil {
		t.Errorf("ResetBadge(nobody) = %v", err)
	}
}

// recorded is the outcome the message's record holds for each of the
// devices ids that has one, read from Trace as the pipeline reads it.
func recorded(ctx context.Context, d *installations.Deliveries, app, messageID string, ids []string) (map[string]string, error) {
	rows, err := d.Trace(ctx, app, messageID)
	out := make(map[string]string)
	for _, r := range rows {
		if r.InstallationID != "" && slices.Contains(ids, r.InstallationID) {
			out[r.InstallationID] = r.Outcome
		}
	}
	return out, err
}

// delivered is the set of devices that accepted the message.
func delivered(ctx context.Context, d *installations.Deliveries, app, messageID string, ids []string) (map[string]bool, error) {
	outcomes, err := recorded(ctx, d, app, messageID, ids)
	out := make(map[string]bool)
	for id, o := range outcomes {
		if o == "delivered" || o == "env_corrected" {
			out[id] = true
		}
	}
	return out, err
}

func testDeliveries(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	d := installations.NewDeliveries(db)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	rows := []installations.Delivery{
		{InstallationID: "a", ClientID: "alice", Outcome: "delivered", ProviderID: "apns-id-1", At: at},
		{InstallationID: "b", ClientID: "alice", Outcome: "invalid_token", Reason: "Unregistered", At: at},
		{InstallationID: "c", ClientID: "bob", Outcome: "failed", Reason: "503 ServiceUnavailable", At: at},
		{ClientID: "carol", Outcome: "muted", At: at},
		{ClientID: "dave", Outcome: "no_device", At: at},
	}
	if err := d.Record(ctx, "default", "m1", rows); err != nil {
		t.Fatal(err)
	}
	got, err := delivered(ctx, d, "default", "m1", []string{"a", "b", "c", "zz"})
	if err != nil || len(got) != 1 || !got["a"] {
		t.Errorf("Delivered = %v, %v; want only a", got, err)
	}
	if got, err := recorded(ctx, d, "default", "m1", []string{"a", "b", "c", "zz"}); err != nil ||
		!maps.Equal(got, map[string]string{"a": "delivered", "b": "invalid_token", "c": "failed"}) {
		t.Errorf("Outcomes = %v, %v; want a, b and c with their outcomes", got, err)
	}
	if got, _ := delivered(ctx, d, "default", "m2", []string{"a"}); len(got) != 0 {
		t.Errorf("Delivered(other message) = %v", got)
	}
	if got, _ := delivered(ctx, d, "other", "m1", []string{"a"}); len(got) != 0 {
		t.Errorf("Delivered(other app) = %v", got)
	}
	trace, err := d.Trace(ctx, "default", "m1")
	if err != nil {
		t.Fatal(err)
	}
	want := []installations.Delivery{rows[0], rows[1], rows[2], rows[3], rows[4]}
	if !slices.Equal(trace, want) {
		t.Errorf("Trace =\n%+v\nwant\n%+v", trace, want)
	}

	// One query for a whole job's devices.
	many := make([]installations.Delivery, 10_000)
	idList := make([]string, len(many))
	for i := range many {
		idList[i] = fmt.Sprintf("dev-%05d", i)
		many[i] = installations.Delivery{InstallationID: idList[i], ClientID: "x", Outcome: "failed", At: at}
		if i%3 == 0 {
			many[i].Outcome = "delivered"
		}
	}
	if err := d.Record(ctx, "default", "big", many); err != nil {
		t.Fatal(err)
	}
	got, err = delivered(ctx, d, "default", "big", idList)
	if err != nil || len(got) != 3334 || !got["dev-00000"] || got["dev-00001"] {
		t.Errorf("Delivered(10 000) = %d entries, %v", len(got), err)
	}

	// Pruning drops what is older than the cut-off.
	if n, err := d.Prune(ctx, at.Add(time.Millisecond)); err != nil || n != int64(len(rows)+len(many)) {
		t.Errorf("Prune = %d, %v", n, err)
	}
	if trace, _ := d.Trace(ctx, "default", "m1"); len(trace) != 0 {
		t.Errorf("Trace after Prune = %v", trace)
	}
}

// Workers recording overlapping rows of one message at once (a job and
// its duplicate after a crash) neither fail nor lose a delivery.
func testRecordConcurrent(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	d := installations.NewDeliveries(db)
	const workers, devices = 4, 200
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			rows := make([]installations.Delivery, devices)
			for i := range rows {
				// Worker w delivered every device i with i%workers == w and
				// failed the rest; each lists them in its own order.
				j := (i + w*devices/workers) % devices
				rows[i] = installations.Delivery{InstallationID: fmt.Sprintf("d%03d", j), Outcome: "failed", At: time.Now()}
				if j%workers == w {
					rows[i].Outcome = "delivered"
				}
			}
			for range 5 {
				if err := d.Record(ctx, "default", "m", rows); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	all := make([]string, devices)
	for i := range all {
		all[i] = fmt.Sprintf("d%03d", i)
	}
	got, err := delivered(ctx, d, "default", "m", all)
	if err != nil || len(got) != devices {
		t.Errorf("Delivered = %d of %d, %v", len(got), devices, err)
	}
}

func testDeliveredNeverOverwritten(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	d := installations.NewDeliveries(db)
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	must := func(rows ...installations.Delivery) {
		t.Helper()
		if err := d.Record(ctx, "default", "m", rows); err != nil {
			t.Fatal(err)
		}
	}
	must(
		installations.Delivery{InstallationID: "a", ClientID: "alice", Outcome: "delivered", ProviderID: "first", At: t0},
		installations.Delivery{InstallationID: "b", ClientID: "alice", Outcome: "failed", Reason: "503", At: t0},
		installations.Delivery{InstallationID: "c", ClientID: "bob", Outcome: "env_corrected", At: t0},
	)
	// A later attempt (a duplicate job after a crash, say) reports worse.
	must(
		installations.Delivery{InstallationID: "a", ClientID: "alice", Outcome: "failed", Reason: "timeout", At: t1},
		installations.Delivery{InstallationID: "b", ClientID: "alice", Outcome: "delivered", ProviderID: "second", At: t1},
		installations.Delivery{InstallationID: "c", ClientID: "bob", Outcome: "invalid_token", At: t1},
		// Within one batch, too, an acceptance is not undone.
		installations.Delivery{InstallationID: "d", ClientID: "bob", Outcome: "delivered", At: t1},
		installations.Delivery{InstallationID: "d", ClientID: "bob", Outcome: "failed", At: t1},
	)
	trace, err := d.Trace(ctx, "default", "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []installations.Delivery{
		{InstallationID: "a", ClientID: "alice", Outcome: "delivered", ProviderID: "first", At: t0},
		{InstallationID: "b", ClientID: "alice", Outcome: "delivered", ProviderID: "second", At: t1},
		{InstallationID: "c", ClientID: "bob", Outcome: "env_corrected", At: t0},
		{InstallationID: "d", ClientID: "bob", Outcome: "delivered", At: t1},
	}
	if !slices.Equal(trace, want) {
		t.Errorf("Trace =\n%+v\nwant\n%+v", trace, want)
	}
	got, err := delivered(ctx, d, "default", "m", []string{"a", "b", "c", "d"})
	if err != nil || len(got) != 4 {
		t.Errorf("Delivered = %v, %v; want all four", got, err)
	}
	if err := d.Record(ctx, "default", "m", []installations.Delivery{{InstallationID: "e"}}); err == nil {
		t.Error("Record accepted a row without an outcome")
	}
}

// A recipient whose devices all died reads differently from one who never
// registered: LastInvalid names the newest death per client, and only
// invalid installations count.
func testLastInvalid(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := installations.NewStore(db)
	mustUpsert(t, s, apns("iphone", "alice", 1))
	mustUpsert(t, s, fcm("pixel", "alice", 1))
	mustUpsert(t, s, apns("ipad", "bob", 2))
	mustUpsert(t, s, fcm("tablet", "carol", 3))
	mustUpsert(t, s, installations.Installation{ID: "other-app", AppID: "other", ClientID: "dave", Provider: installations.FCM, Token: "fcm:APA91b-4"})

	early := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	late := early.Add(time.Hour)
	if _, err := s.MarkInvalid(ctx, "default", "apns", "Unregistered", []string{apnsToken(1)}, early); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkInvalid(ctx, "default", "fcm", "UNREGISTERED", []string{"fcm:APA91b-1"}, late); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkInvalid(ctx, "other", "fcm", "UNREGISTERED", []string{"fcm:APA91b-4"}, late); err != nil {
		t.Fatal(err)
	}
	got, err := s.LastInvalid(ctx, "default", []string{"alice", "bob", "dave", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("LastInvalid = %v, want alice only (bob's device is valid, dave's is another app's)", got)
	}
	a := got["alice"]
	if a.ID != "pixel" || a.InvalidReason != "UNREGISTERED" || !a.InvalidAt.Equal(late) || a.Provider != installations.FCM {
		t.Errorf("alice's last invalid device: %+v, want pixel, UNREGISTERED at %v", a, late)
	}
	if got, err := s.LastInvalid(ctx, "default", nil); err != nil || len(got) != 0 {
		t.Errorf("LastInvalid(nil) = %v, %v", got, err)
	}
}
