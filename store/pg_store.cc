#include "store/pg_store.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <endian.h>

#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "store/schema.h"
#include "store/snapshot.h"

namespace nvlsched::store {

struct PgConnection {
  explicit PgConnection(const std::string& conninfo) : conn(conninfo) {}
  pqxx::connection conn;
};

namespace {

// The tables of store/schema.cc at version 11, in PostgreSQL's types. Every top-level table
// has `seq`, its insertion order (SQLite's rowid): an upsert (ON CONFLICT DO UPDATE) keeps it.
constexpr char kSchema[] = R"sql(
CREATE TABLE nvlsched_schema (version integer NOT NULL);
CREATE TABLE instance_types (
  seq                        bigint GENERATED ALWAYS AS IDENTITY,
  id                         text PRIMARY KEY,
  name                       text NOT NULL UNIQUE,
  gpu_model                  text NOT NULL,
  gpus_per_machine           bigint NOT NULL CHECK (gpus_per_machine > 0),
  gpu_memory_mib             bigint NOT NULL CHECK (gpu_memory_mib >= 0),
  price_per_hour_micros      bigint NOT NULL CHECK (price_per_hour_micros >= 0),
  interconnect               text NOT NULL,
  spot_price_per_hour_micros bigint NOT NULL DEFAULT 0 CHECK (spot_price_per_hour_micros >= 0)
);
CREATE TABLE domains (
  seq            bigint GENERATED ALWAYS AS IDENTITY,
  id             text PRIMARY KEY,
  name           text NOT NULL,
  site_id        text NOT NULL,
  state          integer NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
  state_reason   text NOT NULL DEFAULT '',
  spare_machines integer CHECK (spare_machines IS NULL OR spare_machines >= 0)
);
CREATE TABLE machines (
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  id               text PRIMARY KEY,
  domain_id        text NOT NULL REFERENCES domains(id),
  tray_index       bigint NOT NULL CHECK (tray_index >= 0),
  instance_type_id text NOT NULL REFERENCES instance_types(id),
  gpu_count        bigint NOT NULL CHECK (gpu_count > 0),
  state            integer NOT NULL CHECK (state IN (0, 1, 2)),
  state_reason     text NOT NULL,
  cleaning         boolean NOT NULL DEFAULT false,
  wipe_pending     boolean NOT NULL DEFAULT false
);
CREATE INDEX machines_by_domain ON machines(domain_id, tray_index);
CREATE INDEX machines_by_instance_type ON machines(instance_type_id);
CREATE TABLE machine_labels (
  machine_id text NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
  key        text NOT NULL,
  value      text NOT NULL,
  PRIMARY KEY (machine_id, key)
);
CREATE TABLE tenants (
  seq      bigint GENERATED ALWAYS AS IDENTITY,
  id       text PRIMARY KEY,
  org      text NOT NULL,
  name     text NOT NULL,
  priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000)
);
CREATE INDEX tenants_by_org ON tenants(org);
CREATE TABLE tenant_quotas (
  tenant_id        text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  instance_type_id text NOT NULL REFERENCES instance_types(id),
  site_id          text NOT NULL DEFAULT '',
  max_machines     bigint NOT NULL CHECK (max_machines >= 0),
  PRIMARY KEY (tenant_id, instance_type_id, site_id)
);
CREATE INDEX tenant_quotas_by_instance_type ON tenant_quotas(instance_type_id);
CREATE TABLE instances (
  seq                  bigint GENERATED ALWAYS AS IDENTITY,
  id                   text PRIMARY KEY,
  name                 text NOT NULL,
  tenant_id            text NOT NULL REFERENCES tenants(id),
  instance_type_id     text NOT NULL REFERENCES instance_types(id),
  machine_id           text REFERENCES machines(id),
  gpu_count            bigint NOT NULL CHECK (gpu_count > 0),
  whole_machine        boolean NOT NULL,
  batch_id             text,
  strict               boolean NOT NULL,
  status               text NOT NULL,
  created_unix_micros  bigint NOT NULL,
  updated_unix_micros  bigint NOT NULL,
  details              bytea NOT NULL,
  nvlink_partition_ids text NOT NULL DEFAULT '',
  UNIQUE (tenant_id, name)
);
CREATE TABLE idempotency (
  seq                 bigint GENERATED ALWAYS AS IDENTITY,
  tenant_id           text NOT NULL REFERENCES tenants(id),
  request_id          text NOT NULL,
  request_fingerprint bytea NOT NULL,
  response            bytea NOT NULL,
  created_unix_micros bigint NOT NULL,
  PRIMARY KEY (tenant_id, request_id)
);
CREATE TABLE meta (
  seq   bigint GENERATED ALWAYS AS IDENTITY,
  key   text PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE events (
  sequence         bigint PRIMARY KEY CHECK (sequence > 0),
  time_unix_micros bigint NOT NULL,
  type             integer NOT NULL,
  org              text NOT NULL,
  tenant_id        text NOT NULL,
  payload          bytea NOT NULL
);
)sql";

// Reads every table at one point in time.
using SnapshotTransaction = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;

// The first version PostgreSQL stores were created at: kSchema is SQLite's version 11.
// Later versions add a migration for both stores.
constexpr int kFirstPgSchemaVersion = 11;

// The migrations after kFirstPgSchemaVersion, in order: each is SQLite's migration of the
// same version (store/schema.cc) in PostgreSQL's terms. A new store is created at version 11
// and runs them all, so every store runs the same statements.
struct PgMigration {
  int version;  // its description is SQLite's migration's of the same version
  const char* sql;
};
constexpr PgMigration kPgMigrations[] = {
    // Version 12: no UNIQUE (tenant_id, name) and no foreign key to machines on instances
    // (the names are PostgreSQL's defaults for the constraints kSchema declares).
    {12, R"sql(
ALTER TABLE instances DROP CONSTRAINT instances_tenant_id_name_key,
                      DROP CONSTRAINT instances_machine_id_fkey;
)sql"},
};

// pqxx exceptions to statuses. A broken connection is UNAVAILABLE and names the cause.
absl::Status PgErrorStatus(absl::StatusCode code, absl::string_view doing,
                           const std::exception& e) {
  std::string message = e.what();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
      sql != nullptr && !sql->sqlstate().empty()) {
    absl::StrAppend(&message, " (SQLSTATE ", sql->sqlstate(), ")");
  }
  return absl::Status(code, absl::StrCat(doing, ": ", message));
}

// A one-dimensional array in PostgreSQL's binary format (array_send): int32 ndim, int32
// flags (0: no NULLs), uint32 element type, then per dimension int32 length and int32 lower
// bound, then each element as int32 length and its bytes in the element type's binary format
// (text and bytea: the bytes; bigint: 8 bytes in network order; boolean: one byte).
class BinaryArray {
 public:
  explicit BinaryArray(uint32_t element_type) : type_(element_type) {}

  void Add(const std::string& bytes) { Element(bytes.data(), bytes.size()); }
  void AddInt(int64_t v) {
    const uint64_t be = htobe64(static_cast<uint64_t>(v));
    Element(reinterpret_cast<const char*>(&be), sizeof(be));
  }
  void AddBool(bool b) { Element(b ? "\1" : "\0", 1); }

  size_t size() const { return count_; }

  pqxx::binarystring Finish() const {
    std::string out;
    out.reserve(20 + body_.size());
    Put32(count_ == 0 ? 0 : 1, &out);  // ndim (an empty array has none)
    Put32(0, &out);                    // no NULLs
    Put32(type_, &out);
    if (count_ > 0) {
      Put32(count_, &out);
      Put32(1, &out);  // lower bound
    }
    out.append(body_);
    return pqxx::binarystring(out);
  }

 private:
  static void Put32(uint32_t v, std::string* out) {
    const uint32_t be = htobe32(v);
    out->append(reinterpret_cast<const char*>(&be), sizeof(be));
  }
  void Element(const char* data, size_t size) {
    Put32(static_cast<uint32_t>(size), &body_);
    body_.append(data, size);
    ++count_;
  }

  uint32_t type_;
  uint32_t count_ = 0;
  std::string body_;
};

// A column a statement writes: its name, its type, and the value that stands for NULL (an
// empty optional-looking field of a row struct: rows.h), if any.
struct Column {
  const char* name;
  const char* type;  // "text", "bytea", "bigint" or "boolean"
  const char* null_when = nullptr;
};

uint32_t TypeOid(absl::string_view type) {  // pg_type.h
  if (type == "text") return 25;
  if (type == "bytea") return 17;
  if (type == "bigint") return 20;
  return 16;  // boolean
}

// Every statement a Commit runs is prepared once per connection (no parse or plan per commit)
// and takes one binary array a column, so a kind of row costs one round trip however many rows
// it has. Inserts keep the ChangeSet's order (WITH ORDINALITY ... ORDER BY), so `seq` does.
struct Statement {
  const char* name;
  absl::Span<const Column> columns;
  std::string sql;
};

// INSERT INTO table (columns) SELECT ... FROM unnest($1::type[], ...), upserting on
// `conflict` (a column list; empty: plain insert).
Statement Insert(const char* name, absl::string_view table, absl::Span<const Column> columns,
                 absl::string_view conflict) {
  const std::vector<absl::string_view> keys = absl::StrSplit(conflict, ", ", absl::SkipEmpty());
  std::vector<std::string> names, selected, arrays, updates;
  for (const Column& c : columns) {
    names.push_back(c.name);
    selected.push_back(c.null_when == nullptr
                           ? std::string(c.name)
                           : absl::StrCat("NULLIF(", c.name, ", ", c.null_when, ")"));
    arrays.push_back(absl::StrCat("$", arrays.size() + 1, "::", c.type, "[]"));
    if (std::find(keys.begin(), keys.end(), c.name) == keys.end()) {
      updates.push_back(absl::StrCat(c.name, " = excluded.", c.name));
    }
  }
  std::string sql = absl::StrCat(
      "INSERT INTO ", table, " (", absl::StrJoin(names, ", "), ") SELECT ",
      absl::StrJoin(selected, ", "), " FROM unnest(", absl::StrJoin(arrays, ", "),
      ") WITH ORDINALITY AS u(", absl::StrJoin(names, ", "), ", ord) ORDER BY ord");
  if (!conflict.empty()) {
    absl::StrAppend(&sql, " ON CONFLICT (", conflict, ") DO UPDATE SET ",
                    absl::StrJoin(updates, ", "));
  }
  return Statement{name, columns, std::move(sql)};
}

constexpr Column kIdColumn[] = {{"id", "text"}};
// DELETE FROM table WHERE column = ANY($1::text[]).
Statement DeleteWhereIn(const char* name, absl::string_view table, absl::string_view column) {
  return Statement{name, kIdColumn,
                   absl::StrCat("DELETE FROM ", table, " WHERE ", column, " = ANY($1::text[])")};
}

constexpr Column kInstanceTypeColumns[] = {
    {"id", "text"},          {"name", "text"},         {"gpu_model", "text"},
    {"gpus_per_machine", "bigint"}, {"gpu_memory_mib", "bigint"},
    {"price_per_hour_micros", "bigint"}, {"interconnect", "text"},
    {"spot_price_per_hour_micros", "bigint"}};
// spare_machines -1: NULL, the fleet default (stored values are >= 0).
constexpr Column kDomainColumns[] = {{"id", "text"},           {"name", "text"},
                                     {"site_id", "text"},      {"state", "bigint"},
                                     {"state_reason", "text"}, {"spare_machines", "bigint", "-1"}};
constexpr Column kTenantColumns[] = {
    {"id", "text"}, {"org", "text"}, {"name", "text"}, {"priority", "bigint"}};
constexpr Column kTenantQuotaColumns[] = {{"tenant_id", "text"},
                                          {"instance_type_id", "text"},
                                          {"site_id", "text"},
                                          {"max_machines", "bigint"}};
constexpr Column kMachineColumns[] = {
    {"id", "text"},           {"domain_id", "text"}, {"tray_index", "bigint"},
    {"instance_type_id", "text"}, {"gpu_count", "bigint"}, {"state", "bigint"},
    {"state_reason", "text"}, {"cleaning", "boolean"}, {"wipe_pending", "boolean"}};
constexpr Column kMachineLabelColumns[] = {
    {"machine_id", "text"}, {"key", "text"}, {"value", "text"}};
constexpr Column kInstanceColumns[] = {
    {"id", "text"},
    {"name", "text"},
    {"tenant_id", "text"},
    {"instance_type_id", "text"},
    {"machine_id", "text", "''"},
    {"gpu_count", "bigint"},
    {"whole_machine", "boolean"},
    {"batch_id", "text", "''"},
    {"strict", "boolean"},
    {"status", "text"},
    {"created_unix_micros", "bigint"},
    {"updated_unix_micros", "bigint"},
    {"details", "bytea"},
    {"nvlink_partition_ids", "text"}};
constexpr Column kIdempotencyColumns[] = {{"tenant_id", "text"},
                                          {"request_id", "text"},
                                          {"request_fingerprint", "bytea"},
                                          {"response", "bytea"},
                                          {"created_unix_micros", "bigint"}};
constexpr Column kMetaColumns[] = {{"key", "text"}, {"value", "bytea"}};
constexpr Column kEventColumns[] = {{"sequence", "bigint"}, {"time_unix_micros", "bigint"},
                                    {"type", "bigint"},     {"org", "text"},
                                    {"tenant_id", "text"},  {"payload", "bytea"}};
constexpr Column kSequenceColumn[] = {{"sequence", "bigint"}};

// The statements of a Commit, in the order of RowWriter::Apply (store/row_writer.cc).
struct Statements {
  Statement instance_types = Insert("nvlsched_instance_types", "instance_types",
                                    kInstanceTypeColumns, "id");
  Statement domains = Insert("nvlsched_domains", "domains", kDomainColumns, "id");
  Statement tenants = Insert("nvlsched_tenants", "tenants", kTenantColumns, "id");
  Statement delete_tenant_quotas =
      DeleteWhereIn("nvlsched_delete_tenant_quotas", "tenant_quotas", "tenant_id");
  Statement tenant_quotas = Insert("nvlsched_tenant_quotas", "tenant_quotas",
                                   kTenantQuotaColumns, "");
  Statement delete_instances = DeleteWhereIn("nvlsched_delete_instances", "instances", "id");
  Statement machines = Insert("nvlsched_machines", "machines", kMachineColumns, "id");
  Statement delete_machine_labels =
      DeleteWhereIn("nvlsched_delete_machine_labels", "machine_labels", "machine_id");
  Statement machine_labels = Insert("nvlsched_machine_labels", "machine_labels",
                                    kMachineLabelColumns, "");
  Statement instances = Insert("nvlsched_instances", "instances", kInstanceColumns, "id");
  Statement delete_machines = DeleteWhereIn("nvlsched_delete_machines", "machines", "id");
  Statement idempotency = Insert("nvlsched_idempotency", "idempotency", kIdempotencyColumns,
                                 "tenant_id, request_id");
  Statement meta = Insert("nvlsched_meta", "meta", kMetaColumns, "key");
  Statement events = Insert("nvlsched_events", "events", kEventColumns, "");
  // Retention: one sequence, passed as a one-element array like every other parameter.
  Statement prune_events = {"nvlsched_prune_events", kSequenceColumn,
                            "DELETE FROM events WHERE sequence <= ANY($1::bigint[])"};

  static const Statements& Get() {
    static const Statements* statements = new Statements();
    return *statements;
  }
  void PrepareOn(pqxx::connection& conn) const {
    for (const Statement* s :
         {&instance_types, &domains, &tenants, &delete_tenant_quotas, &tenant_quotas,
          &delete_instances, &machines, &delete_machine_labels, &machine_labels, &instances,
          &delete_machines, &idempotency, &meta, &events, &prune_events}) {
      conn.prepare(s->name, s->sql);
    }
  }
};

// One statement's columns as they fill, row by row: the row's values in column order.
class ColumnArrays {
 public:
  explicit ColumnArrays(absl::Span<const Column> columns) {
    arrays_.reserve(columns.size());
    for (const Column& c : columns) arrays_.emplace_back(TypeOid(c.type));
  }
  ColumnArrays& Str(const std::string& v) { return Next([&](BinaryArray& a) { a.Add(v); }); }
  ColumnArrays& Int(int64_t v) { return Next([&](BinaryArray& a) { a.AddInt(v); }); }
  ColumnArrays& Bool(bool v) { return Next([&](BinaryArray& a) { a.AddBool(v); }); }

  size_t rows() const { return arrays_.front().size(); }
  std::vector<pqxx::binarystring> Finish() const {
    std::vector<pqxx::binarystring> params;
    params.reserve(arrays_.size());
    for (const BinaryArray& a : arrays_) params.push_back(a.Finish());
    return params;
  }

 private:
  template <typename Add>
  ColumnArrays& Next(Add add) {
    add(arrays_[next_]);
    next_ = (next_ + 1) % arrays_.size();
    return *this;
  }

  std::vector<BinaryArray> arrays_;
  size_t next_ = 0;
};

// Runs `s` with `rows`, each written into the columns by `fill`; returns the rows written.
template <typename Rows, typename Fill>
int64_t Run(pqxx::transaction_base& t, const Statement& s, const Rows& rows, Fill fill) {
  if (rows.empty()) return 0;
  ColumnArrays columns(s.columns);
  for (const auto& row : rows) fill(row, columns);
  t.exec_prepared(s.name, pqxx::prepare::make_dynamic_params(columns.Finish()));
  return static_cast<int64_t>(columns.rows());
}

int64_t DeleteIds(pqxx::transaction_base& t, const Statement& s,
                  const std::vector<std::string>& ids) {
  return Run(t, s, ids, [](const std::string& id, ColumnArrays& c) { c.Str(id); });
}

// The rows of `rows`, each key once: its last occurrence, at the position of its first.
// SQLite applies a repeated upsert twice (the row keeps its first position, the last values
// win); one INSERT ... ON CONFLICT may not touch a row twice. No row is copied.
template <typename Row, typename Key>
std::vector<const Row*> LastOfEach(const std::vector<Row>& rows, Key key) {
  absl::flat_hash_map<decltype(key(rows.front())), size_t> first;
  std::vector<const Row*> out;
  out.reserve(rows.size());
  for (const Row& row : rows) {
    auto [it, inserted] = first.emplace(key(row), out.size());
    if (inserted) {
      out.push_back(&row);
    } else {
      out[it->second] = &row;
    }
  }
  return out;
}
template <typename Row>
std::vector<const Row*> LastOfEachId(const std::vector<Row>& rows) {
  return LastOfEach(rows, [](const Row& r) { return absl::string_view(r.id); });
}

// Writes `c`, in the order of RowWriter::Apply (store/row_writer.cc) for the foreign keys.
// Returns the rows written (child rows included, child rows replaced not counted).
int64_t WriteChangeSet(pqxx::transaction_base& t, const ChangeSet& c) {
  const Statements& s = Statements::Get();
  int64_t rows = 0;
  rows += Run(t, s.instance_types, LastOfEachId(c.upsert_instance_types),
              [](const InstanceTypeRow* r, ColumnArrays& v) {
                v.Str(r->id).Str(r->name).Str(r->gpu_model).Int(r->gpus_per_machine);
                v.Int(r->gpu_memory_mib).Int(r->price_per_hour_micros).Str(r->interconnect);
                v.Int(r->spot_price_per_hour_micros);
              });
  rows += Run(t, s.domains, LastOfEachId(c.upsert_domains),
              [](const DomainRow* r, ColumnArrays& v) {
                v.Str(r->id).Str(r->name).Str(r->site_id).Int(r->state).Str(r->state_reason);
                v.Int(r->spare_machines.value_or(-1));
              });
  const std::vector<const TenantRow*> tenants = LastOfEachId(c.upsert_tenants);
  rows += Run(t, s.tenants, tenants, [](const TenantRow* r, ColumnArrays& v) {
    v.Str(r->id).Str(r->org).Str(r->name).Int(r->priority);
  });
  // A tenant's quotas are replaced as a whole: '' is the fleet-wide site.
  Run(t, s.delete_tenant_quotas, tenants,
      [](const TenantRow* r, ColumnArrays& v) { v.Str(r->id); });
  static const std::string kAllSites;
  std::vector<std::tuple<const std::string*, const std::string*, const std::string*, int64_t>>
      quotas;
  for (const TenantRow* tenant : tenants) {
    for (const auto& [type, max] : tenant->quotas) {
      quotas.emplace_back(&tenant->id, &type, &kAllSites, max);
    }
    for (const auto& [key, max] : tenant->site_quotas) {
      quotas.emplace_back(&tenant->id, &key.first, &key.second, max);
    }
  }
  rows += Run(t, s.tenant_quotas, quotas, [](const auto& q, ColumnArrays& v) {
    v.Str(*std::get<0>(q)).Str(*std::get<1>(q)).Str(*std::get<2>(q)).Int(std::get<3>(q));
  });
  rows += DeleteIds(t, s.delete_instances, c.delete_instance_ids);
  const std::vector<const MachineRow*> machines = LastOfEachId(c.upsert_machines);
  rows += Run(t, s.machines, machines, [](const MachineRow* r, ColumnArrays& v) {
    v.Str(r->id).Str(r->domain_id).Int(r->tray_index).Str(r->instance_type_id);
    v.Int(r->gpu_count).Int(r->state).Str(r->state_reason).Bool(r->cleaning);
    v.Bool(r->wipe_pending);
  });
  // A machine's labels are replaced as a whole.
  Run(t, s.delete_machine_labels, machines,
      [](const MachineRow* r, ColumnArrays& v) { v.Str(r->id); });
  std::vector<std::pair<const std::string*, const std::pair<const std::string, std::string>*>>
      labels;
  for (const MachineRow* m : machines) {
    for (const auto& label : m->labels) labels.emplace_back(&m->id, &label);
  }
  rows += Run(t, s.machine_labels, labels, [](const auto& l, ColumnArrays& v) {
    v.Str(*l.first).Str(l.second->first).Str(l.second->second);
  });
  rows += Run(t, s.instances, LastOfEachId(c.upsert_instances),
              [](const InstanceRow* r, ColumnArrays& v) {
                v.Str(r->id).Str(r->name).Str(r->tenant_id).Str(r->instance_type_id);
                v.Str(r->machine_id).Int(r->gpu_count).Bool(r->whole_machine).Str(r->batch_id);
                v.Bool(r->strict).Str(r->status).Int(r->created_unix_micros);
                v.Int(r->updated_unix_micros).Str(r->details);
                v.Str(JoinPartitionIds(r->nvlink_partition_ids));
              });
  DeleteIds(t, s.delete_machine_labels, c.delete_machine_ids);
  rows += DeleteIds(t, s.delete_machines, c.delete_machine_ids);
  rows += Run(t, s.idempotency,
              LastOfEach(c.put_idempotency,
                         [](const IdempotencyRow& r) {
                           return std::make_pair(absl::string_view(r.tenant_id),
                                                 absl::string_view(r.request_id));
                         }),
              [](const IdempotencyRow* r, ColumnArrays& v) {
                v.Str(r->tenant_id).Str(r->request_id).Str(r->request_fingerprint);
                v.Str(r->response).Int(r->created_unix_micros);
              });
  rows += Run(t, s.meta,
              LastOfEach(c.put_meta, [](const MetaRow& r) { return absl::string_view(r.key); }),
              [](const MetaRow* r, ColumnArrays& v) { v.Str(r->key).Str(r->value); });
  rows += Run(t, s.events, c.append_events, [](const EventRow& r, ColumnArrays& v) {
    v.Int(static_cast<int64_t>(r.sequence)).Int(r.time_unix_micros).Int(r.type);
    v.Str(r.org).Str(r.tenant_id).Str(r.payload);
  });
  if (c.prune_events_through > 0) {
    Run(t, s.prune_events, std::vector<uint64_t>{c.prune_events_through},
        [](uint64_t through, ColumnArrays& v) { v.Int(static_cast<int64_t>(through)); });
  }
  return rows;
}

// CheckChangeSet, and PostgreSQL text cannot hold a NUL byte.
absl::Status CheckPgChangeSet(const ChangeSet& c) {
  if (absl::Status valid = CheckChangeSet(c); !valid.ok()) return valid;
  for (const InstanceRow& row : c.upsert_instances) {
    for (const std::string* text : {&row.id, &row.name, &row.tenant_id, &row.status}) {
      if (text->find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "instance \"", row.id, "\" has a NUL byte in a text field; PostgreSQL text "
            "cannot hold one"));
      }
    }
  }
  return absl::OkStatus();
}

std::string Bytes(const pqxx::field& f) { return pqxx::binarystring(f).str(); }
std::string TextOrEmpty(const pqxx::field& f) {
  return f.is_null() ? std::string() : f.as<std::string>();
}

LoadedState ReadAll(pqxx::transaction_base& t, InstanceColumns columns = InstanceColumns::kAll) {
  LoadedState s;
  s.schema_version = t.exec1("SELECT version FROM nvlsched_schema")[0].as<int>();
  for (const auto& r : t.exec(
           "SELECT id, name, gpu_model, gpus_per_machine, gpu_memory_mib, price_per_hour_micros, "
           "interconnect, spot_price_per_hour_micros FROM instance_types ORDER BY seq")) {
    InstanceTypeRow& row = s.instance_types.emplace_back();
    row.id = r[0].as<std::string>();
    row.name = r[1].as<std::string>();
    row.gpu_model = r[2].as<std::string>();
    row.gpus_per_machine = r[3].as<int64_t>();
    row.gpu_memory_mib = r[4].as<int64_t>();
    row.price_per_hour_micros = r[5].as<int64_t>();
    row.interconnect = r[6].as<std::string>();
    row.spot_price_per_hour_micros = r[7].as<int64_t>();
  }
  for (const auto& r : t.exec("SELECT id, name, site_id, state, state_reason, spare_machines "
                              "FROM domains ORDER BY seq")) {
    DomainRow& row = s.domains.emplace_back();
    row.id = r[0].as<std::string>();
    row.name = r[1].as<std::string>();
    row.site_id = r[2].as<std::string>();
    row.state = r[3].as<int>();
    row.state_reason = r[4].as<std::string>();
    if (!r[5].is_null()) row.spare_machines = r[5].as<int32_t>();
  }
  {
    const pqxx::result machines = t.exec(
        "SELECT id, domain_id, tray_index, instance_type_id, gpu_count, state, state_reason, "
        "cleaning, wipe_pending FROM machines ORDER BY seq");
    s.machines.reserve(machines.size());
    for (const auto& r : machines) {
      MachineRow& row = s.machines.emplace_back();
      row.id = r[0].as<std::string>();
      row.domain_id = r[1].as<std::string>();
      row.tray_index = r[2].as<int64_t>();
      row.instance_type_id = r[3].as<std::string>();
      row.gpu_count = r[4].as<int64_t>();
      row.state = r[5].as<int>();
      row.state_reason = r[6].as<std::string>();
      row.cleaning = r[7].as<bool>();
      row.wipe_pending = r[8].as<bool>();
    }
    absl::flat_hash_map<std::string, size_t> index;
    for (size_t i = 0; i < s.machines.size(); ++i) index.emplace(s.machines[i].id, i);
    for (const auto& r : t.exec("SELECT machine_id, key, value FROM machine_labels")) {
      s.machines[index.at(r[0].as<std::string>())].labels.emplace(r[1].as<std::string>(),
                                                                 r[2].as<std::string>());
    }
  }
  {
    for (const auto& r : t.exec("SELECT id, org, name, priority FROM tenants ORDER BY seq")) {
      TenantRow& row = s.tenants.emplace_back();
      row.id = r[0].as<std::string>();
      row.org = r[1].as<std::string>();
      row.name = r[2].as<std::string>();
      row.priority = r[3].as<int64_t>();
    }
    absl::flat_hash_map<std::string, size_t> index;
    for (size_t i = 0; i < s.tenants.size(); ++i) index.emplace(s.tenants[i].id, i);
    for (const auto& r : t.exec("SELECT tenant_id, instance_type_id, site_id, max_machines "
                                "FROM tenant_quotas")) {
      TenantRow& tenant = s.tenants[index.at(r[0].as<std::string>())];
      std::string site = r[2].as<std::string>();
      if (site.empty()) {
        tenant.quotas.emplace(r[1].as<std::string>(), r[3].as<int64_t>());
      } else {
        tenant.site_quotas.emplace(std::make_pair(r[1].as<std::string>(), std::move(site)),
                                   r[3].as<int64_t>());
      }
    }
  }
  {
    // The key columns first: kStartUp reads only those.
    const bool all = columns == InstanceColumns::kAll;
    const pqxx::result instances = t.exec(absl::StrCat(
        "SELECT id, tenant_id, machine_id, gpu_count, whole_machine, details",
        all ? ", name, instance_type_id, batch_id, strict, status, created_unix_micros, "
              "updated_unix_micros, nvlink_partition_ids"
            : "",
        " FROM instances ORDER BY seq"));
    s.instances.reserve(instances.size());
    for (const auto& r : instances) {
      InstanceRow& row = s.instances.emplace_back();
      row.id = r[0].as<std::string>();
      row.tenant_id = r[1].as<std::string>();
      row.machine_id = TextOrEmpty(r[2]);
      row.gpu_count = r[3].as<int64_t>();
      row.whole_machine = r[4].as<bool>();
      row.details = Bytes(r[5]);
      if (!all) continue;
      row.name = r[6].as<std::string>();
      row.instance_type_id = r[7].as<std::string>();
      row.batch_id = TextOrEmpty(r[8]);
      row.strict = r[9].as<bool>();
      row.status = r[10].as<std::string>();
      row.created_unix_micros = r[11].as<int64_t>();
      row.updated_unix_micros = r[12].as<int64_t>();
      row.nvlink_partition_ids = SplitPartitionIds(r[13].as<std::string>());
    }
  }
  for (const auto& r : t.exec("SELECT tenant_id, request_id, request_fingerprint, response, "
                              "created_unix_micros FROM idempotency ORDER BY seq")) {
    IdempotencyRow& row = s.idempotency.emplace_back();
    row.tenant_id = r[0].as<std::string>();
    row.request_id = r[1].as<std::string>();
    row.request_fingerprint = Bytes(r[2]);
    row.response = Bytes(r[3]);
    row.created_unix_micros = r[4].as<int64_t>();
  }
  for (const auto& r : t.exec("SELECT key, value FROM meta ORDER BY seq")) {
    MetaRow& row = s.meta.emplace_back();
    row.key = r[0].as<std::string>();
    row.value = Bytes(r[1]);
  }
  const pqxx::row bounds =
      t.exec1("SELECT coalesce(min(sequence), 0), coalesce(max(sequence), 0) FROM events");
  s.oldest_event = bounds[0].as<uint64_t>();
  s.newest_event = bounds[1].as<uint64_t>();
  return s;
}

std::vector<EventRow> ReadEventRows(pqxx::transaction_base& t, uint64_t after, size_t limit) {
  std::vector<EventRow> rows;
  for (const auto& r : t.exec_params(
           "SELECT sequence, time_unix_micros, type, org, tenant_id, payload FROM events "
           "WHERE sequence > $1 ORDER BY sequence LIMIT $2",
           static_cast<int64_t>(after), static_cast<int64_t>(limit))) {
    EventRow& row = rows.emplace_back();
    row.sequence = r[0].as<uint64_t>();
    row.time_unix_micros = r[1].as<int64_t>();
    row.type = r[2].as<int32_t>();
    row.org = r[3].as<std::string>();
    row.tenant_id = r[4].as<std::string>();
    row.payload = Bytes(r[5]);
  }
  return rows;
}

// Who holds the leader lock on this database: the application_name its daemon announced.
std::string LeaderName(pqxx::connection& conn) {
  pqxx::nontransaction t(conn);
  const pqxx::result r = t.exec_params(
      "SELECT a.application_name FROM pg_locks l "
      "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
      "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
      "AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1",
      static_cast<int64_t>(kLeaderLockKey));
  if (r.empty()) return "unknown (it released the lock a moment ago: retry)";
  std::string name = TextOrEmpty(r[0][0]);
  if (name.empty()) name = "a session that announced no address";
  return name;
}

}  // namespace

std::string RedactPostgresUri(const std::string& uri) {
  std::string out = uri;
  // postgresql://user:password@host...
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // ...?password=...&...
  for (size_t p = out.find("password="); p != std::string::npos;
       p = out.find("password=", p + 1)) {
    const size_t value = p + 9;
    const size_t end = out.find('&', value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

PgStore::PgStore(StoreOptions options)
    : options_(std::move(options)), display_(RedactPostgresUri(options_.path)) {}

PgStore::~PgStore() {
  MutexLock lock(&mu_);
  conn_.reset();  // closing the session releases the leader lock
}

absl::StatusOr<std::unique_ptr<Store>> PgStore::Open(const StoreOptions& options) {
  std::unique_ptr<PgStore> store(new PgStore(options));
  absl::Status status;
  {
    MutexLock lock(&store->mu_);
    status = store->Initialize();
  }
  if (!status.ok()) return status;
  return std::unique_ptr<Store>(std::move(store));
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgStore::Connect(const char* purpose) const {
  std::string conninfo = options_.path;
  absl::StrAppend(&conninfo, absl::StrContains(conninfo, '?') ? "&" : "?",
                  "connect_timeout=", options_.connect_timeout_seconds);
  // A URI libpq cannot parse is the caller's mistake, not an outage.
  char* parse_error = nullptr;
  if (PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error)) {
    PQconninfoFree(parsed);
  } else {
    std::string why = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return absl::InvalidArgumentError(
        absl::StrCat("--db=", display_, " is not a PostgreSQL URI libpq accepts: ", why));
  }
  try {
    auto conn = std::make_unique<PgConnection>(conninfo);
    // Never reconnect behind our back: the lock (and the fencing) is the session's. libpqxx 6
    // deprecates the call (version 7 never reconnects), but its default here is to reconnect.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn->conn.inhibit_reactivation(true);
#pragma GCC diagnostic pop
    return conn;
  } catch (const pqxx::broken_connection& e) {
    return PgErrorStatus(absl::StatusCode::kUnavailable,
                         absl::StrCat("connecting to ", display_, " (", purpose, ")"), e);
  } catch (const std::exception& e) {
    // libpq could not parse the URI, or an option is unknown.
    return PgErrorStatus(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("connecting to ", display_, " (", purpose, ")"), e);
  }
}

absl::Status PgStore::Initialize() {
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = Connect("the leader's connection");
  if (!conn.ok()) return conn.status();
  conn_ = *std::move(conn);
  std::string doing = "taking the leader lock on";
  try {
    bool locked = false;
    {
      pqxx::nontransaction t(conn_->conn);
      t.exec(absl::StrCat("SET application_name = ",
                          t.quote(absl::StrCat("nvlschedd pid ", ::getpid(), " (starting)"))));
      locked = t.exec1(absl::StrCat("SELECT pg_try_advisory_lock(", kLeaderLockKey, ")"))[0]
                   .as<bool>();
    }
    if (!locked) {
      const std::string leader = LeaderName(conn_->conn);
      conn_.reset();
      return absl::AbortedError(absl::StrCat(
          "another nvlschedd leads ", display_, " (it holds the leader lock); the leader is ",
          leader));
    }
    doing = "reading the schema version of";
    pqxx::work t(conn_->conn);
    const bool exists = !t.exec1("SELECT to_regclass('nvlsched_schema') IS NULL")[0].as<bool>();
    int version = 0;
    if (exists) {
      const pqxx::result r = t.exec("SELECT version FROM nvlsched_schema");
      if (r.size() != 1) {
        return absl::DataLossError(absl::StrCat("database ", display_, " has ", r.size(),
                                                " rows in nvlsched_schema; it must have one"));
      }
      version = r[0][0].as<int>();
      if (version > CurrentSchemaVersion()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "database ", display_, " has schema version ", version,
            ", newer than this nvlschedd's ", CurrentSchemaVersion(),
            "; run a newer nvlschedd (it never downgrades a database)"));
      }
    } else {
      doing = "creating the tables in";
      t.exec(kSchema);
      t.exec(absl::StrCat("INSERT INTO nvlsched_schema (version) VALUES (",
                          kFirstPgSchemaVersion, ")"));
      version = kFirstPgSchemaVersion;
    }
    // Later schema versions: a migration for each, applied here in order, as for SQLite
    // (in the same transaction: a failure leaves the database as it was).
    std::vector<MigrationStep> applied;
    for (const PgMigration& migration : kPgMigrations) {
      if (migration.version <= version) continue;
      if (migration.version != version + 1) break;  // a gap: refused below
      doing = absl::StrCat("applying schema migration ", migration.version, " to");
      MigrationStep step{version, migration.version,
                         SchemaMigrations()[static_cast<size_t>(migration.version) - 1].description,
                         std::nullopt};
      if (exists && options_.on_migration) options_.on_migration(step);
      const absl::Time started = absl::Now();
      t.exec(migration.sql);
      t.exec(absl::StrCat("UPDATE nvlsched_schema SET version = ", migration.version));
      version = migration.version;
      step.took = absl::Now() - started;  // reported once the transaction commits, below
      applied.push_back(std::move(step));
    }
    if (version != CurrentSchemaVersion()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", display_, " has schema version ", version, " and this nvlschedd has no "
          "PostgreSQL migration from it to ", CurrentSchemaVersion()));
    }
    doing = "committing the schema of";
    t.commit();
    if (exists && options_.on_migration) {
      for (const MigrationStep& step : applied) options_.on_migration(step);
    }
    doing = "preparing the write statements on";
    Statements::Get().PrepareOn(conn_->conn);
  } catch (const std::exception& e) {  // pqxx::broken_connection and SQL errors alike
    return PgErrorStatus(absl::StatusCode::kUnavailable, absl::StrCat(doing, " ", display_), e);
  }
  return absl::OkStatus();
}

absl::Status PgStore::Latch(absl::Status status) {
  if (failure_.ok()) failure_ = std::move(status);
  return failure_;
}

absl::StatusOr<LoadedState> PgStore::LoadAll(InstanceColumns columns) {
  MutexLock lock(&mu_);
  if (conn_ == nullptr || !conn_->conn.is_open()) {
    return absl::UnavailableError(absl::StrCat("loading ", display_,
                                               ": the leader's connection is closed"));
  }
  try {
    SnapshotTransaction t(conn_->conn);
    LoadedState state = ReadAll(t, columns);
    t.commit();
    return state;
  } catch (const pqxx::broken_connection& e) {
    return Latch(PgErrorStatus(absl::StatusCode::kUnavailable,
                               absl::StrCat("loading ", display_, " (connection lost)"), e));
  } catch (const std::out_of_range& e) {
    return absl::DataLossError(
        absl::StrCat("loading ", display_, ": a child row names a parent that is not stored (",
                     e.what(), ")"));
  } catch (const std::exception& e) {
    return PgErrorStatus(absl::StatusCode::kUnavailable, absl::StrCat("loading ", display_), e);
  }
}

absl::Status PgStore::Commit(const ChangeSet& changes, CommitStats* stats) {
  if (stats != nullptr) *stats = CommitStats();
  if (absl::Status valid = CheckPgChangeSet(changes); !valid.ok()) return valid;
  MutexLock lock(&mu_);
  if (!failure_.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "the store refuses writes since an earlier commit failed (", failure_.message(),
        "); this daemon no longer leads ", display_));
  }
  if (changes.empty()) return absl::OkStatus();
  const auto start = std::chrono::steady_clock::now();
  int64_t rows = 0;
  try {
    pqxx::work t(conn_->conn);
    rows = WriteChangeSet(t, changes);
    t.commit();
  } catch (const pqxx::broken_connection& e) {
    return Latch(PgErrorStatus(
        absl::StatusCode::kUnavailable,
        absl::StrCat("committing ", changes.size(), " changed rows to ", display_,
                     ": the connection that holds the leader lock was lost, so whether the "
                     "transaction committed is unknown here"),
        e));
  } catch (const std::exception& e) {
    return Latch(PgErrorStatus(
        absl::StatusCode::kUnavailable,
        absl::StrCat("committing ", changes.size(), " changed rows to ", display_), e));
  }
  if (stats != nullptr) {
    stats->duration = absl::FromChrono(std::chrono::steady_clock::now() - start);
    stats->rows_written = rows;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EventRow>> PgStore::ReadEvents(uint64_t after_sequence, size_t limit) {
  MutexLock lock(&read_mu_);
  if (reader_ == nullptr || !reader_->conn.is_open()) {
    reader_.reset();
    absl::StatusOr<std::unique_ptr<PgConnection>> conn = Connect("reading events");
    if (!conn.ok()) return conn.status();
    reader_ = *std::move(conn);
  }
  try {
    pqxx::read_transaction t(reader_->conn);
    std::vector<EventRow> rows = ReadEventRows(t, after_sequence, limit);
    t.commit();
    return rows;
  } catch (const std::exception& e) {
    reader_.reset();  // the next call connects afresh
    return PgErrorStatus(absl::StatusCode::kUnavailable,
                         absl::StrCat("reading events after ", after_sequence, " from ", display_),
                         e);
  }
}

absl::Status PgStore::WriteSnapshot(const std::string& dest_path) {
  if (dest_path.empty()) {
    return absl::InvalidArgumentError("snapshot path is empty; name the file to write");
  }
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = Connect("writing a snapshot");
  if (!conn.ok()) return conn.status();
  LoadedState state;
  std::vector<EventRow> events;
  try {
    // One REPEATABLE READ transaction: every table and the events at one point in time.
    SnapshotTransaction t((*conn)->conn);
    state = ReadAll(t);
    events = ReadEventRows(t, 0, static_cast<size_t>(-1) >> 1);
    t.commit();
  } catch (const std::exception& e) {
    return PgErrorStatus(absl::StatusCode::kUnavailable,
                         absl::StrCat("reading ", display_, " for snapshot ", dest_path), e);
  }
  return WriteSqliteCopy(std::move(state), std::move(events), dest_path);
}

absl::Status PgStore::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

absl::Status PgStore::CheckLeadership() {
  MutexLock lock(&mu_);
  if (!failure_.ok()) return failure_;
  try {
    pqxx::nontransaction t(conn_->conn);
    t.exec("SELECT 1");
  } catch (const std::exception& e) {
    return Latch(PgErrorStatus(absl::StatusCode::kUnavailable,
                               absl::StrCat("the connection to ", display_,
                                            " that holds the leader lock was lost"),
                               e));
  }
  return absl::OkStatus();
}

absl::Status PgStore::AnnounceLeader(const std::string& address) {
  MutexLock lock(&mu_);
  if (!failure_.ok()) return failure_;
  try {
    pqxx::nontransaction t(conn_->conn);
    t.exec(absl::StrCat("SET application_name = ", t.quote(address)));
  } catch (const std::exception& e) {
    return Latch(PgErrorStatus(absl::StatusCode::kUnavailable,
                               absl::StrCat("announcing this leader's address on ", display_), e));
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::store
