#include "store/schema.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Transaction.h>

#include "absl/strings/str_cat.h"
#include "store/sqlite_status.h"

namespace nvlsched::store {
namespace {

// Version 1: the whole model.
//
// Layout choices:
// - Every table keeps SQLite's implicit rowid, so "ORDER BY rowid" is insertion order and an
//   upsert (INSERT ... ON CONFLICT DO UPDATE) keeps a row's position. Ids are TEXT UUIDs.
// - Maps and lists live in WITHOUT ROWID child tables keyed by (parent id, key|position): they
//   stay queryable from the sqlite3 shell, foreign keys check quota instance types, and the
//   partition index answers "which instances use this NVLink partition".
// - "No machine" / "no batch" are NULL, so the machine foreign key only checks real references
//   and a machine cannot be deleted while an instance still refers to it.
// - Booleans are 0/1 INTEGERs and machine state is 0/1/2, each with a CHECK.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE instance_types (
  id                    TEXT PRIMARY KEY NOT NULL,
  name                  TEXT NOT NULL UNIQUE,
  gpu_model             TEXT NOT NULL,
  gpus_per_machine      INTEGER NOT NULL CHECK (gpus_per_machine > 0),
  gpu_memory_mib        INTEGER NOT NULL CHECK (gpu_memory_mib >= 0),
  price_per_hour_micros INTEGER NOT NULL CHECK (price_per_hour_micros >= 0),
  interconnect          TEXT NOT NULL
);

CREATE TABLE domains (
  id      TEXT PRIMARY KEY NOT NULL,
  name    TEXT NOT NULL,
  site_id TEXT NOT NULL
);

CREATE TABLE machines (
  id               TEXT PRIMARY KEY NOT NULL,
  domain_id        TEXT NOT NULL REFERENCES domains(id),
  tray_index       INTEGER NOT NULL CHECK (tray_index >= 0),
  instance_type_id TEXT NOT NULL REFERENCES instance_types(id),
  gpu_count        INTEGER NOT NULL CHECK (gpu_count > 0),
  state            INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
  state_reason     TEXT NOT NULL
);
CREATE INDEX machines_by_domain ON machines(domain_id, tray_index);
CREATE INDEX machines_by_instance_type ON machines(instance_type_id);

CREATE TABLE machine_labels (
  machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  PRIMARY KEY (machine_id, key)
) WITHOUT ROWID;

CREATE TABLE tenants (
  id   TEXT PRIMARY KEY NOT NULL,
  org  TEXT NOT NULL,
  name TEXT NOT NULL
);
CREATE INDEX tenants_by_org ON tenants(org);

CREATE TABLE tenant_quotas (
  tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  instance_type_id TEXT NOT NULL REFERENCES instance_types(id),
  max_machines     INTEGER NOT NULL CHECK (max_machines >= 0),
  PRIMARY KEY (tenant_id, instance_type_id)
) WITHOUT ROWID;
CREATE INDEX tenant_quotas_by_instance_type ON tenant_quotas(instance_type_id);

CREATE TABLE instances (
  id                  TEXT PRIMARY KEY NOT NULL,
  name                TEXT NOT NULL,
  tenant_id           TEXT NOT NULL REFERENCES tenants(id),
  instance_type_id    TEXT NOT NULL REFERENCES instance_types(id),
  machine_id          TEXT REFERENCES machines(id),
  gpu_count           INTEGER NOT NULL CHECK (gpu_count > 0),
  whole_machine       INTEGER NOT NULL CHECK (whole_machine IN (0, 1)),
  batch_id            TEXT,
  strict              INTEGER NOT NULL CHECK (strict IN (0, 1)),
  status              TEXT NOT NULL,
  created_unix_micros INTEGER NOT NULL,
  updated_unix_micros INTEGER NOT NULL,
  details             BLOB NOT NULL,
  UNIQUE (tenant_id, name)
);
CREATE INDEX instances_by_machine ON instances(machine_id);
CREATE INDEX instances_by_batch ON instances(batch_id);

CREATE TABLE instance_nvlink_partitions (
  instance_id  TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
  position     INTEGER NOT NULL,
  partition_id TEXT NOT NULL,
  PRIMARY KEY (instance_id, position)
) WITHOUT ROWID;
CREATE INDEX instance_nvlink_partitions_by_partition
  ON instance_nvlink_partitions(partition_id);

CREATE TABLE idempotency (
  tenant_id           TEXT NOT NULL REFERENCES tenants(id),
  request_id          TEXT NOT NULL,
  request_fingerprint BLOB NOT NULL,
  response            BLOB NOT NULL,
  created_unix_micros INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, request_id)
);

CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL
);
)sql";

// Version 2: the event log of EventService. sequence is the rowid (appends are cheap, ranges
// are a rowid range scan); the columns a watcher filters on, and the event itself.
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE events (
  sequence         INTEGER PRIMARY KEY NOT NULL CHECK (sequence > 0),
  time_unix_micros INTEGER NOT NULL,
  type             INTEGER NOT NULL,
  org              TEXT NOT NULL,
  tenant_id        TEXT NOT NULL,
  payload          BLOB NOT NULL
);
)sql";

// Version 10: spare trays. A domain's own spare_machines (NULL: the fleet default, which
// lives in meta under "default_spare_machines").
// Version 11: no index of instances by machine. Instance ids are time-ordered (UUIDv7), so
// their rows and primary-key index grow at the end; machine ids are not, and this index put
// every instance written or deleted on a random page of its own, which made a commit's writes
// grow with the table (issue 20: 74 vs 37 KiB per batch call at 100k vs 1.8k machines). Its
// one reader was SQLite's foreign-key check when a machine row is deleted, which now scans
// the instances table: RemoveMachine is an operator's rare call, and the engine refuses it
// while an instance holds the machine before SQLite ever checks.
constexpr char kSchemaV11[] = R"sql(
DROP INDEX instances_by_machine;
)sql";

// Version 12: no UNIQUE (tenant_id, name) and no foreign key from instances to machines
// (issue 20). The unique index put every instance written or deleted on a random page of its
// own, and the foreign key probed the machines' primary key once per instance written: on a
// 100k-machine fleet held at 65%, a batch call's commit touched pages all over both, and the
// batch rate was 0.6 of a 1.8k-machine fleet's. The engine checks both before any row is
// written: a tenant's instance names are unique in its State (NameTaken), and an instance is
// placed only on a machine of the fleet, which RemoveMachine refuses to drop while an instance
// holds it. SQLite cannot drop a table constraint: the table is rebuilt, every row keeping its
// rowid (the insertion order the load reads in).
constexpr char kSchemaV12[] = R"sql(
CREATE TABLE instances_v12 (
  id                   TEXT PRIMARY KEY NOT NULL,
  name                 TEXT NOT NULL,
  tenant_id            TEXT NOT NULL REFERENCES tenants(id),
  instance_type_id     TEXT NOT NULL REFERENCES instance_types(id),
  machine_id           TEXT,
  gpu_count            INTEGER NOT NULL CHECK (gpu_count > 0),
  whole_machine        INTEGER NOT NULL CHECK (whole_machine IN (0, 1)),
  batch_id             TEXT,
  strict               INTEGER NOT NULL CHECK (strict IN (0, 1)),
  status               TEXT NOT NULL,
  created_unix_micros  INTEGER NOT NULL,
  updated_unix_micros  INTEGER NOT NULL,
  details              BLOB NOT NULL,
  nvlink_partition_ids TEXT NOT NULL DEFAULT ''
);
INSERT INTO instances_v12 (rowid, id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                           whole_machine, batch_id, strict, status, created_unix_micros,
                           updated_unix_micros, details, nvlink_partition_ids)
  SELECT rowid, id, name, tenant_id, instance_type_id, machine_id, gpu_count, whole_machine,
         batch_id, strict, status, created_unix_micros, updated_unix_micros, details,
         nvlink_partition_ids
  FROM instances ORDER BY rowid;
DROP TABLE instances;
ALTER TABLE instances_v12 RENAME TO instances;
)sql";

constexpr char kSchemaV10[] = R"sql(
ALTER TABLE domains ADD COLUMN spare_machines INTEGER
  CHECK (spare_machines IS NULL OR spare_machines >= 0);
)sql";

// Version 6: an NVLink domain's health, set by operators: 0 READY, 1 DEGRADED (no new strict
// batches), 2 MAINTENANCE (nothing new).
constexpr char kSchemaV6[] = R"sql(
ALTER TABLE domains ADD COLUMN state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2));
ALTER TABLE domains ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
)sql";

// Version 5: a machine waiting to be wiped after its last instance left. Its state column
// says MAINTENANCE too, so an older reader never hands it out.
constexpr char kSchemaV5[] = R"sql(
ALTER TABLE machines ADD COLUMN cleaning INTEGER NOT NULL DEFAULT 0 CHECK (cleaning IN (0, 1));
)sql";

// Version 4: the spot price of an instance type (0: not sold as spot).
constexpr char kSchemaV4[] = R"sql(
ALTER TABLE instance_types ADD COLUMN spot_price_per_hour_micros INTEGER NOT NULL DEFAULT 0
  CHECK (spot_price_per_hour_micros >= 0);
)sql";

// Version 3: the tenant's scheduling priority (queued requests of higher priority go first).
// Tenants stored before it get the default, 0.
constexpr char kSchemaV3[] = R"sql(
ALTER TABLE tenants ADD COLUMN priority INTEGER NOT NULL DEFAULT 0
  CHECK (priority BETWEEN -1000 AND 1000);
)sql";

// Version 8: per-site quotas. tenant_quotas gets a site_id ('' = every site, as before) and
// its primary key becomes (tenant_id, instance_type_id, site_id), so a tenant may have a
// fleet-wide entry and per-site entries for one type. SQLite cannot change a primary key in
// place: the table is rebuilt, existing rows keeping site_id ''.
constexpr char kSchemaV8[] = R"sql(
CREATE TABLE tenant_quotas_v8 (
  tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  instance_type_id TEXT NOT NULL REFERENCES instance_types(id),
  site_id          TEXT NOT NULL DEFAULT '',
  max_machines     INTEGER NOT NULL CHECK (max_machines >= 0),
  PRIMARY KEY (tenant_id, instance_type_id, site_id)
) WITHOUT ROWID;
INSERT INTO tenant_quotas_v8 (tenant_id, instance_type_id, site_id, max_machines)
  SELECT tenant_id, instance_type_id, '', max_machines FROM tenant_quotas;
DROP TABLE tenant_quotas;
ALTER TABLE tenant_quotas_v8 RENAME TO tenant_quotas;
CREATE INDEX tenant_quotas_by_instance_type ON tenant_quotas(instance_type_id);
)sql";

// Version 7: the write path (issue 20). An instance's NVLink partition ids move into a column
// of its row (ids joined by a newline, in order; '' for none): the child table made every
// instance insert and delete run a cascade program with an ephemeral table (about a third of
// a batch commit's instructions). The index on batch_id is dropped: nothing reads by it, and
// every instance insert and delete paid for it.
constexpr char kSchemaV7[] = R"sql(
ALTER TABLE instances ADD COLUMN nvlink_partition_ids TEXT NOT NULL DEFAULT '';
-- Each instance's ids joined in position order (positions run 0, 1, ... as version 1 wrote
-- them): a recursive walk, since group_concat's order is not defined.
CREATE TEMP TABLE v7_partition_ids AS
WITH RECURSIVE joined(instance_id, position, ids) AS (
  SELECT instance_id, position, partition_id FROM instance_nvlink_partitions WHERE position = 0
  UNION ALL
  SELECT j.instance_id, p.position, j.ids || char(10) || p.partition_id
  FROM joined AS j JOIN instance_nvlink_partitions AS p
    ON p.instance_id = j.instance_id AND p.position = j.position + 1)
SELECT j.instance_id AS instance_id, j.ids AS ids FROM joined AS j
WHERE j.position = (SELECT max(position) FROM instance_nvlink_partitions
                    WHERE instance_id = j.instance_id);
UPDATE instances SET nvlink_partition_ids = coalesce(
  (SELECT ids FROM v7_partition_ids WHERE instance_id = instances.id), '');
DROP TABLE v7_partition_ids;
DROP TABLE instance_nvlink_partitions;
DROP INDEX instances_by_batch;
)sql";

// Version 9: a machine whose last instance left under --require_cleaning waits for its wipe
// in any state, not only CLEANING: one drained (MAINTENANCE, ERROR) while held must not go
// back to READY unwiped. Machines already CLEANING wait for theirs.
constexpr char kSchemaV9[] = R"sql(
ALTER TABLE machines ADD COLUMN wipe_pending INTEGER NOT NULL DEFAULT 0
  CHECK (wipe_pending IN (0, 1));
UPDATE machines SET wipe_pending = 1 WHERE cleaning = 1;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema: instance types, domains, machines, tenants, instances, idempotency, meta",
     kSchemaV1},
    {2, "event log (EventService)", kSchemaV2},
    {3, "tenant scheduling priority (tenants.priority, default 0)", kSchemaV3},
    {4, "spot price of instance types (instance_types.spot_price_per_hour_micros, default 0)",
     kSchemaV4},
    {5, "machines waiting to be wiped (machines.cleaning, default 0)", kSchemaV5},
    {6, "NVLink domain health (domains.state, domains.state_reason)", kSchemaV6},
    {7, "NVLink partition ids in the instance row (instances.nvlink_partition_ids); "
        "instance_nvlink_partitions and instances_by_batch dropped", kSchemaV7},
    {8, "per-site quotas (tenant_quotas.site_id, primary key (tenant_id, instance_type_id, "
        "site_id); table rebuilt)", kSchemaV8},
    {9, "machines waiting for a wipe in any state (machines.wipe_pending, default 0; 1 for "
        "CLEANING machines)", kSchemaV9},
    {10, "spare trays per NVLink domain (domains.spare_machines, NULL = the fleet default in "
         "meta default_spare_machines)", kSchemaV10},
    {11, "no index of instances by machine (instances_by_machine dropped; instance ids are "
         "time-ordered)", kSchemaV11},
    {12, "no UNIQUE (tenant_id, name) and no foreign key to machines on instances (the engine "
         "checks both; table rebuilt)", kSchemaV12},
};

absl::Status NewerSchemaError(absl::string_view path, int found_version, int supported_version) {
  return absl::FailedPreconditionError(absl::StrCat(
      "database ", path, " has schema version ", found_version,
      ", but this nvlsched supports schema versions up to ", supported_version,
      ": it was written by a newer nvlsched; run that version, or start from a snapshot "
      "taken before the upgrade"));
}

}  // namespace

absl::Span<const Migration> SchemaMigrations() { return kMigrations; }

int CurrentSchemaVersion() { return SchemaMigrations().back().version; }

absl::StatusOr<int> ReadSchemaVersion(SQLite::Database& db, absl::string_view path) {
  try {
    return db.execAndGet("PRAGMA user_version").getInt();
  } catch (const SQLite::Exception& e) {
    const std::string what = absl::StrCat("reading the schema version of ", path);
    if (IsCorruptionCode(e.getErrorCode())) {
      return SqliteErrorStatus(absl::StatusCode::kDataLoss, what, e);
    }
    return SqliteErrorStatus(absl::StatusCode::kUnavailable, what, e);
  }
}

absl::Status CheckSchemaVersionSupported(int found_version, absl::string_view path) {
  const int current = CurrentSchemaVersion();
  if (found_version > current) {
    return NewerSchemaError(path, found_version, current);
  }
  if (found_version < 0) {
    return absl::FailedPreconditionError(absl::StrCat("database ", path,
                                                      " has invalid schema version ", found_version,
                                                      " (expected 0..", current, ")"));
  }
  return absl::OkStatus();
}

absl::Status ApplyMigrations(SQLite::Database& db, absl::string_view path,
                             absl::Span<const Migration> migrations,
                             const std::function<void(const MigrationStep&)>& observer) {
  absl::StatusOr<int> version = ReadSchemaVersion(db, path);
  if (!version.ok()) return version.status();
  const int target = migrations.empty() ? 0 : migrations.back().version;
  if (*version > target) {
    return NewerSchemaError(path, *version, target);
  }
  const bool upgrade = *version > 0;  // not a new database
  for (const Migration& migration : migrations) {
    if (migration.version <= *version) continue;
    MigrationStep step{migration.version - 1, migration.version, migration.description,
                       std::nullopt};
    if (observer && upgrade) observer(step);
    const absl::Time started = absl::Now();
    try {
      SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
      db.exec(migration.sql);
      db.exec(absl::StrCat("PRAGMA user_version = ", migration.version));
      transaction.commit();
      step.took = absl::Now() - started;
      if (observer && upgrade) observer(step);
    } catch (const SQLite::Exception& e) {
      // The Transaction destructor has rolled back: the file stays at the previous version.
      return SqliteErrorStatus(
          absl::StatusCode::kUnavailable,
          absl::StrCat("migrating ", path, " from schema version ", migration.version - 1, " to ",
                       migration.version, " (", migration.description, ")"),
          e);
    }
  }
  return absl::OkStatus();
}

absl::Status MigrateToCurrent(SQLite::Database& db, absl::string_view path,
                              const std::function<void(const MigrationStep&)>& observer) {
  return ApplyMigrations(db, path, SchemaMigrations(), observer);
}

}  // namespace nvlsched::store
