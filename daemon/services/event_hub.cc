#include "daemon/services/event_hub.h"

#include <pthread.h>
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/api/status_mapping.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon {
namespace {

// Events a watcher may skip (filtered out) in one step before others get their turn.
constexpr int kMaxSkipsPerStep = 4096;

// OUT_OF_RANGE for a resume point whose next event was pruned; ErrorInfo metadata
// oldest_sequence names the oldest retained one.
absl::Status PrunedError(uint64_t after_sequence, uint64_t oldest) {
  absl::Status status = absl::OutOfRangeError(absl::StrCat(
      "events after sequence ", after_sequence, " were pruned (--event_retention); the oldest "
      "retained event is ", oldest, ": re-list the state, then resume with after_sequence ",
      oldest - 1));
  google::rpc::ErrorInfo info;
  info.set_reason("EVENTS_PRUNED");
  info.set_domain(std::string(kErrorDomain));
  (*info.mutable_metadata())["oldest_sequence"] = absl::StrCat(oldest);
  AttachErrorDetail(status, info);
  return status;
}

}  // namespace

bool EventFilter::Matches(const EncodedEvent& event) const {
  if (!org.empty() && event.org != org) return false;
  if (!tenant_id.empty() && event.tenant_id != tenant_id) return false;
  if (!types.empty() && !types.contains(event.type)) return false;
  return true;
}

EventHub::EventHub(StoreReader reader, uint64_t oldest, uint64_t newest, EventHubOptions options,
                   StatsObserver observer)
    : reader_(std::move(reader)), options_(options), observer_(std::move(observer)) {
  {
    MutexLock lock(&mu_);
    oldest_ = oldest;
    newest_ = newest;
  }
  thread_ = std::thread([this] { Run(); });
}

EventHub::~EventHub() { Stop(); }

void EventHub::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    work_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  // The watchers stay registered until their streams are done (Remove), so a reactor that
  // finishes meanwhile clears its sink under sink_mu before it is deleted, and End never calls
  // a deleted sink.
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    MutexLock lock(&mu_);
    for (const auto& [sink, w] : watchers_) watchers.push_back(w);
  }
  for (const std::shared_ptr<Watcher>& w : watchers) {
    End(w, absl::UnavailableError(
               "nvlschedd is shutting down; resume the watch against the new instance"));
  }
}

void EventHub::Publish(std::vector<std::shared_ptr<const EncodedEvent>> events, uint64_t oldest) {
  MutexLock lock(&mu_);
  for (std::shared_ptr<const EncodedEvent>& event : events) {
    newest_ = event->sequence;
    window_.push_back(std::move(event));
  }
  while (window_.size() > options_.watch_buffer) window_.pop_front();
  oldest_ = oldest;
  // With no watcher the thread would find nothing to do: it is not woken once per commit for
  // that (Add wakes it for the first watcher, which then starts from the window as it is).
  if (watchers_.empty()) return;
  pending_ = true;
  work_.Signal();
}

absl::Status EventHub::Add(EventSink* sink, EventFilter filter, uint64_t after_sequence,
                           bool from_now) {
  auto watcher = std::make_shared<Watcher>();
  watcher->filter = std::move(filter);
  {
    MutexLock lock(&watcher->sink_mu);
    watcher->sink = sink;
  }
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      return absl::UnavailableError(
          "nvlschedd is shutting down; retry against the new instance");
    }
    if (from_now) after_sequence = newest_;
    if (after_sequence > newest_) {
      return absl::OutOfRangeError(absl::StrCat(
          "after_sequence ", after_sequence, " is beyond the newest event, ", newest_,
          ": was the database restored from an older snapshot? Re-list and resume with "
          "after_sequence ", newest_));
    }
    // Events up to after_sequence were seen; the next one must still be retained.
    if (after_sequence != 0 && oldest_ > 0 && after_sequence + 1 < oldest_) {
      return PrunedError(after_sequence, oldest_);
    }
    watcher->cursor = after_sequence == 0 && oldest_ > 0 ? oldest_ - 1 : after_sequence;
    watchers_.emplace(sink, watcher);
    watcher_count_.store(static_cast<int64_t>(watchers_.size()), std::memory_order_relaxed);
    pending_ = true;
    work_.Signal();
  }
  if (observer_) observer_(Stats());
  return absl::OkStatus();
}

void EventHub::WriteDone(const EventSink* sink) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(sink);
  if (it != watchers_.end()) it->second->busy.store(false, std::memory_order_release);
  pending_ = true;
  work_.Signal();
}

void EventHub::Remove(const EventSink* sink) {
  std::shared_ptr<Watcher> removed;
  {
    MutexLock lock(&mu_);
    auto it = watchers_.find(sink);
    if (it == watchers_.end()) return;
    removed = std::move(it->second);
    watchers_.erase(it);
    watcher_count_.store(static_cast<int64_t>(watchers_.size()), std::memory_order_relaxed);
  }
  {
    MutexLock lock(&removed->sink_mu);
    removed->sink = nullptr;
  }
  if (observer_) observer_(Stats());
}

EventHubStats EventHub::Stats() const {
  EventHubStats stats;
  stats.watchers = watcher_count_.load(std::memory_order_relaxed);
  stats.events_sent = events_sent_.load(std::memory_order_relaxed);
  stats.ended_for_lag = ended_for_lag_.load(std::memory_order_relaxed);
  return stats;
}

uint64_t EventHub::newest() const {
  MutexLock lock(&mu_);
  return newest_;
}

std::shared_ptr<const EncodedEvent> EventHub::FromWindow(uint64_t cursor) const {
  if (window_.empty()) return nullptr;
  const uint64_t first = window_.front()->sequence;
  if (cursor + 1 < first || cursor >= newest_) return nullptr;
  return window_[cursor + 1 - first];
}

void EventHub::End(const std::shared_ptr<Watcher>& watcher, const absl::Status& status) {
  if (watcher->ended.exchange(true)) return;
  MutexLock lock(&watcher->sink_mu);
  if (watcher->sink != nullptr) watcher->sink->End(status);
}

void EventHub::Run() {
  pthread_setname_np(pthread_self(), "nvl-events");
  std::vector<std::shared_ptr<Watcher>> watchers;
  while (true) {
    watchers.clear();
    {
      MutexLock lock(&mu_);
      while (!pending_ && !stopping_) work_.Wait(&mu_);
      if (stopping_) return;
      pending_ = false;
      for (const auto& [sink, w] : watchers_) watchers.push_back(w);
    }
    for (const std::shared_ptr<Watcher>& w : watchers) Step(w);
    if (observer_) observer_(Stats());  // Stats() takes no lock
  }
}

void EventHub::Step(const std::shared_ptr<Watcher>& w) {
  if (w->ended.load(std::memory_order_acquire)) return;
  for (int skipped = 0; skipped < kMaxSkipsPerStep; ++skipped) {
    std::shared_ptr<const EncodedEvent> next;
    uint64_t newest = 0;
    bool lagging = false;
    {
      MutexLock lock(&mu_);
      newest = newest_;
      if (w->cursor >= newest) {
        w->live = true;
        return;
      }
      lagging = w->live && newest - w->cursor > options_.watch_buffer;
      if (!lagging) {
        if (w->busy.load(std::memory_order_acquire)) return;  // WriteDone brings it back
        next = FromWindow(w->cursor);
      }
    }
    if (lagging) {  // ended outside mu_
      ended_for_lag_.fetch_add(1, std::memory_order_relaxed);
      End(w, absl::ResourceExhaustedError(absl::StrCat(
                 "this watcher fell more than --watch_buffer=", options_.watch_buffer,
                 " events behind (it has seen up to sequence ", w->cursor,
                 ", the newest is ", newest, "); resume from sequence ", w->cursor,
                 " (after_sequence ", w->cursor, ")")));
      return;
    }
    if (next == nullptr) {
      // Not in the window: catch up from the store, a page at a time.
      while (!w->page.empty() && w->page.front()->sequence <= w->cursor) w->page.pop_front();
      if (w->page.empty()) {
        absl::StatusOr<std::vector<store::EventRow>> rows = reader_(w->cursor, options_.store_page);
        if (!rows.ok()) {
          End(w, absl::UnavailableError(absl::StrCat("reading events after sequence ", w->cursor,
                                                     " failed: ", rows.status().message())));
          return;
        }
        for (store::EventRow& row : *rows) {
          w->page.push_back(std::make_shared<const EncodedEvent>(
              EncodedEvent{row.sequence, row.type, std::move(row.org), std::move(row.tenant_id),
                           std::move(row.payload)}));
        }
        if (w->page.empty()) return;  // nothing committed after the cursor yet
        if (w->page.front()->sequence != w->cursor + 1) {
          // Pruned while this watcher was catching up: never skip an event silently.
          End(w, PrunedError(w->cursor, w->page.front()->sequence));
          return;
        }
      }
      next = w->page.front();
      w->page.pop_front();
    }
    w->cursor = next->sequence;
    if (!w->filter.Matches(*next)) continue;
    w->busy.store(true, std::memory_order_release);
    {
      MutexLock lock(&w->sink_mu);
      if (w->sink == nullptr) return;
      events_sent_.fetch_add(1, std::memory_order_relaxed);
      w->sink->Send(std::move(next));
    }
    return;
  }
  // Skipped many filtered-out events: give the others a turn, come back next pass.
  MutexLock lock(&mu_);
  pending_ = true;
}

}  // namespace nvlsched::daemon
