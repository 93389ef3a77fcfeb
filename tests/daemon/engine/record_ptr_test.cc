// RecordPtr (daemon/engine/record_ptr.h): a record loaded as bytes reads as the message it was
// serialized from, answers ListInstances' filters and copies without being parsed, is parsed
// once however many threads use it first (label grpc: the TSan build runs it), and a built
// record is the message it was built from. Both append themselves to a message in their wire
// form (ListInstances' answers).
#include <string>
#include <thread>
#include <vector>

#include "daemon/engine/record_ptr.h"
#include "nvlsched/v1/instance_service.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

v1::Instance Sample(int n) {
  v1::Instance record;
  record.set_id("i-" + std::to_string(n));
  record.set_name("worker-" + std::to_string(n));
  record.set_tenant_id("acme");
  if (n % 2 == 0) record.set_batch_id("b-" + std::to_string(n / 10));
  record.set_machine_id("m-" + std::to_string(n % 18));
  record.set_gpu_count(4);
  record.set_status(v1::INSTANCE_STATUS_READY);
  (*record.mutable_labels())["team"] = "inference";
  return record;
}

TEST(RecordPtrTest, ABuiltRecordIsItsMessage) {
  const RecordPtr record(Sample(1));
  EXPECT_TRUE(record.parsed());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*record, Sample(1)));
  EXPECT_EQ(record->name(), "worker-1");
  EXPECT_TRUE(record != nullptr);
  EXPECT_TRUE(RecordPtr() == nullptr);
  EXPECT_FALSE(static_cast<bool>(RecordPtr(nullptr)));
}

TEST(RecordPtrTest, ALoadedRecordIsParsedOnFirstUse) {
  const RecordPtr record = RecordPtr::FromCheckedBytes(Sample(2).SerializeAsString(), Sample(2));
  EXPECT_FALSE(record.parsed());
  const RecordPtr copy = record;  // shares the one record
  EXPECT_EQ(copy->labels().at("team"), "inference");
  EXPECT_TRUE(record.parsed());
  EXPECT_EQ(&*record, &*copy);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*record, Sample(2)));
}

// What ListInstances reads of every record, from a built record and from a loaded one that
// stays unparsed.
TEST(RecordPtrTest, ListFieldsAndCopiesNeedNoParse) {
  const v1::Instance sample = Sample(20);
  const RecordPtr built(sample);
  const RecordPtr loaded = RecordPtr::FromCheckedBytes(sample.SerializeAsString(), sample);
  for (const RecordPtr* record : {&built, &loaded}) {
    EXPECT_EQ(record->tenant_id(), "acme");
    EXPECT_EQ(record->batch_id(), "b-2");
    EXPECT_TRUE(record->HasLabel("team", "inference"));
    EXPECT_FALSE(record->HasLabel("team", "training"));
    EXPECT_FALSE(record->HasLabel("owner", "inference"));
    v1::Instance copy;
    copy.set_name("overwritten");
    record->CopyTo(&copy);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(copy, sample));
  }
  // No batch and no labels.
  v1::Instance bare = Sample(21);
  bare.clear_labels();
  const RecordPtr loaded_bare = RecordPtr::FromCheckedBytes(bare.SerializeAsString(), bare);
  EXPECT_EQ(loaded_bare.tenant_id(), "acme");
  EXPECT_EQ(loaded_bare.batch_id(), "");
  EXPECT_FALSE(loaded_bare.HasLabel("team", "inference"));
  EXPECT_FALSE(loaded_bare.parsed());

  EXPECT_FALSE(loaded.parsed());
  EXPECT_EQ(loaded->name(), "worker-20");
  EXPECT_TRUE(loaded.parsed());
  v1::Instance copy;
  loaded.CopyTo(&copy);  // from the message now
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(copy, sample));
}

// ListInstances' wire form (instance_view.h): each record appended as field 1 of a
// ListInstancesResponse reads back as itself; a loaded record appends its stored bytes as they
// are, without a parse, and a record too long for a one-byte length still reads back.
TEST(RecordPtrTest, RecordsAppendThemselvesAsAField) {
  v1::Instance long_record = Sample(30);
  long_record.set_user_data(std::string(20000, 'u'));  // a length of three varint bytes
  const RecordPtr built(Sample(31));
  const RecordPtr loaded = RecordPtr::FromCheckedBytes(Sample(32).SerializeAsString(), Sample(32));
  const RecordPtr loaded_long =
      RecordPtr::FromCheckedBytes(long_record.SerializeAsString(), long_record);
  std::string wire;
  for (const RecordPtr* record : {&built, &loaded, &loaded_long}) {
    record->AppendAsField(v1::ListInstancesResponse::kInstancesFieldNumber, &wire);
  }
  v1::ListInstancesResponse rest;
  rest.set_total_size(3);
  ASSERT_TRUE(rest.AppendToString(&wire));
  v1::ListInstancesResponse resp;
  ASSERT_TRUE(resp.ParseFromString(wire));
  ASSERT_EQ(resp.instances_size(), 3);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(resp.instances(0), Sample(31)));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(resp.instances(1), Sample(32)));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(resp.instances(2), long_record));
  EXPECT_EQ(resp.total_size(), 3);
  EXPECT_FALSE(loaded.parsed());
  EXPECT_FALSE(loaded_long.parsed());

  // The stored bytes go out as stored, a field this version does not know (99) included.
  std::string stored = Sample(33).SerializeAsString();
  stored += std::string("\x9a\x06\x03new", 6);  // field 99, 3 bytes
  const RecordPtr newer = RecordPtr::FromCheckedBytes(stored, Sample(33));
  std::string one;
  newer.AppendAsField(1, &one);
  ASSERT_GT(one.size(), stored.size());
  EXPECT_EQ(one.substr(one.size() - stored.size()), stored);
}

// Readers append the same built record at once: its sizes are cached in the shared message
// (label grpc: the TSan build runs it).
TEST(RecordPtrTest, ThreadsAppendingOneBuiltRecordAllWriteIt) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  const RecordPtr built(Sample(40));
  const std::string expected = [&] {
    std::string wire;
    built.AppendAsField(1, &wire);
    return wire;
  }();
  const RecordPtr fresh(Sample(40));  // sizes not cached yet: the threads race to cache them
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fresh, &got, t] {
      for (int k = 0; k < kRounds; ++k) {
        std::string wire;
        fresh.AppendAsField(1, &wire);
        if (k == 0 || wire != got[t]) got[t] = wire;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], expected) << "thread " << t;
}

TEST(RecordPtrTest, ThreadsUsingALoadedRecordFirstAllSeeOneMessage) {
  constexpr int kRecords = 200;
  constexpr int kThreads = 4;
  std::vector<RecordPtr> records;
  for (int i = 0; i < kRecords; ++i) {
    records.push_back(RecordPtr::FromCheckedBytes(Sample(i).SerializeAsString(), Sample(i)));
  }
  std::vector<std::vector<const v1::Instance*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&records, &seen, t] {
      // Half the threads walk forward, half backward, so first uses collide.
      for (int k = 0; k < kRecords; ++k) {
        const int i = t % 2 == 0 ? k : kRecords - 1 - k;
        const v1::Instance& record = *records[i];
        EXPECT_EQ(record.id(), "i-" + std::to_string(i));
        seen[t].push_back(&record);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_TRUE(records[i].parsed());
    for (int t = 0; t < kThreads; ++t) {
      const int k = t % 2 == 0 ? i : kRecords - 1 - i;
      EXPECT_EQ(seen[t][k], &*records[i]) << "thread " << t << " record " << i;
    }
  }
}

}  // namespace
}  // namespace nvlsched::daemon
