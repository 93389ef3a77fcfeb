// EventHub: delivers committed events to the watchers of EventService/WatchEvents.
//
// The engine publishes each group's events after the group's commit (Publish, on the engine
// thread: it appends to a bounded in-memory window and signals, nothing more). One delivery
// thread of the hub moves every watcher forward: from the window when the watcher's next event
// is still in it, else from the store a page at a time (a watcher resuming from an old
// sequence catches up at its own pace). A watcher has at most one write in flight; a slow or
// stuck watcher never delays a write or another watcher.
//
// A watcher that has caught up once ("live") and then falls more than `watch_buffer` events
// behind is ended with RESOURCE_EXHAUSTED naming the sequence to resume from. Memory is bounded
// whatever the clients do: the shared window, and per watcher one event in flight plus, while
// it catches up from the store, one page (`store_page` events) read ahead.
//
// Thread-safety: every method is thread-safe. Publish runs on the engine thread; Add,
// WriteDone and Remove on gRPC threads; sinks are called on the delivery thread only.
#ifndef NVLSCHED_DAEMON_SERVICES_EVENT_HUB_H_
#define NVLSCHED_DAEMON_SERVICES_EVENT_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/engine/encoded_event.h"
#include "store/rows.h"
#include "store/sync.h"

namespace nvlsched::daemon {

// Where a watcher's events go: implemented by the WatchEvents reactor.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Starts writing `event` (its bytes as they are); the sink calls EventHub::WriteDone when
  // the write completes.
  virtual void Send(std::shared_ptr<const EncodedEvent> event) = 0;
  // Ends the stream with `status`. No Send follows.
  virtual void End(const absl::Status& status) = 0;
};

// Which events a watcher wants.
struct EventFilter {
  std::string org;        // "" = every org (provider roles only)
  std::string tenant_id;  // "" = every tenant
  absl::flat_hash_set<int> types;  // empty = every type

  bool Matches(const EncodedEvent& event) const;
};

struct EventHubOptions {
  // Events a live watcher may fall behind before it is ended; also the in-memory window.
  size_t watch_buffer = 10000;
  // Events read from the store at a time for a catching-up watcher.
  size_t store_page = 512;
};

// Counters for metrics.
struct EventHubStats {
  int64_t watchers = 0;
  int64_t events_sent = 0;
  int64_t ended_for_lag = 0;
};

class EventHub {
 public:
  // Committed events after `after_sequence`, at most `limit`, in sequence order.
  using StoreReader =
      std::function<absl::StatusOr<std::vector<store::EventRow>>(uint64_t after_sequence,
                                                                 size_t limit)>;

  // Called with the counters after a watcher comes or goes and after each delivery pass
  // (metrics); any thread, never under the hub's lock.
  using StatsObserver = std::function<void(const EventHubStats&)>;

  // `oldest` and `newest`: the retained events at start-up (0, 0 when there are none).
  EventHub(StoreReader reader, uint64_t oldest, uint64_t newest, EventHubOptions options,
           StatsObserver observer = nullptr);
  ~EventHub();  // Stop()s.
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Ends every watcher with UNAVAILABLE and joins the delivery thread.
  void Stop();

  // After a group's commit: its events, in sequence order (the first follows the last one
  // published), and the oldest sequence the store still holds.
  void Publish(std::vector<std::shared_ptr<const EncodedEvent>> events, uint64_t oldest);

  // Registers a watcher that has seen everything up to `after_sequence` (0: nothing; it starts
  // at the oldest retained event). OUT_OF_RANGE when events after it were pruned, or when it is
  // beyond the newest event; UNAVAILABLE when stopped. `sink` must stay valid until Remove;
  // it names the watcher.
  // `from_now`: start after the newest event instead (after_sequence is then ignored).
  absl::Status Add(EventSink* sink, EventFilter filter, uint64_t after_sequence,
                   bool from_now = false);
  // The sink's write finished (any thread).
  void WriteDone(const EventSink* sink);
  // The stream is done: the hub forgets the watcher and never calls its sink again. No-op
  // for a sink that is not registered.
  void Remove(const EventSink* sink);

  EventHubStats Stats() const;
  uint64_t newest() const;

 private:
  struct Watcher {
    EventFilter filter;
    // Delivery thread only (and Add before it is shared).
    uint64_t cursor = 0;  // the last sequence handled (sent or filtered out)
    bool live = false;    // has caught up with the newest event once
    std::deque<std::shared_ptr<const EncodedEvent>> page;  // read ahead from the store
    std::atomic<bool> busy{false};   // a write is in flight
    std::atomic<bool> ended{false};
    Mutex sink_mu;
    EventSink* sink ABSL_GUARDED_BY(sink_mu) = nullptr;  // null once removed
  };

  void Run();
  // Moves one watcher forward: sends its next matching event, ends it, or finds it caught up.
  void Step(const std::shared_ptr<Watcher>& watcher);
  // The event after `cursor` in the window, or null when the window no longer (or not yet)
  // holds it.
  std::shared_ptr<const EncodedEvent> FromWindow(uint64_t cursor) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void End(const std::shared_ptr<Watcher>& watcher, const absl::Status& status);

  // Constant after construction.
  const StoreReader reader_;
  const EventHubOptions options_;
  const StatsObserver observer_;

  mutable Mutex mu_;
  CondVar work_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;  // something changed since the last pass
  std::deque<std::shared_ptr<const EncodedEvent>> window_ ABSL_GUARDED_BY(mu_);
  uint64_t oldest_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
  // By sink: the sink's address names its watcher.
  absl::flat_hash_map<const EventSink*, std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> watcher_count_{0};

  std::atomic<int64_t> events_sent_{0};
  std::atomic<int64_t> ended_for_lag_{0};
  std::thread thread_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_EVENT_HUB_H_
