// Command avviso-ferretdb runs FerretDB (a MongoDB-compatible server) for Avviso's dev stack, tests,
// benchmarks and drill, on one of FerretDB's two backends:
//
//   - PostgreSQL (--postgresql-dir DIR, the default of Avviso's scripts): this program runs a private
//     PostgreSQL cluster in DIR (initdb on first start, stopped with us; see postgres.go) and keeps
//     GIN indexes that FerretDB's pushed-down filters can use (see postgres_index.go);
//     --postgresql-url URL uses a server run by someone else instead.
//   - SQLite (--sqlite-dir DIR): one file per database, nothing else to run; every filter but {_id}
//     reads the whole collection (see sqlite_index.go), which is why Avviso moved off it.
//
// Either way, clients do not talk to FerretDB directly: FerretDB listens on a private Unix socket
// and a write gate on --listen-addr keeps conflicting writes apart (FerretDB 1.24 updates a
// document by reading it and writing it back with no lock between, so concurrent updates of one
// document lost writes) and splits large update commands (FerretDB holds a pooled connection per
// statement until the command ends, and large bulks wedged it). See serialize.go and
// docs/ferretdb-serialization.md; --avviso-write-locks=off restores FerretDB's own behaviour.
//
// Why our own main instead of FerretDB's cmd/ferretdb: a FerretDB binary built from its own
// main package insists on generated version files (build/version/version.txt) that only its
// repository's task runner writes, so `go install .../cmd/ferretdb@v1.24.2` panics at start.
// The embeddable package below skips that check when FerretDB is not the main module.
// (tools/bootstrap.sh rebuilds the binary when go.mod, go.sum or any .go file here changes.)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	level := flag.String("log-level", "warn", "debug, info, warn or error")

	dir := flag.String("sqlite-dir", "", "SQLite backend: directory for the SQLite files (one per database); created if missing")
	synchronous := flag.String("sqlite-synchronous", "normal", "SQLite's synchronous pragma for every database file: full (fsync at every commit), normal (WAL: fsync at checkpoints; survives a killed server, not a power cut) or off")
	idIndex := flag.Bool("avviso-id-index", true, "SQLite backend: keep an index matching FerretDB's lookups by _id on every collection table (see keepIDIndexes)")

	pgDir := flag.String("postgresql-dir", "", "PostgreSQL backend: data directory of a private PostgreSQL cluster that this program creates (initdb), starts and stops")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL backend: URL of a PostgreSQL database run by someone else (instead of --postgresql-dir)")
	pgBin := flag.String("postgresql-bin", "", "directory holding PostgreSQL's initdb and postgres (default: found on PATH or in /usr/lib/postgresql/<newest>/bin)")
	pgUser := flag.String("postgresql-os-user", "postgres", "when run as root: the system user that runs the private cluster (PostgreSQL refuses to run as root)")
	pgDurability := flag.String("postgresql-durability", "process", "private cluster: full (fsync at every commit) or process (a commit is written to the OS before it is acknowledged, so a killed server loses nothing, but a power cut can: the trade-off of --sqlite-synchronous=normal)")
	ginIndexes := flag.Bool("avviso-gin-indexes", true, "PostgreSQL backend: keep GIN indexes on the fields of every index, which FerretDB's pushed-down equality filters can use (see postgres_index.go)")

	writeLocks := flag.String("avviso-write-locks", locksID, "how conflicting writes are kept apart (see serialize.go): id (writes by _id lock their documents, other writes their collection), collection (every write locks its collection) or off (FerretDB's own behaviour: concurrent updates of one document lose writes)")
	updateChunk := flag.Int("avviso-update-chunk", 50, "with --avviso-write-locks other than off: update commands of more statements than this reach FerretDB in parts of this many (FerretDB holds a pooled connection per statement until the command ends); 0: never split")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fail(2, "bad --log-level %q: %v", *level, err)
	}
	logger := slog.New(quietDuplicates{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})})

	switch *writeLocks {
	case locksID, locksCollection, locksOff:
	default:
		fail(2, "bad --avviso-write-locks %q: want id, collection or off", *writeLocks)
	}

	backends := 0
	for _, set := range []bool{*dir != "", *pgDir != "", *pgURL != ""} {
		if set {
			backends++
		}
	}
	if backends != 1 {
		fail(2, "give exactly one of --postgresql-dir, --postgresql-url or --sqlite-dir")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Logger: logger}
	// With write locks, FerretDB listens on a private Unix socket and the write gate on --listen-addr.
	if *writeLocks != locksOff {
		sock, cleanup, err := privateSocket()
		if err != nil {
			fail(1, "%v", err)
		}
		defer cleanup()
		cfg.Listener = ferretdb.ListenerConfig{Unix: sock}
	}
	// Pooled backend connections update commands may hold together (see serialize.go); the rest of
	// the pool is left to reads, cursors and other writes.
	var pool int64
	var cluster *pgCluster
	switch {
	case *dir != "":
		url, err := sqliteURL(*dir, *synchronous)
		if err != nil {
			fail(2, "%v", err)
		}
		cfg.Handler, cfg.SQLiteURL = "sqlite", url
		pool = 100 // FerretDB's, per database file
		if *idIndex {
			go keepIDIndexes(ctx, *dir, logger, time.Second)
		}

	default:
		url := *pgURL
		if *pgDir != "" {
			var err error
			cluster, err = startCluster(ctx, clusterOptions{dir: *pgDir, bin: *pgBin, osUser: *pgUser, durability: *pgDurability}, logger)
			if err != nil {
				fail(1, "PostgreSQL in %s: %v", *pgDir, err)
			}
			url = cluster.url
		}
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", withPoolSize(url, ferretPoolSize)
		pool = poolSizeOf(cfg.PostgreSQLURL, ferretPoolSize)
		if *ginIndexes {
			go keepGinIndexes(ctx, url, logger, time.Second)
		}
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		cluster.stop(logger)
		fail(1, "%v", err)
	}

	var gateDone chan struct{}
	if *writeLocks != locksOff {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			cluster.stop(logger)
			fail(1, "%v", err)
		}
		gate := newWriteGate(*writeLocks, *updateChunk, pool-pool/4, logger)
		gateDone = make(chan struct{})
		go func() {
			defer close(gateDone)
			gate.serve(ctx, ln, func() (net.Conn, error) { return net.Dial("unix", cfg.Listener.Unix) })
		}()
	}

	logger.Info("listening", "addr", *listen, "handler", cfg.Handler, "write-locks", *writeLocks)
	runErr := f.Run(ctx)
	if gateDone != nil {
		<-gateDone
	}
	cluster.stop(logger)
	if runErr != nil && ctx.Err() == nil {
		fail(1, "%v", runErr)
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "avviso-ferretdb: "+format+"\n", args...)
	os.Exit(code)
}

// privateSocket names the Unix socket FerretDB listens on behind the write gate: on Linux an
// abstract one (no file, so nothing is left behind when this process is killed), elsewhere a file
// in a temporary folder.
func privateSocket() (path string, cleanup func(), err error) {
	if runtime.GOOS == "linux" {
		return fmt.Sprintf("@avviso-ferretdb-%d-%d", os.Getpid(), time.Now().UnixNano()), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "avviso-ferretdb-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "ferretdb.sock"), func() { _ = os.RemoveAll(dir) }, nil
}
