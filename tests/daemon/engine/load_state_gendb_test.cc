// LoadState on databases written by nvlsched-gendb (bench/startup/gendb.h): the generator's
// output loads (invariant check included) with the counts it reports, the generator is
// deterministic, and a refused claim is still reported with the ids of the instances involved
// (LoadState records instances in id order, after the allocator has their claims).
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/startup/gendb.h"
#include "daemon/api/convert.h"
#include "daemon/engine/instance_view.h"
#include "daemon/engine/load_state.h"
#include "daemon/engine/rows.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<store::Store> OpenMemoryStore() {
  store::StoreOptions options;
  options.path = ":memory:";
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return *std::move(store);
}

// Two domains: one holds a strict batch, the other one-GPU singles; the rest of the records
// expired in the queue or still wait in it.
bench::GenDbOptions SmallOptions() {
  bench::GenDbOptions options;
  options.domains = 2;
  options.machines_per_domain = 18;
  options.gpus_per_machine = 4;
  options.instances = 300;
  options.tenants = 3;
  options.batch_domain_every = 2;
  options.queued = 10;
  options.records_per_commit = 64;  // several commits
  return options;
}

// Generates SmallOptions() into `store` and reads its rows back into *rows.
void GenerateAndRead(store::Store& store, store::LoadedState* rows) {
  ASSERT_TRUE(bench::GenerateDatabase(store, SmallOptions()).ok());
  absl::StatusOr<store::LoadedState> read = store.LoadAll();
  ASSERT_TRUE(read.ok()) << read.status();
  *rows = *std::move(read);
}

// Stores `record` as its row, as the engine would (a new id adds a row, a known one replaces it).
void CommitRecord(store::Store& store, const v1::Instance& record, bool whole_machine) {
  store::ChangeSet changes;
  changes.upsert_instances.push_back(ToRow(record, whole_machine));
  ASSERT_TRUE(store.Commit(changes).ok());
}

TEST(LoadStateGenDbTest, LoadsWhatTheGeneratorWrote) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  absl::StatusOr<bench::GenDbReport> report = bench::GenerateDatabase(*store, SmallOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->machines, 36);
  EXPECT_EQ(report->placed, 18 + 18 * 4);
  EXPECT_EQ(report->queued, 10);
  EXPECT_EQ(report->terminated, 300 - 90 - 10);
  EXPECT_EQ(report->instances, 300);
  EXPECT_GT(report->commits, 2);

  LoadReport load;
  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, &load);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(load.machines, 36u);
  EXPECT_EQ(load.instances, 300u);
  EXPECT_EQ((*state)->instances().size(), 300u);
  EXPECT_EQ((*state)->queue().size(), 10u);
  int64_t placed = 0, terminated = 0, queued = 0, batch_members = 0, gpus = 0;
  for (const auto& [id, entry] : (*state)->instances()) {
    EXPECT_EQ(id, entry.record->id());
    if (entry.record->status() == v1::INSTANCE_STATUS_QUEUED) {
      ++queued;
    } else if (entry.record->status() == v1::INSTANCE_STATUS_TERMINATED) {
      ++terminated;
    } else {
      ++placed;
      gpus += entry.record->gpu_count();
      EXPECT_NE(entry.handle.generation, 0u) << id;
      EXPECT_EQ((*state)->InstanceIdOf(entry.handle), id);
      EXPECT_TRUE((*state)->NameTaken(entry.record->tenant_id(), entry.record->name())) << id;
      if (!entry.record->batch_id().empty()) ++batch_members;
    }
  }
  EXPECT_EQ(placed, report->placed);
  EXPECT_EQ(terminated, report->terminated);
  EXPECT_EQ(queued, report->queued);
  EXPECT_EQ(batch_members, 18);
  EXPECT_EQ(gpus, 36 * 4);  // a full fleet
  EXPECT_TRUE((*state)->allocator().CheckInvariants().ok());
}

TEST(LoadStateGenDbTest, SameSeedSameRows) {
  std::unique_ptr<store::Store> a = OpenMemoryStore();
  std::unique_ptr<store::Store> b = OpenMemoryStore();
  ASSERT_TRUE(bench::GenerateDatabase(*a, SmallOptions()).ok());
  ASSERT_TRUE(bench::GenerateDatabase(*b, SmallOptions()).ok());
  absl::StatusOr<store::LoadedState> rows_a = a->LoadAll();
  absl::StatusOr<store::LoadedState> rows_b = b->LoadAll();
  ASSERT_TRUE(rows_a.ok() && rows_b.ok());
  EXPECT_EQ(rows_a->machines, rows_b->machines);
  EXPECT_EQ(rows_a->tenants, rows_b->tenants);
  ASSERT_EQ(rows_a->instances.size(), 300u);
  ASSERT_EQ(rows_b->instances.size(), 300u);
  // The daemon serializes records with protobuf's default (map order is not fixed), so the
  // records are compared as messages and the other columns as they are.
  for (size_t i = 0; i < rows_a->instances.size(); ++i) {
    store::InstanceRow row_a = rows_a->instances[i];
    store::InstanceRow row_b = rows_b->instances[i];
    absl::StatusOr<v1::Instance> record_a = InstanceFromRow(row_a);
    absl::StatusOr<v1::Instance> record_b = InstanceFromRow(row_b);
    ASSERT_TRUE(record_a.ok() && record_b.ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*record_a, *record_b))
        << row_a.id;
    row_a.details.clear();
    row_b.details.clear();
    EXPECT_TRUE(row_a == row_b) << row_a.id << " vs " << row_b.id;
  }
}

TEST(LoadStateGenDbTest, AMachineHeldTwiceNamesBothInstances) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  store::LoadedState rows;
  ASSERT_NO_FATAL_FAILURE(GenerateAndRead(*store, &rows));
  // A copy of a batch member, under a new id and name, claiming the same machine whole.
  const store::InstanceRow* member = nullptr;
  for (const store::InstanceRow& row : rows.instances) {
    if (!row.batch_id.empty() && !row.machine_id.empty()) member = &row;
  }
  ASSERT_NE(member, nullptr);
  absl::StatusOr<v1::Instance> record = InstanceFromRow(*member);
  ASSERT_TRUE(record.ok());
  const std::string intruder_id = "00000000-0000-4000-8000-00000000beef";
  record->set_id(intruder_id);
  record->set_name("intruder");
  record->clear_batch_id();
  ASSERT_NO_FATAL_FAILURE(CommitRecord(*store, *record, /*whole_machine=*/true));

  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, nullptr);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(state.status().message(), HasSubstr(absl::StrCat("instance ", intruder_id)));
  // The holder is named by its id, not by an allocator handle.
  EXPECT_THAT(state.status().message(), HasSubstr(member->id));
}

// Since schema v12 the store takes a tenant's second instance of a name; the load refuses it,
// naming both instances.
TEST(LoadStateGenDbTest, ANameStoredTwiceForOneTenantIsRefusedNamingBothInstances) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  store::LoadedState rows;
  ASSERT_NO_FATAL_FAILURE(GenerateAndRead(*store, &rows));
  // Two placed instances of one tenant; the second gets the first's name.
  const store::InstanceRow* first = nullptr;
  const store::InstanceRow* second = nullptr;
  for (const store::InstanceRow& row : rows.instances) {
    if (row.machine_id.empty()) continue;
    if (first == nullptr) {
      first = &row;
    } else if (row.tenant_id == first->tenant_id) {
      second = &row;
      break;
    }
  }
  ASSERT_NE(second, nullptr);
  absl::StatusOr<v1::Instance> record = InstanceFromRow(*second);
  ASSERT_TRUE(record.ok());
  record->set_name(first->name);
  ASSERT_NO_FATAL_FAILURE(CommitRecord(*store, *record, second->whole_machine));

  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, nullptr);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(state.status().message(),
              HasSubstr(absl::StrCat("of tenant ", first->tenant_id, " are both named '",
                                     first->name, "'")));
  EXPECT_THAT(state.status().message(), HasSubstr(first->id));
  EXPECT_THAT(state.status().message(), HasSubstr(second->id));
}

// Generates SmallOptions() into `store`, then rewrites the stored row of one placed single (not
// a batch member) with `edit`, which gets the row and its parsed record; *rewritten is the row
// as committed.
void RewriteAPlacedSingle(store::Store& store,
                          const std::function<void(store::InstanceRow&, v1::Instance&)>& edit,
                          store::InstanceRow* rewritten) {
  store::LoadedState rows;
  ASSERT_NO_FATAL_FAILURE(GenerateAndRead(store, &rows));
  for (const store::InstanceRow& row : rows.instances) {
    if (!row.batch_id.empty() || row.machine_id.empty()) continue;
    *rewritten = row;
    absl::StatusOr<v1::Instance> record = InstanceFromRow(row);
    ASSERT_TRUE(record.ok());
    edit(*rewritten, *record);
    store::ChangeSet changes;
    changes.upsert_instances.push_back(*rewritten);
    ASSERT_TRUE(store.Commit(changes).ok());
    return;
  }
  FAIL() << "the generated database has no placed single";
}

TEST(LoadStateGenDbTest, ARecordThatDoesNotParseIsRefusedByItsId) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  store::InstanceRow row;
  ASSERT_NO_FATAL_FAILURE(RewriteAPlacedSingle(
      *store,
      [](store::InstanceRow& r, v1::Instance&) {
        r.details = "\x0a\xff\xff\xff";  // field 1, a length past the end
      },
      &row));

  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, nullptr);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(state.status().message(),
              HasSubstr(absl::StrCat("instance ", row.id, ": its stored record does not parse")));
}

TEST(LoadStateGenDbTest, ARecordThatDisagreesWithItsColumnsIsRefused) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  store::InstanceRow row;
  ASSERT_NO_FATAL_FAILURE(RewriteAPlacedSingle(
      *store,
      [](store::InstanceRow& r, v1::Instance& record) {
        record.set_machine_id("elsewhere");  // the column still names the machine it holds
        r.details = record.SerializeAsString();
      },
      &row));

  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, nullptr);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(state.status().message(),
              HasSubstr(absl::StrCat("instance ", row.id,
                                     ": its columns and its stored record disagree (machine ",
                                     row.machine_id, " vs elsewhere)")));
}

// LoadState keeps each record's bytes and parses them again on first use (record_ptr.h): no
// record is parsed by the load itself or by a ListInstances walk over all of them; once parsed,
// every record is the stored one; and what the rebuild took from the first parse (names, a
// preemption's deadline, the list filters) is in State.
TEST(LoadStateGenDbTest, LoadedRecordsAreTheStoredOnesOnceParsed) {
  std::unique_ptr<store::Store> store = OpenMemoryStore();
  // One placed spot single, preempted: its deadline must come back from the first parse.
  const absl::Time deadline = absl::FromUnixSeconds(1'900'000'000);
  store::InstanceRow row;
  ASSERT_NO_FATAL_FAILURE(RewriteAPlacedSingle(
      *store,
      [deadline](store::InstanceRow& r, v1::Instance& record) {
        record.set_billing_mode(v1::BILLING_MODE_SPOT);
        *record.mutable_preemption()->mutable_preemption_deadline() = ToTimestamp(deadline);
        r = ToRow(record, r.whole_machine);
      },
      &row));
  absl::StatusOr<v1::Instance> preempted = InstanceFromRow(row);
  ASSERT_TRUE(preempted.ok());
  absl::StatusOr<store::LoadedState> rows = store->LoadAll();
  ASSERT_TRUE(rows.ok());

  absl::StatusOr<std::unique_ptr<State>> state = LoadState(*store, nullptr);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ((*state)->NextPreemptionDeadline(), deadline);
  ASSERT_EQ((*state)->instances().size(), rows->instances.size());
  // Only the queued records (queued again from their messages) are parsed after the load, and
  // a list walking every record parses none: here a label and tenant filter that one record
  // matches (the preempted one, whose labels are the generator's).
  size_t queued = 0;
  for (const store::InstanceRow& stored : rows->instances) {
    if (InstanceFromRow(stored)->status() == v1::INSTANCE_STATUS_QUEUED) ++queued;
  }
  auto count_parsed = [&state] {
    size_t n = 0;
    for (const auto& [id, entry] : (*state)->instances()) n += entry.record.parsed() ? 1 : 0;
    return n;
  };
  EXPECT_EQ(count_parsed(), queued);
  ASSERT_FALSE(preempted->labels().empty());
  InstanceView view;
  view.PublishAll(**state);
  InstanceQuery query;
  query.org = (*state)->allocator().FindTenant(preempted->tenant_id())->org;
  query.tenant_id = preempted->tenant_id();
  query.labels.emplace_back(*preempted->labels().begin());
  query.page_size = 1;
  v1::ListInstancesResponse listed;
  ASSERT_TRUE(view.List(query, &listed).ok());
  ASSERT_GE(listed.total_size(), 1);
  EXPECT_EQ(count_parsed(), queued);
  ASSERT_EQ(listed.instances_size(), 1);
  EXPECT_EQ(listed.instances(0).tenant_id(), preempted->tenant_id());
  EXPECT_EQ(listed.instances(0).labels().at(query.labels[0].first), query.labels[0].second);

  for (const store::InstanceRow& stored : rows->instances) {
    const State::InstanceEntry* entry = (*state)->FindInstance(stored.id);
    ASSERT_NE(entry, nullptr) << stored.id;
    absl::StatusOr<v1::Instance> expected = InstanceFromRow(stored);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*entry->record, *expected))
        << stored.id;
    EXPECT_TRUE(entry->record.parsed());
    if (expected->status() != v1::INSTANCE_STATUS_QUEUED) {
      EXPECT_TRUE((*state)->NameTaken(expected->tenant_id(), expected->name())) << stored.id;
    }
  }
}

}  // namespace
}  // namespace nvlsched::daemon
