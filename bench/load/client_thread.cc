#include "bench/load/client_thread.h"

#include <optional>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/load/requests.h"

namespace nvlsched::load {

namespace v1 = ::nvlsched::v1;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {

// Codes after which the client cannot tell whether the daemon applied the call.
bool OutcomeUnknown(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool RunBudget::TakeOne() {
  if (LoadClock::now() >= end) return false;
  return issued.fetch_add(1, std::memory_order_relaxed) < max_calls;
}

// One in-flight call and the messages it reuses. The readers live in the call's arena, which
// the context owns: ReleaseCall() drops them before the context, as the members' order does.
struct ClientThread::Slot {
  OpKind kind = OpKind::kHealthCheck;
  bool cleanup = false;
  LoadClock::time_point started;
  // The open loop: the call's intended send time, from which its latency runs.
  std::optional<LoadClock::time_point> intended;
  grpc::Status status;

  v1::BatchCreateInstancesRequest batch_create;
  v1::BatchCreateInstancesResponse batch_created;
  v1::CreateInstanceRequest single_create;
  v1::Instance single_created;
  v1::BatchDeleteInstancesRequest batch_delete;
  v1::BatchDeleteInstancesResponse batch_deleted;
  v1::DeleteInstanceRequest single_delete;
  v1::DeleteInstanceResponse single_deleted;
  HealthCheckRequest health_check;
  HealthCheckResponse health;

  std::optional<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::BatchCreateInstancesResponse>>
      batch_create_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::Instance>> single_create_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::BatchDeleteInstancesResponse>>
      batch_delete_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::DeleteInstanceResponse>>
      single_delete_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<HealthCheckResponse>> health_reader;

  void ReleaseCall() {
    batch_create_reader.reset();
    single_create_reader.reset();
    batch_delete_reader.reset();
    single_delete_reader.reset();
    health_reader.reset();
    context.reset();
  }
  ~Slot() { ReleaseCall(); }
};

ClientThread::ClientThread(const LoadOptions& options, RunBudget* budget,
                           const std::shared_ptr<grpc::Channel>& channel, int slots,
                           int hold_batches, int hold_singles, uint64_t seed,
                           std::string single_name_prefix, int thread_index,
                           int thread_count)
    : options_(options),
      budget_(budget),
      hold_batches_(hold_batches),
      hold_singles_(hold_singles),
      single_name_prefix_(std::move(single_name_prefix)),
      thread_index_(thread_index),
      thread_count_(thread_count),
      instances_(v1::InstanceService::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)),
      random_(seed) {
  const v1::BatchCreateInstancesRequest batch_template = BatchCreateTemplate(options);
  const v1::CreateInstanceRequest single_template = SingleCreateTemplate(options);
  slots_.reserve(slots);
  idle_.reserve(slots);
  for (int i = 0; i < slots; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->batch_create = batch_template;
    slot->single_create = single_template;
    slot->batch_delete.set_org(options.org);
    slot->single_delete.set_org(options.org);
    slots_.push_back(std::move(slot));
  }
  result_.workload = options.workload;
  result_.open_loop.target_per_s = options.rate;
}

ClientThread::~ClientThread() = default;

void ClientThread::Run() {
  for (const std::unique_ptr<Slot>& slot : slots_) idle_.push_back(slot.get());
  last_measured_ = budget_->start;
  if (options_.rate > 0) {
    schedule_.emplace(options_.rate, thread_index_, thread_count_, budget_->max_calls,
                      budget_->start, budget_->end);
  }
  Dispatch();
  void* tag = nullptr;
  while (Wait(&tag)) {
    if (tag != nullptr) {
      Slot* slot = static_cast<Slot*>(tag);
      const bool cap_reached = idle_.empty();
      Complete(slot);
      idle_.push_back(slot);
      if (cap_reached && schedule_.has_value()) schedule_->SlotFreedAfterCap(LoadClock::now());
    }
    Dispatch();
  }
  if (schedule_.has_value()) {
    result_.open_loop.scheduled = schedule_->scheduled();
    result_.open_loop.issued = schedule_->issued();
    result_.open_loop.late = schedule_->late();
    result_.open_loop.skipped = schedule_->skipped();
  }
  result_.elapsed = absl::FromChrono(last_measured_ - budget_->start);
  result_.instances_left += static_cast<int64_t>(held_singles_.size());
  for (const std::vector<std::string>& batch : held_batches_) {
    result_.instances_left += static_cast<int64_t>(batch.size());
  }
}

bool ClientThread::Wait(void** tag) {
  bool ok = false;
  std::optional<LoadClock::time_point> wake;
  if (schedule_.has_value() && !stopping_ && !idle_.empty()) wake = schedule_->Next();
  if (!wake.has_value()) return cq_.Next(tag, &ok);
  // gRPC deadlines are wall-clock time points; the schedule is on the steady clock.
  const auto deadline = std::chrono::system_clock::now() + (*wake - LoadClock::now());
  switch (cq_.AsyncNext(tag, &ok, deadline)) {
    case grpc::CompletionQueue::GOT_EVENT:
      return true;
    case grpc::CompletionQueue::TIMEOUT:
      *tag = nullptr;
      return true;
    case grpc::CompletionQueue::SHUTDOWN:
      break;
  }
  return false;
}

void ClientThread::Dispatch() {
  if (schedule_.has_value()) {
    DispatchPaced();
  } else {
    while (!idle_.empty() && IssueNext(idle_.back())) idle_.pop_back();
  }
  // Nothing in flight and nothing left to issue: let cq_.Next() return false. (The closed loop
  // leaves a slot idle only once stopping; the open loop idles between intended send times.)
  if (stopping_ && idle_.size() == slots_.size() && !shut_down_) {
    shut_down_ = true;
    cq_.Shutdown();
  }
}

void ClientThread::DispatchPaced() {
  if (!stopping_) {
    const LoadClock::time_point now = LoadClock::now();
    while (!idle_.empty()) {
      std::optional<SendSchedule::Call> call = schedule_->TakeDue(now);
      if (!call.has_value()) break;
      Slot* slot = idle_.back();
      idle_.pop_back();
      slot->intended = call->intended;
      IssueMeasured(slot);
    }
    // Every call left is intended before the end: past it, they are due and found no slot.
    if (!schedule_->Next().has_value() || now >= budget_->end) {
      schedule_->SkipRest();
      stopping_ = true;
    }
  }
  if (stopping_) {
    while (!idle_.empty() && options_.cleanup && IssueCleanup(idle_.back())) idle_.pop_back();
  }
}

bool ClientThread::IssueNext(Slot* slot) {
  if (!stopping_ && !budget_->TakeOne()) stopping_ = true;
  if (stopping_) return options_.cleanup && IssueCleanup(slot);
  slot->intended.reset();
  IssueMeasured(slot);
  return true;
}

void ClientThread::IssueMeasured(Slot* slot) {
  if (options_.workload == Workload::kNoop) {
    StartHealthCheck(slot);
  } else if (static_cast<int>(held_batches_.size()) > hold_batches_) {
    StartBatchDelete(slot, /*cleanup=*/false);
  } else if (static_cast<int>(held_singles_.size()) > hold_singles_) {
    StartSingleDelete(slot, /*cleanup=*/false);
  } else {
    IssueCreate(slot);
  }
}

bool ClientThread::IssueCleanup(Slot* slot) {
  slot->intended.reset();
  if (!held_batches_.empty()) {
    StartBatchDelete(slot, /*cleanup=*/true);
  } else if (!held_singles_.empty()) {
    StartSingleDelete(slot, /*cleanup=*/true);
  } else {
    return false;
  }
  return true;
}

void ClientThread::IssueCreate(Slot* slot) {
  bool single = options_.workload == Workload::kSingle;
  if (options_.workload == Workload::kMixed) {
    single = absl::Bernoulli(random_, options_.single_fraction);
  }
  if (single) {
    StartSingleCreate(slot);
  } else {
    StartBatchCreate(slot);
  }
}

void ClientThread::PrepareCall(Slot* slot, OpKind kind, bool cleanup) {
  slot->ReleaseCall();
  slot->kind = kind;
  slot->cleanup = cleanup;
  slot->context.emplace();
  slot->started = LoadClock::now();
  // gRPC deadlines are wall-clock time points; latency is measured on the steady clock.
  slot->context->set_deadline(std::chrono::system_clock::now() +
                              absl::ToChronoNanoseconds(options_.call_timeout));
  if (!options_.token.empty()) {
    slot->context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

void ClientThread::StartBatchCreate(Slot* slot) {
  slot->batch_create.set_count(absl::Uniform<int>(absl::IntervalClosed, random_,
                                                  options_.min_count, options_.max_count));
  PrepareCall(slot, OpKind::kBatchCreate, /*cleanup=*/false);
  slot->batch_create_reader =
      instances_->PrepareAsyncBatchCreateInstances(&*slot->context, slot->batch_create, &cq_);
  slot->batch_create_reader->StartCall();
  slot->batch_create_reader->Finish(&slot->batch_created, &slot->status, slot);
}

void ClientThread::StartSingleCreate(Slot* slot) {
  slot->single_create.set_gpu_count(absl::Uniform<int>(absl::IntervalClosed, random_,
                                                       options_.min_gpus, options_.max_gpus));
  slot->single_create.set_name(absl::StrCat(single_name_prefix_, ++singles_named_));
  PrepareCall(slot, OpKind::kSingleCreate, /*cleanup=*/false);
  slot->single_create_reader =
      instances_->PrepareAsyncCreateInstance(&*slot->context, slot->single_create, &cq_);
  slot->single_create_reader->StartCall();
  slot->single_create_reader->Finish(&slot->single_created, &slot->status, slot);
}

void ClientThread::StartBatchDelete(Slot* slot, bool cleanup) {
  std::vector<std::string> ids = std::move(held_batches_.front());
  held_batches_.pop_front();
  slot->batch_delete.clear_ids();
  for (std::string& id : ids) slot->batch_delete.add_ids(std::move(id));
  PrepareCall(slot, OpKind::kBatchDelete, cleanup);
  slot->batch_delete_reader =
      instances_->PrepareAsyncBatchDeleteInstances(&*slot->context, slot->batch_delete, &cq_);
  slot->batch_delete_reader->StartCall();
  slot->batch_delete_reader->Finish(&slot->batch_deleted, &slot->status, slot);
}

void ClientThread::StartSingleDelete(Slot* slot, bool cleanup) {
  slot->single_delete.set_id(std::move(held_singles_.front()));
  held_singles_.pop_front();
  PrepareCall(slot, OpKind::kSingleDelete, cleanup);
  slot->single_delete_reader =
      instances_->PrepareAsyncDeleteInstance(&*slot->context, slot->single_delete, &cq_);
  slot->single_delete_reader->StartCall();
  slot->single_delete_reader->Finish(&slot->single_deleted, &slot->status, slot);
}

void ClientThread::StartHealthCheck(Slot* slot) {
  PrepareCall(slot, OpKind::kHealthCheck, /*cleanup=*/false);
  slot->health_reader = health_->PrepareAsyncCheck(&*slot->context, slot->health_check, &cq_);
  slot->health_reader->StartCall();
  slot->health_reader->Finish(&slot->health, &slot->status, slot);
}

void ClientThread::Complete(Slot* slot) {
  const LoadClock::time_point now = LoadClock::now();
  const bool ok = slot->status.ok();
  if (slot->cleanup) {
    ++result_.cleanup_calls;
    if (!ok) ++result_.cleanup_errors;
  } else {
    OpStats& stats = result_.op(slot->kind);
    stats.latency_ns.Record(
        std::chrono::nanoseconds(now - slot->intended.value_or(slot->started)).count());
    if (slot->intended.has_value()) {
      result_.open_loop.service_ns.Record(std::chrono::nanoseconds(now - slot->started).count());
    }
    const int code = static_cast<int>(slot->status.error_code());
    ++stats.codes[code >= 0 && code < kStatusCodeCount ? code : 2 /* UNKNOWN */];
    if (slot->status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      switch (ClassifyRefusal(slot->status)) {
        case Refusal::kCapacity:
          ++stats.refused_capacity;
          break;
        case Refusal::kQuota:
          ++stats.refused_quota;
          break;
        case Refusal::kOther:
          break;
      }
    }
    last_measured_ = now;
  }

  const bool is_create = slot->kind == OpKind::kBatchCreate || slot->kind == OpKind::kSingleCreate;
  if (is_create && OutcomeUnknown(slot->status.error_code())) ++result_.creates_outcome_unknown;

  switch (slot->kind) {
    case OpKind::kBatchCreate:
      if (ok) {
        ++result_.tally.batches_created;
        result_.tally.batch_instances_created += slot->batch_created.instances_size();
        std::vector<std::string> ids;
        ids.reserve(slot->batch_created.instances_size());
        for (const v1::Instance& instance : slot->batch_created.instances()) {
          ids.push_back(instance.id());
        }
        held_batches_.push_back(std::move(ids));
      }
      break;
    case OpKind::kSingleCreate:
      if (ok) {
        ++result_.tally.singles_created;
        held_singles_.push_back(slot->single_created.id());
      }
      break;
    case OpKind::kBatchDelete:
      CompleteDelete(*slot, slot->batch_delete.ids_size(), /*is_batch=*/true);
      break;
    case OpKind::kSingleDelete:
      CompleteDelete(*slot, 1, /*is_batch=*/false);
      break;
    case OpKind::kHealthCheck:
      break;
  }
}

void ClientThread::CompleteDelete(const Slot& slot, int64_t instances, bool is_batch) {
  if (!slot.status.ok()) {
    // Whether a timed-out delete took effect is unknown: count the instances as left behind.
    result_.instances_left += instances;
    return;
  }
  Tally& tally = slot.cleanup ? result_.cleanup : result_.tally;
  if (is_batch) {
    ++tally.batches_deleted;
    tally.batch_instances_deleted += instances;
  } else {
    ++tally.singles_deleted;
  }
}

}  // namespace nvlsched::load
