package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestQuietDuplicates(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // lines expected, by their start
	}{
		{slog.LevelWarn, []string{"level=ERROR msg=\"connection refused\""}},
		{slog.LevelDebug, []string{"level=DEBUG msg=Query", "level=ERROR msg=\"connection refused\""}},
	} {
		var out bytes.Buffer
		logger := slog.New(quietDuplicates{slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level})}).
			With("name", "postgresql")
		dup := errors.New(`ERROR: duplicate key value violates unique constraint "x__id__idx" (SQLSTATE 23505)`)
		logger.Error("Query", "sql", "INSERT INTO t", "err", dup)
		logger.Error("connection refused", "err", errors.New("dial tcp: connection refused"))
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			_, rest, _ := strings.Cut(line, " ") // the time
			got = append(got, rest)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("at %v: %d lines, want %d:\n%s", tc.level, len(got), len(tc.want), out.String())
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("at %v: line %d is %q, want it to start with %q", tc.level, i, got[i], w)
			}
		}
		if tc.level == slog.LevelDebug && !strings.Contains(got[0], "name=postgresql") {
			t.Errorf("the logger's attributes are kept: %q", got[0])
		}
	}
}
