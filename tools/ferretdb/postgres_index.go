package main

// GIN indexes that FerretDB's pushed-down filters can use.
//
// FerretDB 1.24 (PostgreSQL backend) turns an equality filter {field: value} into
//
//	WHERE _jsonb->'field' @> '<value>'           (field with dots: _jsonb #> '{a,b}' @> ...)
//
// but creates a MongoDB index as a B-tree on `((_jsonb->'field'))`, which cannot answer `@>`: every
// filtered find, count, update and delete reads the whole table, including a lookup by _id.
// (Measured with 40,000 delivery records: findOne({_id}) 15 ms, and 0.9 ms with the index below.)
//
// So for every field of every index FerretDB knows of (its per-schema metadata table lists them,
// _id included), we keep a GIN index on exactly FerretDB's expression, named avviso_gin_<hash>.
// FerretDB never sees it: its index list is its metadata, not pg_indexes; dropping the collection
// drops the table and our indexes with it. PostgreSQL uses them only with plans made for the
// actual parameter values (FerretDB passes the field name as a parameter): the cluster runs with
// plan_cache_mode=force_custom_plan (postgres.go); on a server of your own, set it too.
// fastupdate is off: with it, new entries wait in a pending list that every lookup reads through
// (3 ms per findOne({_id}) after 40,000 inserts, against 0.1 ms without), and our collections are
// read far more often than they grow.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	ferretMetadataTable = "_ferretdb_database_metadata"
	ginIndexPrefix      = "avviso_gin_"
)

// keepGinIndexes runs until ctx ends, adding missing GIN indexes every `every`.
func keepGinIndexes(ctx context.Context, dbURL string, l *slog.Logger, every time.Duration) {
	pool, err := pgxpool.New(ctx, withPoolSize(dbURL, 1))
	if err != nil {
		l.Error("avviso gin indexes: bad URL", "error", err)
		return
	}
	defer pool.Close()
	done := map[string]bool{} // index names known to exist
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := ensureGinIndexes(ctx, pool, done, l); err != nil && ctx.Err() == nil {
			l.Debug("avviso gin indexes: will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type indexedField struct{ schema, table, field string }

func (f indexedField) indexName() string {
	h := sha256.Sum256([]byte(f.schema + "\x00" + f.table + "\x00" + f.field))
	return ginIndexPrefix + hex.EncodeToString(h[:10])
}

// expression is FerretDB's own spelling of the field (internal/backends/postgresql/query.go).
func (f indexedField) expression() string {
	parts := strings.Split(f.field, ".")
	if len(parts) == 1 {
		return fmt.Sprintf("(_jsonb -> %s)", quoteLiteral(f.field))
	}
	return fmt.Sprintf("(_jsonb #> %s::text[])", quoteLiteral("{"+strings.Join(parts, ",")+"}"))
}

func ensureGinIndexes(ctx context.Context, pool *pgxpool.Pool, done map[string]bool, l *slog.Logger) error {
	schemas, err := collectStrings(ctx, pool, `SELECT table_schema FROM information_schema.tables WHERE table_name = $1`, ferretMetadataTable)
	if err != nil {
		return err
	}
	var fields []indexedField
	for _, s := range schemas {
		rows, err := pool.Query(ctx, fmt.Sprintf(
			`SELECT DISTINCT m._jsonb->>'table', k
			   FROM %s m, jsonb_array_elements(m._jsonb->'indexes') i, jsonb_object_keys(i->'key') k`,
			pgx.Identifier{s, ferretMetadataTable}.Sanitize()))
		if err != nil {
			continue // a schema being dropped right now
		}
		for rows.Next() {
			f := indexedField{schema: s}
			if rows.Scan(&f.table, &f.field) == nil && !done[f.indexName()] {
				fields = append(fields, f)
			}
		}
		rows.Close()
	}
	for _, f := range fields {
		start := time.Now()
		_, err := pool.Exec(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s USING gin (%s) WITH (fastupdate = off)`,
			pgx.Identifier{f.indexName()}.Sanitize(), pgx.Identifier{f.schema, f.table}.Sanitize(), f.expression()))
		if err != nil {
			// The collection may have been dropped in between: the next look will not list it.
			l.Debug("avviso gin index not created", "schema", f.schema, "table", f.table, "field", f.field, "error", err)
			continue
		}
		done[f.indexName()] = true
		l.Debug("avviso gin index", "schema", f.schema, "table", f.table, "field", f.field, "took", time.Since(start))
	}
	// Forget names of indexes that are gone (dropped collections), so that a collection re-created
	// under the same name gets its indexes again.
	if len(done) > 0 {
		live, err := collectStrings(ctx, pool, `SELECT indexname FROM pg_indexes WHERE indexname LIKE $1`, ginIndexPrefix+"%")
		if err == nil {
			exists := make(map[string]bool, len(live))
			for _, n := range live {
				exists[n] = true
			}
			for n := range done {
				if !exists[n] {
					delete(done, n)
				}
			}
		}
	}
	return nil
}

func collectStrings(ctx context.Context, pool *pgxpool.Pool, q string, args ...any) ([]string, error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
