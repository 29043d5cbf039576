package main

// A unique insert that loses is how Avviso claims work exactly once (a send request, a receipt's
// place in pending_receipts, a delivery record planned again by a retried planning): the client
// gets its duplicate-key error (11000) and goes on. FerretDB's PostgreSQL pool logs every failed
// statement at ERROR with its arguments, so a 20,000 drill printed some 220 ERROR lines about
// nothing wrong, among which a real error was hard to see. This handler logs those at DEBUG.

import (
	"context"
	"log/slog"
	"strings"
)

// quietDuplicates passes every record on, a duplicate-key failure at DEBUG instead of ERROR.
type quietDuplicates struct{ slog.Handler }

func (h quietDuplicates) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError || !isDuplicateKey(r) {
		return h.Handler.Handle(ctx, r)
	}
	if !h.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	debug := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		debug.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, debug)
}

func (h quietDuplicates) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietDuplicates{h.Handler.WithAttrs(attrs)}
}

func (h quietDuplicates) WithGroup(name string) slog.Handler {
	return quietDuplicates{h.Handler.WithGroup(name)}
}

// isDuplicateKey: the record's error is a unique violation (PostgreSQL's SQLSTATE 23505, SQLite's message).
func isDuplicateKey(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" || a.Key == "error" {
			s := a.Value.String()
			found = strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "UNIQUE constraint failed")
		}
		return !found
	})
	return found
}
