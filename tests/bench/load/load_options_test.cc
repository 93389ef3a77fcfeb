// ValidateLoadOptions (bench/load/load_options.h): the ranges of the open loop and the readers.
#include "bench/load/load_options.h"

#include <limits>

#include "gtest/gtest.h"

namespace nvlsched::load {
namespace {

void ExpectInvalid(const LoadOptions& options, const char* message) {
  const absl::Status status = ValidateLoadOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(message), absl::string_view::npos) << status;
}

TEST(LoadOptionsTest, DefaultsAreValidAndClosedLoopWithoutReaders) {
  const LoadOptions options;
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  EXPECT_EQ(options.rate, 0);
  EXPECT_EQ(options.readers, 0);
  EXPECT_EQ(options.read_page_size, 500);
}

TEST(LoadOptionsTest, RateMustBeFiniteAndNotNegative) {
  LoadOptions options;
  options.rate = 0.5;
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  options.rate = -1;
  ExpectInvalid(options, "rate must be between 0");
  options.rate = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid(options, "rate must be between 0");
  options.rate = std::numeric_limits<double>::infinity();
  ExpectInvalid(options, "rate must be between 0");
}

TEST(LoadOptionsTest, ReadersAndPageSizeRanges) {
  LoadOptions options;
  options.readers = 8;
  options.read_page_size = 1000;
  EXPECT_TRUE(ValidateLoadOptions(options).ok());
  options.read_page_size = 1001;  // the daemon's largest page is 1000
  ExpectInvalid(options, "read_page_size must be between 1 and 1000");
  options.read_page_size = 0;
  ExpectInvalid(options, "read_page_size must be between 1 and 1000");
  options.read_page_size = 500;
  options.readers = -1;
  ExpectInvalid(options, "readers must be between 0 and 10000");
  options.readers = 1;
  options.workload = Workload::kNoop;
  options.org.clear();
  ExpectInvalid(options, "org is required for readers");
}

}  // namespace
}  // namespace nvlsched::load
