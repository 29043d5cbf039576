// Command avviso-ferretdb runs FerretDB (a MongoDB-compatible server) on SQLite for
// Avviso's dev stack and tests.
//
// Why our own main instead of FerretDB's cmd/ferretdb: a FerretDB binary built from its own
// main package insists on generated version files (build/version/version.txt) that only its
// repository's task runner writes, so `go install .../cmd/ferretdb@v1.24.2` panics at start.
// The embeddable package below skips that check when FerretDB is not the main module.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("sqlite-dir", "", "directory for the SQLite files (one per database); created if missing")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	if *dir == "" {
		fmt.Fprintln(os.Stderr, "avviso-ferretdb: --sqlite-dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "avviso-ferretdb: cannot create %s: %v\n", *dir, err)
		os.Exit(1)
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "avviso-ferretdb: bad --log-level %q: %v\n", *level, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	// FerretDB wants a URI naming a directory, with a trailing slash.
	url := "file:" + *dir
	if url[len(url)-1] != '/' {
		url += "/"
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: url,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "avviso-ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Info("listening", "addr", *listen, "dir", *dir)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "avviso-ferretdb: %v\n", err)
		os.Exit(1)
	}
}
