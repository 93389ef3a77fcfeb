// Tests ForLog (daemon/services/unary_call.h): client-supplied text in a log line cannot start a
// new line, carry a NUL or a terminal escape, or make a line megabytes long.
#include <string>

#include "daemon/services/unary_call.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ForLogTest, PlainTextIsKept) { EXPECT_EQ(ForLog("acme-org_1.x"), "acme-org_1.x"); }

TEST(ForLogTest, LineBreaksNulAndEscapesAreEscaped) {
  const std::string forged("acme\n2026-12-06T00:00:00Z I forged line\r\x1b[31m\0end", 50);
  const std::string logged = ForLog(forged);
  EXPECT_THAT(logged, Not(HasSubstr("\n")));
  EXPECT_THAT(logged, Not(HasSubstr("\r")));
  EXPECT_THAT(logged, Not(HasSubstr("\x1b")));
  EXPECT_EQ(logged.find('\0'), std::string::npos);
  EXPECT_THAT(logged, HasSubstr("acme\\x0a2026"));
  EXPECT_EQ(ForLog("it's a \"quote\" and a \\ backslash"), "it's a \"quote\" and a \\\\ backslash");
}

TEST(ForLogTest, NonAsciiAndBidiOverridesAreEscaped) {
  // U+202E RIGHT-TO-LEFT OVERRIDE could reorder what an operator reads.
  const std::string logged = ForLog("org\xe2\x80\xae" "gro");
  EXPECT_EQ(logged.find("\xe2\x80\xae"), std::string::npos);
  EXPECT_THAT(logged, HasSubstr("\\xe2\\x80\\xae"));
}

TEST(ForLogTest, LongTextIsCutAndItsSizeNoted) {
  const std::string huge(1 << 20, 'a');
  const std::string logged = ForLog(huge);
  EXPECT_LT(logged.size(), 300u);
  EXPECT_THAT(logged, EndsWith("...(1048576 bytes)"));
}

}  // namespace
}  // namespace nvlsched::daemon
