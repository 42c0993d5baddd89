package storage

import "context"

// MigrateTo applies the migrations up to and including version, for tests
// of what a later migration does to an older database's rows.
func (db *DB) MigrateTo(ctx context.Context, version int) error { return db.migrate(ctx, version) }
