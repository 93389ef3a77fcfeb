// InstanceView: the committed instance records, read by ListInstances on gRPC threads while
// the engine goes on writing (issue 20: reads off the writer).
//
// The engine publishes into the view after each successful commit (Publish: the records the
// group changed, found through State's change record) and before it answers the group's
// writes, so the view never shows a state that could still be rolled back, and a client that
// has its write's answer finds the write here. Records are shared, not copied: State keeps
// each record as a RecordPtr (record_ptr.h) and replaces it on change (state.h), so the
// view holds the very records State committed, and a reader keeps a record alive however the
// engine moves on.
//
// Locking: a writer-preferring readers-writer lock (store/sync.h SharedMutex). Readers hold it
// shared while they walk the records and collect at most one page of pointers; the engine
// holds it exclusively only to swap the changed pointers in (O(changes · log n)). Answers are
// written in their wire form after the lock is released. A waiting engine blocks new
// readers, so it waits for at most the readers already walking.
//
// A walk is short for the usual query (org, and perhaps a tenant): each entry carries its
// tenant's slot, the view counts each tenant's records as it publishes them, so total_size is
// a sum over the tenants and the walk starts at the page token and stops at the first match
// after the page. It used to walk every record for the count, reading each record's tenant
// through two pointers and hashing it: 0.9-1.9 pages of 500 a second among 500,000 instances
// (one reader, measured while a build ran), with the engine's next Publish waiting behind it.
// A batch_id or label filter still walks every record (those fields are in the records only),
// but reads the tenant from the entry.
//
// Thread-safety: thread-safe. Publish/PublishAll on the engine thread only (they read State).
#ifndef NVLSCHED_DAEMON_ENGINE_INSTANCE_VIEW_H_
#define NVLSCHED_DAEMON_ENGINE_INSTANCE_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "daemon/engine/requests.h"
#include "daemon/engine/state.h"
#include "nvlsched/v1/instance_service.pb.h"
#include "store/sync.h"

namespace nvlsched::daemon {

class InstanceView {
 public:
  InstanceView() = default;
  InstanceView(const InstanceView&) = delete;
  InstanceView& operator=(const InstanceView&) = delete;

  // Engine thread: replaces the view with everything `state` holds (at start). Cost: O(n),
  // records shared.
  void PublishAll(const State& state) ABSL_LOCKS_EXCLUDED(mu_);
  // Engine thread, after a successful commit and before its answers: the instance records and
  // tenants (their org) changed since `mark`, as State now has them.
  void Publish(const State& state, const State::JournalMark& mark) ABSL_LOCKS_EXCLUDED(mu_);

  // ListInstances (instance_ops.h has the engine's version it replaces; same answers): the
  // org's instances matching the filters, in id order, from the one after req.after, at most
  // the page size; total_size counts every match. Any thread.
  // *wire = the answer, a serialized nvlsched.v1.ListInstancesResponse (what the service
  // sends as it is). Cost under the shared lock: O(tenants + log n + the entries from the
  // token to the first match after the page) for org and tenant filters; O(n) with a batch_id
  // or label filter (on fields no record parses for). Then, outside it, each answered record
  // appended in its wire form: a loaded record's stored bytes copied, a built record
  // serialized (RecordPtr::AppendAsField). No record is copied into a message.
  absl::Status List(const InstanceQuery& req, std::string* wire) const ABSL_LOCKS_EXCLUDED(mu_);
  // The same answer as a message, parsed from the wire form: for in-process readers (the view's
  // tests, the start-up load test, the ListInstances fuzzer), which then check the wire form too.
  absl::Status List(const InstanceQuery& req, v1::ListInstancesResponse* resp) const
      ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A tenant the view has seen, by slot (slots are never reused).
  struct Tenant {
    std::string id;
    std::optional<std::string> org;  // unset: not a tenant of the fleet (now), so in no org
    int64_t records = 0;             // entries of instances_ in this slot
  };
  struct Entry {
    RecordPtr record;
    uint32_t tenant = 0;  // slot in tenants_ of record's tenant_id
  };

  // The slot of `tenant_id`, made (in no org) if new.
  uint32_t SlotOf(absl::string_view tenant_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds, replaces (record != nullptr) or erases the entry of `id`; the replaced record, if
  // any, goes to *released (freed after the lock).
  void Put(absl::string_view id, RecordPtr record, std::vector<RecordPtr>* released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable SharedMutex mu_;
  absl::btree_map<std::string, Entry> instances_ ABSL_GUARDED_BY(mu_);
  std::vector<Tenant> tenants_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> slot_of_tenant_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_INSTANCE_VIEW_H_
