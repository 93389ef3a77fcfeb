// EncodedEvent: one committed event as the engine hands it on — the serialized
// nvlsched.v1.Event (written to the store as it is, and streamed to every watcher as it is:
// nothing re-serializes it per watcher) plus the fields watchers filter on.
//
// Thread-safety: immutable once built; shared between threads through shared_ptr<const>.
#ifndef NVLSCHED_DAEMON_ENGINE_ENCODED_EVENT_H_
#define NVLSCHED_DAEMON_ENGINE_ENCODED_EVENT_H_

#include <cstdint>
#include <string>

namespace nvlsched::daemon {

struct EncodedEvent {
  uint64_t sequence = 0;
  int32_t type = 0;  // nvlsched.v1.EventType
  std::string org;
  std::string tenant_id;
  std::string bytes;  // the serialized nvlsched.v1.Event
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_ENCODED_EVENT_H_
