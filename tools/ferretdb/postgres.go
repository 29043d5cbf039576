package main

// A private PostgreSQL cluster for FerretDB's PostgreSQL backend, owned by this process.
//
// Why PostgreSQL and not SQLite: FerretDB 1.24 pushes equality filters down to PostgreSQL as
// `_jsonb->'field' @> value`, so PostgreSQL returns only the matching documents, and with a GIN
// index on the field (postgres_index.go) it finds them without reading the table. On SQLite only
// {_id} is pushed down: every other filter decodes the whole collection in FerretDB (about 4 s at
// the 40,000 delivery records of a 20,000-subscriber incident, for each such query).
//
// Lifetime: the cluster is a child of this process. We stop it (fast shutdown) when FerretDB stops;
// if this process is killed outright, the kernel sends the cluster SIGINT (Pdeathsig), and the next
// start waits for a cluster still shutting down in the same directory before starting its own.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	clusterSuperuser = "avviso"
	clusterDatabase  = "ferretdb"
)

type clusterOptions struct {
	dir        string
	bin        string
	osUser     string
	durability string
}

type pgCluster struct {
	url    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startCluster creates the cluster on first use, starts it on a free loopback port and waits until
// it accepts connections and has FerretDB's database.
func startCluster(ctx context.Context, o clusterOptions, l *slog.Logger) (*pgCluster, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	bin, err := findPostgresBin(o.bin)
	if err != nil {
		return nil, err
	}
	var durability []string
	switch o.durability {
	case "full":
	case "process":
		// Commits are written to the kernel before they are acknowledged (so a killed server or a
		// killed FerretDB loses nothing), without waiting for the disk.
		durability = []string{"-c", "fsync=off", "-c", "full_page_writes=off"}
	default:
		return nil, fmt.Errorf("bad --postgresql-durability %q: want full or process", o.durability)
	}

	cred, err := runAs(o.osUser)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
		if err := makeTraversable(filepath.Dir(dir), l); err != nil {
			return nil, err
		}
	}

	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		start := time.Now()
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", dir, "--username", clusterSuperuser,
			"--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb failed: %v\n%s", err, out)
		}
		l.Info("postgresql cluster created", "dir", dir, "took", time.Since(start))
	}

	if err := waitForOldPostmaster(dir, l); err != nil {
		return nil, err
	}

	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		_ = logFile.Chown(int(cred.Uid), int(cred.Gid))
	}
	args := []string{"-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		// FerretDB's statements are prepared once with the field name as a parameter
		// (`_jsonb->$1 @> $2`); a generic plan cannot match an index on `_jsonb->'state'`, a plan
		// made for the actual parameters can. Planning costs well under a millisecond.
		"-c", "plan_cache_mode=force_custom_plan",
		// Those plans pick an index by the statistics of its expression: a delivery page
		// (`_jsonb->'page' @> 7`) is one thousandth of the records, `state = planned` may be all of
		// them. Statistics come from autovacuum's ANALYZE: look for tables that changed every few
		// seconds rather than every minute, since an incident plans its records moments before
		// sending them.
		"-c", "autovacuum_naptime=5s",
		"-c", fmt.Sprintf("max_connections=%d", ferretPoolSize+50), "-c", "shared_buffers=256MB",
		"-c", "log_min_messages=warning", "-c", "log_line_prefix=%m [%p] ",
	}
	args = append(args, durability...)
	c := &pgCluster{dir: dir, exited: make(chan struct{})}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGINT}

	// Pdeathsig fires when the OS thread that started the child ends, not the process: start it from
	// a goroutine locked to its thread for as long as the child lives.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			close(c.exited)
			return
		}
		started <- nil
		_ = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cannot start postgres: %v", err)
	}

	c.url = (&url.URL{Scheme: "postgres", User: url.User(clusterSuperuser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/" + clusterDatabase}).String()
	admin := strings.TrimSuffix(c.url, "/"+clusterDatabase) + "/postgres"
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ensureDatabase(ctx, admin)
		if err == nil {
			break
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("postgres exited at start; see %s", filepath.Join(dir, "server.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop(l)
			return nil, fmt.Errorf("postgres did not accept connections within 60 s (%v); see %s", err, filepath.Join(dir, "server.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.Info("postgresql cluster ready", "dir", dir, "port", port, "pid", c.cmd.Process.Pid)
	return c, nil
}

// stop asks the cluster for a fast shutdown (open transactions are rolled back, everything
// committed is kept) and waits for it; after 30 s, an immediate one.
func (c *pgCluster) stop(l *slog.Logger) {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		l.Warn("postgresql did not stop within 30 s: immediate shutdown", "dir", c.dir)
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.exited
	}
}

func ensureDatabase(ctx context.Context, adminURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, clusterDatabase).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{clusterDatabase}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// waitForOldPostmaster waits for a cluster of an earlier run in the same directory (its parent was
// killed, and it is shutting down) to be gone, asking it to stop if it is still running.
func waitForOldPostmaster(dir string, l *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return nil // a stale file: postgres removes it itself
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !strings.Contains(string(cmdline), "postgres") {
		return nil // the pid was reused by something else
	}
	l.Warn("a postgres of an earlier run still holds the directory: asking it to stop", "dir", dir, "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGINT)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return fmt.Errorf("the postgres of an earlier run (pid %d) did not stop within 60 s", pid)
}

// runAs returns the credentials to run PostgreSQL with: none when we are not root, else those of
// osUser (PostgreSQL refuses to run as root).
func runAs(osUser string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL will not: no system user %q to run it as (%v); create one or pass --postgresql-os-user", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeTraversable lets the cluster's user reach its directory: every ancestor gets the "search"
// bit for others where it lacks it (not "read": its contents stay unlisted). Temporary folders
// (mkdtemp) are created 0700.
func makeTraversable(dir string, l *slog.Logger) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("cannot let the PostgreSQL user through %s: %v", d, err)
			}
			l.Debug("made traversable for the postgresql user", "dir", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// findPostgresBin finds the directory holding initdb and postgres.
func findPostgresBin(flagValue string) (string, error) {
	has := func(d string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(d, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if flagValue != "" {
		if !has(flagValue) {
			return "", fmt.Errorf("--postgresql-bin %s holds no initdb and postgres", flagValue)
		}
		return flagValue, nil
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL's server is not installed (no postgres and initdb on PATH or in /usr/lib/postgresql/*/bin): run tools/bootstrap.sh, or apt-get install postgresql")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ferretPoolSize is the size of FerretDB's pool of PostgreSQL connections (its default is 50).
//
// Why so many: FerretDB 1.24 holds one connection per statement of an update command until the
// whole command ends (internal/handler/msg_update.go closes each statement's query with a `defer`
// inside the loop over the statements), and takes one more for each write. So a bulkWrite of N
// updates needs N+1 connections at once, and when the commands in flight together need more than
// the pool has, every one of them waits for a connection that none will give back: the server
// hangs with no CPU used. (On SQLite the pool is 100: a bulkWrite of 100 hung, and concurrent
// bulks of 50 hung the 20,000 drill.) The write gate (serialize.go) now sends update commands to
// FerretDB in parts of at most 50 statements and lets update commands hold at most three quarters
// of the pool together, so no bulk size or number of clients can wedge it; the large pool keeps
// several such parts (and many single updates) running at once. Idle connections cost PostgreSQL
// little; they are opened only when needed.
const ferretPoolSize = 500

// withPoolSize sets the size of FerretDB's connection pool, unless the URL sets it.
func withPoolSize(raw string, n int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", strconv.Itoa(n))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// poolSizeOf is the pool size a FerretDB PostgreSQL URL asks for (pool_max_conns), or def.
func poolSizeOf(raw string, def int) int64 {
	if u, err := url.Parse(raw); err == nil {
		if n, err := strconv.Atoi(u.Query().Get("pool_max_conns")); err == nil && n > 0 {
			return int64(n)
		}
	}
	return int64(def)
}
