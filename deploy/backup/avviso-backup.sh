#!/usr/bin/env bash
# Nightly backup of Avviso's two stores, each a consistent copy of its own:
#   - MongoDB (subscribers, incidents, deliveries, ledger...): mongodump --oplog from the replica set,
#     a point-in-time copy taken while Avviso runs;
#   - Temporal's database (running workflows, schedules): pg_dump of its two databases.
# Settings come from /etc/avviso/backup.env (see deploy/README.md, "Backups"):
#   BACKUP_DIR, BACKUP_KEEP_DAYS, BACKUP_MONGODB_URI (a user with the backup role),
#   TEMPORAL_PG_HOST, TEMPORAL_PG_USER, PGPASSFILE.
set -euo pipefail

: "${BACKUP_DIR:?set BACKUP_DIR, e.g. /var/backups/avviso}"
: "${BACKUP_MONGODB_URI:?set BACKUP_MONGODB_URI to a user with the backup role, e.g. mongodb://backup@10.0.0.11,10.0.0.12,10.0.0.13/?replicaSet=rs0&authSource=admin}"
: "${TEMPORAL_PG_HOST:?set TEMPORAL_PG_HOST to the host of the PostgreSQL of Temporal}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$BACKUP_DIR/$stamp"
mkdir -p "$target"

# A secondary when there is one, so the primary's load is untouched; --oplog makes it point-in-time.
mongodump --uri="$BACKUP_MONGODB_URI" --readPreference=secondaryPreferred --oplog --gzip --archive="$target/mongodb.archive.gz"

for db in temporal temporal_visibility; do
  pg_dump --host="$TEMPORAL_PG_HOST" --username="${TEMPORAL_PG_USER:-temporal}" --format=custom --file="$target/$db.pgdump" "$db"
done

sha256sum "$target"/* > "$target/SHA256SUMS"
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -mtime +"$keep_days" -exec rm -rf {} +
echo "backup written to $target"
