package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // FerretDB's SQLite driver, registered as "sqlite"
)

// sqliteURL is the URI FerretDB's SQLite backend wants: a directory (created if missing) with a
// trailing slash, and the pragmas every database file is opened with.
func sqliteURL(dir, synchronous string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %v", dir, err)
	}
	url := "file:" + dir
	if url[len(url)-1] != '/' {
		url += "/"
	}
	switch synchronous {
	case "full", "normal", "off":
		// FerretDB passes the URI's query to every database file it opens; it sets busy_timeout,
		// journal_mode(wal) and auto_vacuum itself and leaves synchronous at SQLite's default (full).
		return url + "?_pragma=synchronous(" + synchronous + ")", nil
	default:
		return "", fmt.Errorf("bad --sqlite-synchronous %q: want full, normal or off", synchronous)
	}
}

// The _id index. Why it exists: FerretDB 1.24.2's SQLite backend looks documents up by _id with
//
//	... WHERE _ferretdb_sjson->'$._id' = ?
//
// (metadata.IDColumn: every pushed-down query, every UPDATE of a document it has changed, every
// DELETE), but creates the unique _id index as
//
//	CREATE UNIQUE INDEX ... ON tbl (_ferretdb_sjson->"_id")
//
// (metadata/registry.go, indexesCreate). SQLite uses an expression index only when the query's
// expression is the same expression, and '$._id' is not "_id", so that index only enforces
// uniqueness: every lookup and every per-document UPDATE is a full table scan, about a second per
// updated document at 100,000 documents (bench/ferretdb.ts).
//
// Without forking FerretDB, we add the index its statements can use: for every collection table
// listed in a database's metadata table (_ferretdb_collections), an ordinary (non-unique: FerretDB's
// own index still enforces uniqueness) index on exactly FerretDB's expression, named so that it
// cannot collide with FerretDB's own index names (those are "<table>_<mongo index name>").
//
// FerretDB never sees it: listIndexes, createIndexes and dropIndexes work from the index list in
// each collection's metadata settings, not from sqlite_master; dropping a collection drops its
// table and the index with it; renaming one only renames it in the metadata.
//
// How: every `every`, each <db>.sqlite file whose main or -wal file changed since the last look is
// opened with the same driver FerretDB uses (modernc.org/sqlite), with mode=rw so that a file
// dropped in between is not re-created, and busy_timeout like FerretDB's own connections (the
// database is already in WAL mode, which is persistent; we do not touch journal_mode). The
// connection is closed after each look: a connection held while FerretDB drops a database would
// keep its -wal file alive for a database re-created under the same name. (A drop and re-create of
// the same name within the few milliseconds of one look remains possible; Avviso's tests use fresh
// names.) A missing index is created once per table, normally right after FerretDB creates the
// table, so on an empty table; on an existing large database at first start it takes a moment,
// during which FerretDB's writers wait on the lock (their busy_timeout is 10 s).

const (
	// The expression of FerretDB's metadata.IDColumn, as its statements spell it.
	ferretIDExpr = `_ferretdb_sjson->'$._id'`
	// FerretDB's per-database list of collections and their tables.
	ferretCollectionsTable = "_ferretdb_collections"
	idIndexPrefix          = "avviso_id_of_"
)

var errNotReady = errors.New("database not ready")

type fileState struct {
	mainMod, walMod time.Time
	mainSize, walSz int64
}

func statOf(path string) (fileState, bool) {
	m, err := os.Stat(path)
	if err != nil {
		return fileState{}, false
	}
	st := fileState{mainMod: m.ModTime(), mainSize: m.Size()}
	if w, err := os.Stat(path + "-wal"); err == nil {
		st.walMod, st.walSz = w.ModTime(), w.Size()
	}
	return st, true
}

// keepIDIndexes runs until ctx ends, adding the _id index to collection tables that lack it.
func keepIDIndexes(ctx context.Context, dir string, l *slog.Logger, every time.Duration) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		l.Error("avviso id index: bad directory", "dir", dir, "error", err)
		return
	}
	seen := map[string]fileState{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(abs, "*.sqlite"))
		live := map[string]bool{}
		for _, f := range files {
			live[f] = true
			st, ok := statOf(f)
			if !ok || seen[f] == st {
				continue
			}
			if err := ensureIDIndexes(ctx, f, l); err != nil {
				if !errors.Is(err, errNotReady) && ctx.Err() == nil {
					l.Warn("avviso id index: will retry", "file", f, "error", err)
				}
				delete(seen, f)
				continue
			}
			// Stat again after our own write, so that our index does not count as a change.
			if st, ok = statOf(f); ok {
				seen[f] = st
			}
		}
		for f := range seen {
			if !live[f] {
				delete(seen, f)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func ensureIDIndexes(ctx context.Context, file string, l *slog.Logger) error {
	q := url.Values{}
	q.Set("mode", "rw") // never create a file FerretDB has just dropped
	q.Add("_pragma", "busy_timeout(10000)")
	dsn := (&url.URL{Scheme: "file", Path: file, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx, fmt.Sprintf(
		`SELECT c.table_name FROM %q c
		 WHERE EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'table' AND m.name = c.table_name)
		   AND NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = '%s' || c.table_name)`,
		ferretCollectionsTable, idIndexPrefix))
	if err != nil {
		// A database FerretDB is creating (or dropping) right now: look again at the next tick.
		if _, statErr := os.Stat(file); statErr != nil || strings.Contains(err.Error(), "no such table") {
			return errNotReady
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	for _, t := range tables {
		start := time.Now()
		_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, idIndexPrefix+t, t, ferretIDExpr))
		if err != nil {
			// The collection may have been dropped in between.
			var n int
			if db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, t).Scan(&n) == nil && n == 0 {
				continue
			}
			return fmt.Errorf("%s: %w", t, err)
		}
		l.Debug("avviso id index created", "file", filepath.Base(file), "table", t, "took", time.Since(start))
	}
	return nil
}
