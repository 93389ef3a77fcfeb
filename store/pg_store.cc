#include "store/pg_store.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <endian.h>

#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
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
// bound, then each element as int32 length and its bytes in the element type's binary format.
class BinaryArray {
 public:
  // Element type OIDs (pg_type.h).
  static constexpr uint32_t kText = 25, kBytea = 17, kInt8 = 20, kBool = 16;

  explicit BinaryArray(uint32_t element_type) : type_(element_type) {}

  void Add(const std::string& bytes) {
    Int32(static_cast<int32_t>(bytes.size()));
    body_.append(bytes);
    ++count_;
  }
  void AddInt(int64_t v) {
    Int32(8);
    const uint64_t be = htobe64(static_cast<uint64_t>(v));
    body_.append(reinterpret_cast<const char*>(&be), sizeof(be));
    ++count_;
  }
  void AddBool(bool b) {
    Int32(1);
    body_.push_back(b ? '\1' : '\0');
    ++count_;
  }

  pqxx::binarystring Finish() const {
    std::string out;
    out.reserve(20 + body_.size());
    auto put = [&out](uint32_t v) {
      const uint32_t be = htobe32(v);
      out.append(reinterpret_cast<const char*>(&be), sizeof(be));
    };
    put(count_ == 0 ? 0 : 1);  // ndim (an empty array has none)
    put(0);                    // no NULLs
    put(type_);
    if (count_ > 0) {
      put(count_);
      put(1);  // lower bound
    }
    out.append(body_);
    return pqxx::binarystring(out);
  }

 private:
  void Int32(int32_t v) {
    const uint32_t be = htobe32(static_cast<uint32_t>(v));
    body_.append(reinterpret_cast<const char*>(&be), sizeof(be));
  }

  uint32_t type_;
  uint32_t count_ = 0;
  std::string body_;
};

// The statements of the rows every batch call writes, prepared once per connection (no parse
// or plan per commit): each takes one binary array a column and inserts the rows in array
// order (WITH ORDINALITY ... ORDER BY, so `seq` follows the ChangeSet's order).
constexpr char kUpsertInstances[] = "nvlsched_upsert_instances";
constexpr char kUpsertInstancesSql[] = R"sql(
INSERT INTO instances (id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                       whole_machine, batch_id, strict, status, created_unix_micros,
                       updated_unix_micros, details, nvlink_partition_ids)
SELECT id, name, tenant_id, instance_type_id, NULLIF(machine_id, ''), gpu_count, whole_machine,
       NULLIF(batch_id, ''), strict, status, created, updated, details, partitions
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::boolean[], $8::text[], $9::boolean[], $10::text[], $11::bigint[], $12::bigint[],
            $13::bytea[], $14::text[])
  WITH ORDINALITY AS u(id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                       whole_machine, batch_id, strict, status, created, updated, details,
                       partitions, ord)
ORDER BY ord
ON CONFLICT (id) DO UPDATE SET name = excluded.name, tenant_id = excluded.tenant_id,
  instance_type_id = excluded.instance_type_id, machine_id = excluded.machine_id,
  gpu_count = excluded.gpu_count, whole_machine = excluded.whole_machine,
  batch_id = excluded.batch_id, strict = excluded.strict, status = excluded.status,
  created_unix_micros = excluded.created_unix_micros,
  updated_unix_micros = excluded.updated_unix_micros, details = excluded.details,
  nvlink_partition_ids = excluded.nvlink_partition_ids)sql";
constexpr char kDeleteInstances[] = "nvlsched_delete_instances";
constexpr char kDeleteInstancesSql[] = "DELETE FROM instances WHERE id = ANY($1::text[])";
constexpr char kPutIdempotency[] = "nvlsched_put_idempotency";
constexpr char kPutIdempotencySql[] = R"sql(
INSERT INTO idempotency (tenant_id, request_id, request_fingerprint, response,
                         created_unix_micros)
SELECT tenant_id, request_id, fingerprint, response, created
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[])
  WITH ORDINALITY AS u(tenant_id, request_id, fingerprint, response, created, ord)
ORDER BY ord
ON CONFLICT (tenant_id, request_id) DO UPDATE SET
  request_fingerprint = excluded.request_fingerprint, response = excluded.response,
  created_unix_micros = excluded.created_unix_micros)sql";
constexpr char kAppendEvents[] = "nvlsched_append_events";
constexpr char kAppendEventsSql[] = R"sql(
INSERT INTO events (sequence, time_unix_micros, type, org, tenant_id, payload)
SELECT sequence, time, type, org, tenant_id, payload
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bytea[])
  WITH ORDINALITY AS u(sequence, time, type, org, tenant_id, payload, ord)
ORDER BY ord)sql";

void PrepareStatements(pqxx::connection& conn) {
  conn.prepare(kUpsertInstances, kUpsertInstancesSql);
  conn.prepare(kDeleteInstances, kDeleteInstancesSql);
  conn.prepare(kPutIdempotency, kPutIdempotencySql);
  conn.prepare(kAppendEvents, kAppendEventsSql);
}

// Runs prepared statement `name` with `columns` as its parameters.
void ExecArrays(pqxx::transaction_base& t, const char* name,
                const std::vector<BinaryArray>& columns) {
  std::vector<pqxx::binarystring> params;
  params.reserve(columns.size());
  for (const BinaryArray& column : columns) params.push_back(column.Finish());
  t.exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
}

// Writes a Commit's rows as parameterized statements: every value is a binary-format
// parameter (no quoting, and nothing for the server's SQL lexer to scan: an earlier version
// sent one multi-statement text with hex-escaped bytea literals, and lexing that text was the
// largest cost of a commit). Rows of one kind go into multi-row statements of at most
// kMaxParams parameters, each one round trip.
class RowWriterPg {
 public:
  explicit RowWriterPg(pqxx::transaction_base& t) : t_(t) {}

  // One row's values, in binary format: text and bytea as their bytes, bigint as 8 bytes in
  // network order, boolean as one byte.
  class Values {
   public:
    explicit Values(std::vector<pqxx::binarystring>& out) : out_(out) {}
    void Text(const std::string& s) { out_.emplace_back(s); }
    void Bytes(const std::string& s) { out_.emplace_back(s); }
    void Int(int64_t v) {
      const uint64_t be = htobe64(static_cast<uint64_t>(v));
      out_.emplace_back(std::string(reinterpret_cast<const char*>(&be), sizeof(be)));
    }
    void Bool(bool b) { out_.emplace_back(std::string(1, b ? '\1' : '\0')); }

   private:
    std::vector<pqxx::binarystring>& out_;
  };

  // INSERT INTO <head> VALUES (<row>), ... <tail>, where `row` is the placeholder pattern of
  // one row with '?' for each parameter (e.g. "?::text, NULLIF(?::text, '')"), `format`
  // writes a row's values in that order.
  template <typename Row, typename Format>
  void Insert(const std::vector<Row>& rows, absl::string_view head, absl::string_view row,
              absl::string_view tail, Format format) {
    const size_t per_row = static_cast<size_t>(std::count(row.begin(), row.end(), '?'));
    const size_t rows_per_statement = std::max<size_t>(1, kMaxParams / per_row);
    for (size_t begin = 0; begin < rows.size(); begin += rows_per_statement) {
      const size_t end = std::min(rows.size(), begin + rows_per_statement);
      std::string sql = absl::StrCat("INSERT INTO ", head, " VALUES ");
      std::vector<pqxx::binarystring> params;
      params.reserve((end - begin) * per_row);
      Values values(params);
      for (size_t i = begin; i < end; ++i) {
        absl::StrAppend(&sql, i == begin ? "(" : ",(");
        AppendPlaceholders(row, params.size(), &sql);
        absl::StrAppend(&sql, ")");
        format(rows[i], values);
      }
      absl::StrAppend(&sql, " ", tail);
      t_.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    }
    rows_ += static_cast<int64_t>(rows.size());
  }

  // DELETE FROM <table> WHERE <column> IN (...).
  void DeleteIn(absl::string_view table, absl::string_view column,
                const std::vector<std::string>& ids, bool count = true) {
    for (size_t begin = 0; begin < ids.size(); begin += kMaxParams) {
      const size_t end = std::min(ids.size(), begin + kMaxParams);
      std::string sql = absl::StrCat("DELETE FROM ", table, " WHERE ", column, " IN (");
      std::vector<pqxx::binarystring> params;
      Values values(params);
      for (size_t i = begin; i < end; ++i) {
        absl::StrAppend(&sql, i == begin ? "" : ",", "$", params.size() + 1, "::text");
        values.Text(ids[i]);
      }
      absl::StrAppend(&sql, ")");
      t_.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
    }
    if (count) rows_ += static_cast<int64_t>(ids.size());
  }

  void Exec(const std::string& sql) { t_.exec(sql); }

  int64_t rows() const { return rows_; }

 private:
  // PostgreSQL allows 65535 parameters a statement; fewer keep a statement's memory modest.
  static constexpr size_t kMaxParams = 30000;

  // `row` with each '?' replaced by $n, numbering from first + 1.
  static void AppendPlaceholders(absl::string_view row, size_t first, std::string* sql) {
    size_t n = first;
    for (char c : row) {
      if (c == '?') {
        absl::StrAppend(sql, "$", ++n);
      } else {
        sql->push_back(c);
      }
    }
  }

  pqxx::transaction_base& t_;
  int64_t rows_ = 0;  // rows named (child rows included); PostgreSQL does not report a total
};

// The last occurrence of each id, at the position of its first: SQLite applies a repeated
// upsert twice (the row keeps its first position, the last values win); one multi-row
// INSERT ... ON CONFLICT may not touch a row twice.
template <typename Row, typename Key>
std::vector<Row> LastOfEach(const std::vector<Row>& rows, Key key) {
  absl::flat_hash_map<std::string, size_t> first;
  std::vector<Row> out;
  out.reserve(rows.size());
  for (const Row& row : rows) {
    auto [it, inserted] = first.emplace(key(row), out.size());
    if (inserted) {
      out.push_back(row);
    } else {
      out[it->second] = row;
    }
  }
  return out;
}

template <typename Row>
bool HasRepeatedId(const std::vector<Row>& rows) {
  absl::flat_hash_set<absl::string_view> seen;
  for (const Row& row : rows) {
    if (!seen.insert(row.id).second) return true;
  }
  return false;
}

// Writes `c` in the order of RowWriter::Apply (store/row_writer.cc), for the foreign keys.
// Returns the rows named.
int64_t WriteChangeSet(pqxx::transaction_base& t, const ChangeSet& c) {
  RowWriterPg w(t);
  int64_t rows = 0;  // those written through the prepared statements
  using Values = RowWriterPg::Values;
  auto id_of = [](const auto& row) { return row.id; };
  auto dedupe = [&](const auto& rows) {
    return HasRepeatedId(rows) ? LastOfEach(rows, id_of) : rows;
  };
  w.Insert(dedupe(c.upsert_instance_types),
           "instance_types (id, name, gpu_model, gpus_per_machine, gpu_memory_mib, "
           "price_per_hour_micros, interconnect, spot_price_per_hour_micros)",
           "?::text, ?::text, ?::text, ?::bigint, ?::bigint, ?::bigint, ?::text, ?::bigint",
           "ON CONFLICT (id) DO UPDATE SET name = excluded.name, gpu_model = excluded.gpu_model, "
           "gpus_per_machine = excluded.gpus_per_machine, gpu_memory_mib = "
           "excluded.gpu_memory_mib, price_per_hour_micros = excluded.price_per_hour_micros, "
           "interconnect = excluded.interconnect, spot_price_per_hour_micros = "
           "excluded.spot_price_per_hour_micros",
           [](const InstanceTypeRow& r, Values& v) {
             v.Text(r.id);
             v.Text(r.name);
             v.Text(r.gpu_model);
             v.Int(r.gpus_per_machine);
             v.Int(r.gpu_memory_mib);
             v.Int(r.price_per_hour_micros);
             v.Text(r.interconnect);
             v.Int(r.spot_price_per_hour_micros);
           });
  // spare_machines: -1 stands for NULL (the fleet default); stored values are >= 0.
  w.Insert(dedupe(c.upsert_domains),
           "domains (id, name, site_id, state, state_reason, spare_machines)",
           "?::text, ?::text, ?::text, ?::bigint, ?::text, NULLIF(?::bigint, -1)",
           "ON CONFLICT (id) DO UPDATE SET name = excluded.name, site_id = excluded.site_id, "
           "state = excluded.state, state_reason = excluded.state_reason, spare_machines = "
           "excluded.spare_machines",
           [](const DomainRow& r, Values& v) {
             v.Text(r.id);
             v.Text(r.name);
             v.Text(r.site_id);
             v.Int(r.state);
             v.Text(r.state_reason);
             v.Int(r.spare_machines.has_value() ? *r.spare_machines : -1);
           });
  const std::vector<TenantRow> tenants = dedupe(c.upsert_tenants);
  w.Insert(tenants, "tenants (id, org, name, priority)", "?::text, ?::text, ?::text, ?::bigint",
           "ON CONFLICT (id) DO UPDATE SET org = excluded.org, name = excluded.name, "
           "priority = excluded.priority",
           [](const TenantRow& r, Values& v) {
             v.Text(r.id);
             v.Text(r.org);
             v.Text(r.name);
             v.Int(r.priority);
           });
  if (!tenants.empty()) {
    std::vector<std::string> ids;
    struct Quota {
      const std::string* tenant;
      const std::string* type;
      const std::string* site;
      int64_t max;
    };
    std::vector<Quota> quotas;
    static const std::string kAllSites;
    for (const TenantRow& tenant : tenants) {
      ids.push_back(tenant.id);
      for (const auto& [type, max] : tenant.quotas) {
        quotas.push_back({&tenant.id, &type, &kAllSites, max});
      }
      for (const auto& [key, max] : tenant.site_quotas) {
        quotas.push_back({&tenant.id, &key.first, &key.second, max});
      }
    }
    w.DeleteIn("tenant_quotas", "tenant_id", ids, /*count=*/false);
    w.Insert(quotas, "tenant_quotas (tenant_id, instance_type_id, site_id, max_machines)",
             "?::text, ?::text, ?::text, ?::bigint", "", [](const Quota& r, Values& v) {
               v.Text(*r.tenant);
               v.Text(*r.type);
               v.Text(*r.site);
               v.Int(r.max);
             });
  }
  if (!c.delete_instance_ids.empty()) {
    BinaryArray ids(BinaryArray::kText);
    for (const std::string& id : c.delete_instance_ids) ids.Add(id);
    ExecArrays(t, kDeleteInstances, {ids});
    rows += static_cast<int64_t>(c.delete_instance_ids.size());
  }
  const std::vector<MachineRow> machines = dedupe(c.upsert_machines);
  w.Insert(machines,
           "machines (id, domain_id, tray_index, instance_type_id, gpu_count, state, "
           "state_reason, cleaning, wipe_pending)",
           "?::text, ?::text, ?::bigint, ?::text, ?::bigint, ?::bigint, ?::text, ?::boolean, "
           "?::boolean",
           "ON CONFLICT (id) DO UPDATE SET domain_id = excluded.domain_id, tray_index = "
           "excluded.tray_index, instance_type_id = excluded.instance_type_id, gpu_count = "
           "excluded.gpu_count, state = excluded.state, state_reason = excluded.state_reason, "
           "cleaning = excluded.cleaning, wipe_pending = excluded.wipe_pending",
           [](const MachineRow& r, Values& v) {
             v.Text(r.id);
             v.Text(r.domain_id);
             v.Int(r.tray_index);
             v.Text(r.instance_type_id);
             v.Int(r.gpu_count);
             v.Int(r.state);
             v.Text(r.state_reason);
             v.Bool(r.cleaning);
             v.Bool(r.wipe_pending);
           });
  if (!machines.empty()) {
    std::vector<std::string> ids;
    std::vector<std::pair<const std::string*, const std::pair<const std::string, std::string>*>>
        labels;
    for (const MachineRow& m : machines) {
      ids.push_back(m.id);
      for (const auto& label : m.labels) labels.emplace_back(&m.id, &label);
    }
    w.DeleteIn("machine_labels", "machine_id", ids, /*count=*/false);
    w.Insert(labels, "machine_labels (machine_id, key, value)", "?::text, ?::text, ?::text", "",
             [](const auto& r, Values& v) {
               v.Text(*r.first);
               v.Text(r.second->first);
               v.Text(r.second->second);
             });
  }
  if (!c.upsert_instances.empty()) {
    std::vector<BinaryArray> cols;
    for (uint32_t type : {BinaryArray::kText, BinaryArray::kText, BinaryArray::kText,
                          BinaryArray::kText, BinaryArray::kText, BinaryArray::kInt8,
                          BinaryArray::kBool, BinaryArray::kText, BinaryArray::kBool,
                          BinaryArray::kText, BinaryArray::kInt8, BinaryArray::kInt8,
                          BinaryArray::kBytea, BinaryArray::kText}) {
      cols.emplace_back(type);
    }
    const std::vector<InstanceRow> instances = dedupe(c.upsert_instances);
    for (const InstanceRow& r : instances) {
      cols[0].Add(r.id);
      cols[1].Add(r.name);
      cols[2].Add(r.tenant_id);
      cols[3].Add(r.instance_type_id);
      cols[4].Add(r.machine_id);
      cols[5].AddInt(r.gpu_count);
      cols[6].AddBool(r.whole_machine);
      cols[7].Add(r.batch_id);
      cols[8].AddBool(r.strict);
      cols[9].Add(r.status);
      cols[10].AddInt(r.created_unix_micros);
      cols[11].AddInt(r.updated_unix_micros);
      cols[12].Add(r.details);
      cols[13].Add(JoinPartitionIds(r.nvlink_partition_ids));
    }
    ExecArrays(t, kUpsertInstances, cols);
    rows += static_cast<int64_t>(instances.size());
  }
  if (!c.delete_machine_ids.empty()) {
    w.DeleteIn("machine_labels", "machine_id", c.delete_machine_ids, /*count=*/false);
    w.DeleteIn("machines", "id", c.delete_machine_ids);
  }
  if (!c.put_idempotency.empty()) {
    std::vector<BinaryArray> cols;
    for (uint32_t type : {BinaryArray::kText, BinaryArray::kText, BinaryArray::kBytea,
                          BinaryArray::kBytea, BinaryArray::kInt8}) {
      cols.emplace_back(type);
    }
    const std::vector<IdempotencyRow> records = LastOfEach(
        c.put_idempotency, [](const IdempotencyRow& r) { return r.tenant_id + '\n' + r.request_id; });
    for (const IdempotencyRow& r : records) {
      cols[0].Add(r.tenant_id);
      cols[1].Add(r.request_id);
      cols[2].Add(r.request_fingerprint);
      cols[3].Add(r.response);
      cols[4].AddInt(r.created_unix_micros);
    }
    ExecArrays(t, kPutIdempotency, cols);
    rows += static_cast<int64_t>(records.size());
  }
  w.Insert(LastOfEach(c.put_meta, [](const MetaRow& r) { return r.key; }), "meta (key, value)",
           "?::text, ?::bytea", "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
           [](const MetaRow& r, Values& v) {
             v.Text(r.key);
             v.Bytes(r.value);
           });
  if (!c.append_events.empty()) {
    std::vector<BinaryArray> cols;
    for (uint32_t type : {BinaryArray::kInt8, BinaryArray::kInt8, BinaryArray::kInt8,
                          BinaryArray::kText, BinaryArray::kText, BinaryArray::kBytea}) {
      cols.emplace_back(type);
    }
    for (const EventRow& r : c.append_events) {
      cols[0].AddInt(static_cast<int64_t>(r.sequence));
      cols[1].AddInt(r.time_unix_micros);
      cols[2].AddInt(r.type);
      cols[3].Add(r.org);
      cols[4].Add(r.tenant_id);
      cols[5].Add(r.payload);
    }
    ExecArrays(t, kAppendEvents, cols);
    rows += static_cast<int64_t>(c.append_events.size());
  }
  if (c.prune_events_through > 0) {
    w.Exec(absl::StrCat("DELETE FROM events WHERE sequence <= ", c.prune_events_through));
  }
  return w.rows() + rows;
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

LoadedState ReadAll(pqxx::transaction_base& t) {
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
    const pqxx::result instances = t.exec(
        "SELECT id, name, tenant_id, instance_type_id, machine_id, gpu_count, whole_machine, "
        "batch_id, strict, status, created_unix_micros, updated_unix_micros, details, "
        "nvlink_partition_ids FROM instances ORDER BY seq");
    s.instances.reserve(instances.size());
    for (const auto& r : instances) {
      InstanceRow& row = s.instances.emplace_back();
      row.id = r[0].as<std::string>();
      row.name = r[1].as<std::string>();
      row.tenant_id = r[2].as<std::string>();
      row.instance_type_id = r[3].as<std::string>();
      row.machine_id = TextOrEmpty(r[4]);
      row.gpu_count = r[5].as<int64_t>();
      row.whole_machine = r[6].as<bool>();
      row.batch_id = TextOrEmpty(r[7]);
      row.strict = r[8].as<bool>();
      row.status = r[9].as<std::string>();
      row.created_unix_micros = r[10].as<int64_t>();
      row.updated_unix_micros = r[11].as<int64_t>();
      row.details = Bytes(r[12]);
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
      "SELECT a.application_name, a.client_addr::text, a.backend_start::text FROM pg_locks l "
      "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
      "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
      "AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1",
      static_cast<int64_t>(kLeaderLockKey));
  if (r.empty()) return "unknown (it released the lock a moment ago: retry)";
  std::string name = r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
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
  const char* doing = "taking the leader lock on";
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
    // Later schema versions: a migration for each, applied here in order, as for SQLite.
    if (version != CurrentSchemaVersion()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", display_, " has schema version ", version, " and this nvlschedd has no "
          "PostgreSQL migration from it to ", CurrentSchemaVersion()));
    }
    doing = "committing the schema of";
    t.commit();
    doing = "preparing the write statements on";
    PrepareStatements(conn_->conn);
  } catch (const pqxx::broken_connection& e) {
    return PgErrorStatus(absl::StatusCode::kUnavailable, absl::StrCat(doing, " ", display_), e);
  } catch (const std::exception& e) {
    return PgErrorStatus(absl::StatusCode::kUnavailable, absl::StrCat(doing, " ", display_), e);
  }
  return absl::OkStatus();
}

absl::Status PgStore::Latch(absl::Status status) {
  if (failure_.ok()) failure_ = std::move(status);
  return failure_;
}

absl::StatusOr<LoadedState> PgStore::LoadAll() {
  MutexLock lock(&mu_);
  if (conn_ == nullptr || !conn_->conn.is_open()) {
    return absl::UnavailableError(absl::StrCat("loading ", display_,
                                               ": the leader's connection is closed"));
  }
  try {
    SnapshotTransaction t(conn_->conn);
    LoadedState state = ReadAll(t);
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
