// Random identifiers the daemon mints: UUIDv4 ids and the 6-character name suffixes of the
// batch-create API. Randomness stays out of the allocator; it lives here.
//
// Thread-safety: pure functions of the generator passed in.
#ifndef NVLSCHED_DAEMON_ENGINE_IDS_H_
#define NVLSCHED_DAEMON_ENGINE_IDS_H_

#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace nvlsched::daemon {

// A random (version 4, variant 1) UUID in lowercase 8-4-4-4-12 form.
std::string NewUuid(absl::BitGenRef gen);

// A time-ordered (version 7, RFC 9562) UUID: the Unix time of `now` in milliseconds in the
// first 48 bits, then random bits. Ids minted later sort after earlier ones (within one
// millisecond, in random order), so instance and batch ids land at the end of the store's
// B-tree indexes instead of on a random page each: a commit dirties a few pages however large
// the table grows (issue 20), and ids list in creation order to the millisecond. `now` before
// 1970 counts as 0.
std::string NewTimeOrderedUuid(absl::Time now, absl::BitGenRef gen);

// `n` random characters from [a-z0-9] ("worker" + "-" + this = an instance name).
std::string RandomNameSuffix(absl::BitGenRef gen, int n = 6);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_IDS_H_
