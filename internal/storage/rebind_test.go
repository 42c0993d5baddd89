package storage

import "testing"

func TestRebind(t *testing.T) {
	lite := &DB{dialect: SQLite}
	if got := lite.Rebind("SELECT ? WHERE x = ?"); got != "SELECT ? WHERE x = ?" {
		t.Errorf("sqlite Rebind changed the query: %q", got)
	}
	pg := &DB{dialect: Postgres}
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{"x = 'it''s ?' AND y = ?", "x = 'it''s ?' AND y = $1"},
		{`"odd?col" = ?`, `"odd?col" = $1`},
		{"-- why?\nx = ?", "-- why?\nx = $1"},
		{"/* ? */ x = ? /* ?", "/* ? */ x = $1 /* ?"},
		{"x = 'open ?", "x = 'open ?"},
		{"-- trailing ?", "-- trailing ?"},
		{"?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10"},
	} {
		if got := pg.Rebind(tc.in); got != tc.want {
			t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
