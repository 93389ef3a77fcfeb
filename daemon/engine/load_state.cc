#include "daemon/engine/load_state.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"

namespace nvlsched::daemon {
namespace {

absl::Status Refuse(absl::string_view what, const absl::Status& cause) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the database does not load: ", what, ": ", cause.message(),
      ". nvlschedd does not repair a database: restore a snapshot (--db=SNAPSHOT) or fix it"));
}


// The allocator's undo journal is cleared this often while
// instances are loaded: a load is never rolled back, and they are cleared at its end anyway.
constexpr size_t kRecordsPerJournalClear = 4096;
// Rows parsed per claim of a parsing thread: large enough that claiming is free, small enough
// that both threads finish together.
constexpr size_t kRowsPerParseChunk = 2048;

// What the rebuild takes from one row, found by parsing its record once on a parsing thread
// into a message that thread reuses (no allocation per record). State keeps the row's bytes
// and builds the record's own message later (record_ptr.h): at start-up only these fields are
// needed.
struct ParsedRow {
  absl::Status status;  // DATA_LOSS (does not parse); FAILED_PRECONDITION (disagrees)
  v1::InstanceStatus instance_status = v1::INSTANCE_STATUS_UNSPECIFIED;
  bool has_queue = false;
  uint64_t queue_sequence = 0;
  // Rows held or terminated: the record as State keeps it, the key of its name, and its
  // preemption deadline if it has one.
  RecordPtr record;
  std::string name_key;
  std::optional<int64_t> preemption_deadline;
  // Rows that hold a machine: what they claim (ClaimOf).
  allocator::InstanceClaim claim;
  // Queued rows (few): the record itself, queued again request by request.
  std::unique_ptr<v1::Instance> queued;
};

// Parses every row's details into parsed[i], taking each row's details (the bytes move into the
// record State keeps). Start() parses on a helper thread while the caller loads the inventory;
// Finish() joins in on the calling thread until every row is parsed.
// Thread-safety: between Start() and Finish() the rows' details and the results belong to the
// parser; the caller may read nothing of them (it may read the rows' other fields).
class RecordParser {
 public:
  explicit RecordParser(std::vector<store::InstanceRow>& rows)
      : rows_(rows), parsed_(rows.size()),
        chunks_((rows.size() + kRowsPerParseChunk - 1) / kRowsPerParseChunk) {}
  ~RecordParser() {
    // Start-up stopped early (a bad inventory row): leave the remaining chunks unparsed.
    next_chunk_.store(chunks_);
    if (helper_.joinable()) helper_.join();
  }

  void Start() {
    if (chunks_ >= 2 && std::thread::hardware_concurrency() >= 2) {
      helper_ = std::thread([this] { ParseChunks(); });
    }
  }

  std::vector<ParsedRow> Finish() {
    ParseChunks();
    if (helper_.joinable()) helper_.join();
    return std::move(parsed_);
  }

 private:
  void ParseChunks() {
    v1::Instance scratch;  // reused: its strings and sub-messages keep their allocations
    for (size_t chunk = next_chunk_.fetch_add(1); chunk < chunks_;
         chunk = next_chunk_.fetch_add(1)) {
      const size_t end = std::min(rows_.size(), (chunk + 1) * kRowsPerParseChunk);
      for (size_t i = chunk * kRowsPerParseChunk; i < end; ++i) {
        Parse(rows_[i], scratch, parsed_[i]);
      }
    }
  }

  static void Parse(store::InstanceRow& row, v1::Instance& instance, ParsedRow& out) {
    out.status = ParseInstanceRow(row, &instance);
    if (!out.status.ok()) return;
    if (instance.id() != row.id || instance.machine_id() != row.machine_id ||
        instance.tenant_id() != row.tenant_id || instance.gpu_count() != row.gpu_count) {
      out.status = absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: instance ", row.id,
          ": its columns and its stored record disagree (machine ", row.machine_id, " vs ",
          instance.machine_id(), ")"));
      return;
    }
    out.instance_status = instance.status();
    out.has_queue = instance.has_queue();
    if (out.has_queue) out.queue_sequence = instance.queue().sequence();
    if (out.instance_status == v1::INSTANCE_STATUS_QUEUED) {
      out.queued = std::make_unique<v1::Instance>(instance);
      return;
    }
    out.name_key = State::NameKey(instance.tenant_id(), instance.name());
    if (instance.has_preemption()) {
      out.preemption_deadline = ToUnixMicros(instance.preemption().preemption_deadline());
    }
    if (out.instance_status != v1::INSTANCE_STATUS_TERMINATED) {
      out.claim = ClaimOf(instance, row.whole_machine);
    }
    out.record = RecordPtr::FromCheckedBytes(std::move(row.details), instance);
  }

  std::vector<store::InstanceRow>& rows_;
  std::vector<ParsedRow> parsed_;
  const size_t chunks_;
  std::atomic<size_t> next_chunk_{0};
  std::thread helper_;
};

// The first 8 bytes of an id as a big-endian number (zero-padded): ordered as the ids are.
uint64_t IdPrefix(const std::string& id) {
  unsigned char bytes[8] = {};
  std::memcpy(bytes, id.data(), std::min<size_t>(8, id.size()));
  uint64_t prefix = 0;
  for (unsigned char b : bytes) prefix = (prefix << 8) | b;
  return prefix;
}

}  // namespace

absl::StatusOr<std::unique_ptr<State>> LoadState(store::Store& store, LoadReport* report,
                                                 allocator::GangQueue::Options queue_options,
                                                 absl::Duration max_queue_timeout) {
  const absl::Time start = absl::Now();
  absl::StatusOr<store::LoadedState> loaded = store.LoadAll(store::InstanceColumns::kStartUp);
  if (!loaded.ok()) return loaded.status();
  const absl::Time read_done = absl::Now();

  std::vector<store::InstanceRow>& rows = loaded->instances;  // freed before the records' index
  const size_t instance_rows = rows.size();
  RecordParser parser(rows);
  parser.Start();

  auto state = std::make_unique<State>();
  state->ConfigureQueue(queue_options, max_queue_timeout);
  struct QueuedRow {
    v1::Instance record;
    bool whole_machine;
  };
  absl::flat_hash_map<uint64_t, std::vector<QueuedRow>> queued;
  std::vector<uint64_t> queued_order;  // first seen
  uint64_t max_sequence = 0;
  allocator::Allocator& alloc = state->allocator();
  for (const store::InstanceTypeRow& row : loaded->instance_types) {
    if (absl::Status s = alloc.UpsertInstanceType(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("instance type ", row.id), s);
    }
  }
  for (const store::MetaRow& row : loaded->meta) {
    if (row.key != store::kDefaultSpareMachinesKey) continue;
    int32_t spares = 0;
    absl::Status s = absl::SimpleAtoi(row.value, &spares)
                         ? alloc.SetDefaultSpareMachines(spares)
                         : absl::InvalidArgumentError(absl::StrCat("\"", row.value,
                                                                   "\" is not a number"));
    if (!s.ok()) return Refuse(absl::StrCat("meta ", row.key), s);
  }
  for (const store::DomainRow& row : loaded->domains) {
    if (absl::Status s = alloc.UpsertDomain(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("domain ", row.id), s);
    }
  }
  for (const store::MachineRow& row : loaded->machines) {
    if (absl::Status s = alloc.UpsertMachine(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("machine ", row.id), s);
    }
  }
  for (const store::TenantRow& row : loaded->tenants) {
    if (absl::Status s = alloc.UpsertTenant(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("tenant ", row.id), s);
    }
  }
  const absl::Time inventory_done = absl::Now();
  // The rows' one parse, on both cores (each row parses on its own).
  std::vector<ParsedRow> parsed = parser.Finish();
  const absl::Time parse_done = absl::Now();

  // On the other core while the claims go in: the rows State records (all but the queued), in
  // id order, and the index of their names. State keeps the records in an ordered container,
  // whose inserts then always land on the same, cached, rightmost path instead of a random one
  // (the ids are random UUIDs). It reads each row's id, status and name key, which the claims
  // below do not touch; it is joined before LoadState returns, whatever it returns.
  std::vector<size_t> id_order;
  absl::btree_set<std::string> names;
  // A tenant's instance names are unique: the engine refuses a second one (State::NameTaken),
  // and since schema v12 nothing in the store does. A name stored twice (a bug, or an edited
  // file) is refused here rather than merged into one entry of `names`.
  std::string name_stored_twice;
  std::thread sorter([&rows, &parsed, &id_order, &names, &name_stored_twice] {
    // Sorted by the ids' first 8 bytes as a big-endian number, then (ties) by the whole id: the
    // same order as comparing the ids, with most comparisons on integers in one array.
    struct Key {
      uint64_t prefix;
      uint32_t row;
    };
    std::vector<Key> keys;
    keys.reserve(rows.size());
    std::vector<std::string> name_keys;
    name_keys.reserve(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!parsed[i].status.ok() || parsed[i].instance_status == v1::INSTANCE_STATUS_QUEUED) {
        continue;
      }
      keys.push_back(Key{IdPrefix(rows[i].id), static_cast<uint32_t>(i)});
      name_keys.push_back(std::move(parsed[i].name_key));
    }
    std::sort(keys.begin(), keys.end(), [&rows](const Key& a, const Key& b) {
      if (a.prefix != b.prefix) return a.prefix < b.prefix;
      return rows[a.row].id < rows[b.row].id;
    });
    id_order.reserve(keys.size());
    for (const Key& key : keys) id_order.push_back(key.row);
    std::sort(name_keys.begin(), name_keys.end());
    auto twice = std::adjacent_find(name_keys.begin(), name_keys.end());
    if (twice != name_keys.end()) name_stored_twice = *twice;
    for (std::string& name : name_keys) names.emplace_hint(names.end(), std::move(name));
  });
  struct JoinOnReturn {
    std::thread& thread;
    ~JoinOnReturn() {
      if (thread.joinable()) thread.join();
    }
  } join_sorter{sorter};

  // In stored (rowid) order, as before: the checks report the first bad row, claims go to the
  // allocator in the order they were stored (so handles are minted as they always were), and
  // queued rows are grouped by request.
  std::vector<allocator::InstanceHandle> handles(rows.size());
  std::vector<size_t> held;  // rows to record, in id order below
  size_t restored = 0;
  held.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const store::InstanceRow& row = rows[i];
    ParsedRow& p = parsed[i];
    if (!p.status.ok()) return p.status;
    if (p.has_queue) max_sequence = std::max<uint64_t>(max_sequence, p.queue_sequence);
    const bool queued_row = p.instance_status == v1::INSTANCE_STATUS_QUEUED;
    const bool terminated_row = p.instance_status == v1::INSTANCE_STATUS_TERMINATED;
    if ((queued_row || terminated_row) != row.machine_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: instance ", row.id, " is ",
          v1::InstanceStatus_Name(p.instance_status),
          row.machine_id.empty() ? " but holds no machine" : " but holds a machine"));
    }
    if (queued_row) {
      // Queued again below, request by request, once every row is read.
      if (queued.find(p.queue_sequence) == queued.end()) queued_order.push_back(p.queue_sequence);
      queued[p.queue_sequence].push_back(QueuedRow{std::move(*p.queued), row.whole_machine});
      continue;
    }
    held.push_back(i);
    // Terminated rows left the queue unplaced: a record that holds nothing (no handle).
    if (terminated_row) continue;
    // Ids are unique (the primary key), so each row gets a handle of its own.
    absl::StatusOr<allocator::InstanceHandle> handle = alloc.RestoreInstance(p.claim);
    if (!handle.ok()) {
      // The allocator names the instances already on the machine through State's ids: record
      // the rows before this one, as a row-by-row load would have, and ask again for the
      // message (a refused claim changed nothing).
      for (size_t j : held) {
        if (j == i) break;
        state->PutInstance(v1::Instance(*parsed[j].record), handles[j], rows[j].whole_machine);
      }
      handle = alloc.RestoreInstance(p.claim);
      return Refuse(absl::StrCat("instance ", row.id),
                    handle.ok() ? absl::InternalError("refused once, then accepted")
                                : handle.status());
    }
    handles[i] = *handle;
    if (++restored % kRecordsPerJournalClear == 0) alloc.ClearJournal();
  }
  // Records in id order (the sorter's). The change record of a load is never used (it is
  // cleared below), so it is cleared as it goes instead of growing to one entry per row.
  const absl::Time claims_done = absl::Now();
  sorter.join();
  if (!name_stored_twice.empty()) {
    std::vector<std::string> ids;  // the rows of that name, found by parsing (a refusal only)
    for (size_t i : held) {
      if (State::NameKey(parsed[i].record->tenant_id(), parsed[i].record->name()) ==
          name_stored_twice) {
        ids.push_back(rows[i].id);
      }
    }
    const size_t newline = name_stored_twice.find('\n');
    return absl::FailedPreconditionError(absl::StrCat(
        "the database does not load: instances ", absl::StrJoin(ids, " and "), " of tenant ",
        name_stored_twice.substr(0, newline), " are both named '",
        name_stored_twice.substr(newline + 1), "' (a tenant's instance names are unique)"));
  }
  assert(id_order.size() == held.size());
  {
    std::vector<State::LoadedInstance> sorted(id_order.size());
    for (size_t k = 0; k < id_order.size(); ++k) {
      const size_t i = id_order[k];
      State::LoadedInstance& out = sorted[k];
      out.id = std::move(rows[i].id);  // not read again
      out.record = std::move(parsed[i].record);
      out.handle = handles[i];
      out.whole_machine = rows[i].whole_machine;
      out.preemption_deadline = parsed[i].preemption_deadline;
    }
    // What the rows and their parse still hold is not read again (queued rows were moved out,
    // the sorter is joined): freed before State indexes the records, so that State's
    // allocations reuse this memory instead of touching more.
    std::vector<ParsedRow>().swap(parsed);
    std::vector<store::InstanceRow>().swap(rows);
    std::vector<allocator::InstanceHandle>().swap(handles);
    state->LoadInstances(absl::MakeSpan(sorted), std::move(names));
  }
  const absl::Time records_done = absl::Now();
  for (uint64_t sequence : queued_order) {
    std::vector<QueuedRow>& rows = queued[sequence];
    const v1::Instance& first = rows.front().record;
    const v1::QueueInfo& info = first.queue();
    if (alloc.FindInstanceType(first.instance_type_id()) == nullptr ||
        alloc.FindTenant(first.tenant_id()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: queued instance ", first.id(),
          " names an unknown tenant or instance type"));
    }
    for (const QueuedRow& r : rows) {
      if (r.record.tenant_id() != first.tenant_id() ||
          r.record.instance_type_id() != first.instance_type_id() ||
          r.record.batch_id() != first.batch_id() ||
          r.whole_machine != rows.front().whole_machine) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database does not load: queued instances ", first.id(), " and ", r.record.id(),
            " share queue sequence ", sequence, " but not their tenant, type, batch or shape"));
      }
    }
    if (first.batch_id().empty() && rows.size() != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: ", rows.size(), " queued singles share queue sequence ",
          sequence));
    }
    if (!first.batch_id().empty() && static_cast<int32_t>(rows.size()) != info.count()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: queued batch ", first.batch_id(), " has ", rows.size(),
          " instances stored but was queued with ", info.count()));
    }
    allocator::QueuedRequest q;
    q.sequence = sequence;
    q.priority = info.priority();
    q.queued_micros = ToUnixMicros(info.queued());
    q.deadline_micros = ToUnixMicros(info.deadline());
    q.is_batch = !first.batch_id().empty();
    std::vector<std::string> partitions = PartitionsOf(first);
    if (q.is_batch) {
      q.batch.tenant_id = first.tenant_id();
      q.batch.instance_type_id = first.instance_type_id();
      q.batch.count = info.count();
      q.batch.topology_optimized = first.topology_optimized();
      q.batch.spread_policy = ToCore(info.spread_policy());
      q.batch.nvlink_partition_ids = std::move(partitions);
      q.batch.spot = first.billing_mode() == v1::BILLING_MODE_SPOT;
      q.batch.segment_size = info.segment_size();
      q.batch.site_id = info.site_id();
    } else {
      q.single.tenant_id = first.tenant_id();
      q.single.instance_type_id = first.instance_type_id();
      q.single.gpu_count = rows.front().whole_machine ? 0 : first.gpu_count();
      q.single.site_id = info.site_id();
      q.single.nvlink_partition_ids = std::move(partitions);
      q.single.spot = first.billing_mode() == v1::BILLING_MODE_SPOT;
    }
    if (!info.pinned_domain_id().empty()) {
      q.pinned_domain = alloc.DomainIndexOf(info.pinned_domain_id());
      if (q.pinned_domain == allocator::kNoIndex) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database does not load: queued instance ", first.id(),
            " waits for NVLink domain ", info.pinned_domain_id(), ", which does not exist"));
      }
    }
    std::vector<v1::Instance> records;
    for (QueuedRow& r : rows) {
      q.gpus += r.record.gpu_count();
      records.push_back(std::move(r.record));
    }
    state->EnqueueInstances(std::move(q), absl::MakeSpan(records));
  }
  state->ResumeQueueSequencesAfter(max_sequence);
  for (const store::IdempotencyRow& row : loaded->idempotency) {
    state->PutIdempotency(row.tenant_id, row.request_id,
                          IdempotencyEntry{row.request_fingerprint, row.response,
                                           row.created_unix_micros});
  }
  if (absl::Status s = alloc.CheckInvariants(); !s.ok()) {
    return Refuse("invariant check", s);
  }
  state->ClearJournal();
  state->SetEventBounds(loaded->oldest_event, loaded->newest_event);

  if (report != nullptr) {
    report->machines = loaded->machines.size();
    report->instances = instance_rows;
    report->read_time = read_done - start;
    const absl::Time done = absl::Now();
    report->rebuild_time = done - read_done;
    report->inventory_time = inventory_done - read_done;
    report->parse_time = parse_done - inventory_done;
    report->claims_time = claims_done - parse_done;
    report->records_time = records_done - claims_done;
    report->rest_time = done - records_done;
  }
  return state;
}

}  // namespace nvlsched::daemon
