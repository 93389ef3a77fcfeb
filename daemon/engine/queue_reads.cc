#include "daemon/engine/queue_reads.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/api/convert.h"
#include "daemon/api/page_tokens.h"

namespace nvlsched::daemon {
namespace {

constexpr int kDefaultPageSize = 100;

}  // namespace

std::string EncodeQueueToken(const allocator::QueueKey& key) {
  return EncodePageToken(absl::StrCat("q", key.neg_priority, "/", key.sequence));
}

std::optional<allocator::QueueKey> DecodeQueueToken(const std::string& token) {
  std::optional<std::string> text = DecodePageToken(token);
  if (!text.has_value() || text->empty() || (*text)[0] != 'q') return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(text->substr(1), '/');
  allocator::QueueKey key;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &key.neg_priority) ||
      !absl::SimpleAtoi(parts[1], &key.sequence)) {
    return std::nullopt;
  }
  return key;
}

absl::Status ListQueue(const State& state, const QueueQuery& query, absl::Time now,
                       v1::ListQueueResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  const int page_size = query.page_size > 0 ? query.page_size : kDefaultPageSize;
  int64_t position = 0;
  int32_t total = 0;
  allocator::QueueKey last_listed;
  state.queue().ForEach([&](const allocator::QueuedRequest& request) {
    ++position;
    const allocator::QueueKey key = allocator::QueueKey::Of(request);
    const std::string& tenant_id =
        request.is_batch ? request.batch.tenant_id : request.single.tenant_id;
    if (!query.tenant_id.empty() && tenant_id != query.tenant_id) return;
    if (!query.org.empty()) {
      const allocator::Tenant* tenant = alloc.FindTenant(tenant_id);
      if (tenant == nullptr || tenant->org != query.org) return;
    }
    ++total;
    if (query.after.has_value() && !(*query.after < key)) return;
    if (resp->entries_size() >= page_size) {
      if (resp->next_page_token().empty()) resp->set_next_page_token(EncodeQueueToken(last_listed));
      return;
    }
    last_listed = key;
    v1::QueueEntry* entry = resp->add_entries();
    entry->set_position(position);
    entry->set_tenant_id(tenant_id);
    entry->set_priority(request.priority);
    *entry->mutable_waited() =
        ToDurationProto(now - absl::FromUnixMicros(request.queued_micros));
    *entry->mutable_deadline() = ToTimestamp(absl::FromUnixMicros(request.deadline_micros));
    if (request.is_batch) {
      entry->set_instance_type_id(request.batch.instance_type_id);
      entry->set_count(request.batch.count);
      entry->set_topology_optimized(request.batch.topology_optimized);
    } else {
      entry->set_instance_type_id(request.single.instance_type_id);
      entry->set_count(1);
      entry->set_gpu_count(request.single.gpu_count);
      entry->set_topology_optimized(true);
    }
    if (const std::vector<std::string>* ids = state.QueuedIds(request.sequence)) {
      for (const std::string& id : *ids) entry->add_instance_ids(id);
      if (request.is_batch && !ids->empty()) {
        const State::InstanceEntry* first = state.FindInstance(ids->front());
        if (first != nullptr) entry->set_batch_id(first->record->batch_id());
      }
    }
    for (const allocator::Reservation& r : state.queue().reservations()) {
      if (r.sequence != request.sequence) continue;
      for (allocator::DomainIndex d : r.domains) {
        entry->add_reserved_domain_ids(alloc.DomainAt(d).id);
      }
    }
  });
  resp->set_total_size(total);
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
