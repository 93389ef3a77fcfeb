// Tests daemon/engine/instance_view.h: the view holds what State committed — all of it after
// PublishAll, and after Publish(mark) exactly the records and tenants changed since the mark
// (added, replaced, erased) — and List answers like the API's ListInstances (org, tenant,
// batch and label filters, id order, pages, total_size). Records are shared: a reader's record
// stays as it was when the engine replaces it. Then the engine publishing while reader threads
// list is instance_view_concurrency_test.cc.
#include "daemon/engine/instance_view.h"

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/api/page_tokens.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Tenants "acme" (org "org") and "other" (org "org-2"); records are made by hand.
class InstanceViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allocator::Allocator& alloc = state_.allocator();
    ASSERT_TRUE(alloc.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}).ok());
    ASSERT_TRUE(alloc.UpsertTenant({"acme", "org", "acme", {{"gb200", 100}}}).ok());
    ASSERT_TRUE(alloc.UpsertTenant({"other", "org-2", "other", {{"gb200", 100}}}).ok());
    state_.ClearJournal();
  }

  // A record with no machine (the view does not care where an instance is).
  void Put(const std::string& id, const std::string& tenant, const std::string& batch = "",
           v1::InstanceStatus status = v1::INSTANCE_STATUS_PENDING) {
    v1::Instance record;
    record.set_id(id);
    record.set_name("name-" + id);
    record.set_tenant_id(tenant);
    record.set_batch_id(batch);
    record.set_status(status);
    (*record.mutable_labels())["team"] = batch.empty() ? "solo" : "gang";
    state_.PutInstance(std::move(record), allocator::InstanceHandle{});
  }

  std::vector<std::string> ListIds(const std::string& org, InstanceQuery query = {}) {
    query.org = org;
    v1::ListInstancesResponse resp;
    EXPECT_TRUE(view_.List(query, &resp).ok());
    std::vector<std::string> ids;
    for (const v1::Instance& i : resp.instances()) ids.push_back(i.id());
    return ids;
  }

  State state_;
  InstanceView view_;
};

TEST_F(InstanceViewTest, PublishAllShowsEveryRecordOfTheOrgInIdOrder) {
  Put("i-3", "acme");
  Put("i-1", "acme");
  Put("i-2", "other");
  EXPECT_THAT(ListIds("org"), IsEmpty());  // nothing published yet
  view_.PublishAll(state_);
  EXPECT_THAT(ListIds("org"), ElementsAre("i-1", "i-3"));
  EXPECT_THAT(ListIds("org-2"), ElementsAre("i-2"));
  EXPECT_THAT(ListIds("nobody"), IsEmpty());
  EXPECT_EQ(view_.size(), 3u);
}

TEST_F(InstanceViewTest, PublishAppliesExactlyTheChangesSinceTheMark) {
  Put("i-1", "acme");
  view_.PublishAll(state_);
  state_.ClearJournal();

  State::JournalMark mark = state_.Mark();
  Put("i-2", "acme");
  Put("i-3", "acme");
  // Not yet published: a change the commit could still undo is never visible.
  EXPECT_THAT(ListIds("org"), ElementsAre("i-1"));
  view_.Publish(state_, mark);
  EXPECT_THAT(ListIds("org"), ElementsAre("i-1", "i-2", "i-3"));
  state_.ClearJournal();

  // A reader's record stays as it was when the record is replaced and then erased.
  InstanceQuery one;
  one.org = "org";
  one.page_size = 1;
  v1::ListInstancesResponse before;
  ASSERT_TRUE(view_.List(one, &before).ok());
  ASSERT_EQ(before.instances(0).status(), v1::INSTANCE_STATUS_PENDING);

  mark = state_.Mark();
  Put("i-1", "acme", "", v1::INSTANCE_STATUS_READY);  // replaced
  state_.EraseInstance("i-2");                        // erased
  Put("i-3", "acme", "", v1::INSTANCE_STATUS_READY);
  state_.EraseInstance("i-3");                        // changed, then erased in one group
  view_.Publish(state_, mark);
  EXPECT_THAT(ListIds("org"), ElementsAre("i-1"));
  v1::ListInstancesResponse after;
  ASSERT_TRUE(view_.List(one, &after).ok());
  EXPECT_EQ(after.instances(0).status(), v1::INSTANCE_STATUS_READY);
  EXPECT_EQ(before.instances(0).status(), v1::INSTANCE_STATUS_PENDING);
  EXPECT_EQ(view_.size(), 1u);
}

TEST_F(InstanceViewTest, ATenantMovedToAnotherOrgIsListedThere) {
  Put("i-1", "acme");
  view_.PublishAll(state_);
  state_.ClearJournal();
  const State::JournalMark mark = state_.Mark();
  ASSERT_TRUE(state_.UpsertTenant({"acme", "org-3", "acme", {{"gb200", 100}}}).ok());
  view_.Publish(state_, mark);
  EXPECT_THAT(ListIds("org"), IsEmpty());
  EXPECT_THAT(ListIds("org-3"), ElementsAre("i-1"));
}

TEST_F(InstanceViewTest, FiltersPagesAndTotalLikeListInstances) {
  for (int i = 0; i < 5; ++i) Put(absl::StrCat("g-", i), "acme", "batch-1");
  Put("s-0", "acme");
  Put("t-0", "other", "batch-1");
  view_.PublishAll(state_);

  InstanceQuery batch;
  batch.batch_id = "batch-1";
  EXPECT_THAT(ListIds("org", batch), ElementsAre("g-0", "g-1", "g-2", "g-3", "g-4"));
  InstanceQuery labels;
  labels.labels = {{"team", "solo"}};
  EXPECT_THAT(ListIds("org", labels), ElementsAre("s-0"));
  InstanceQuery tenant;
  tenant.tenant_id = "other";
  EXPECT_THAT(ListIds("org", tenant), IsEmpty());  // another org's tenant: invisible

  // Pages of 2: the token names the page's last id; total_size counts every match.
  InstanceQuery page;
  page.org = "org";
  page.page_size = 2;
  std::vector<std::string> walked;
  for (int pages = 0; pages < 10; ++pages) {
    v1::ListInstancesResponse resp;
    ASSERT_TRUE(view_.List(page, &resp).ok());
    EXPECT_EQ(resp.total_size(), 6);
    for (const v1::Instance& i : resp.instances()) walked.push_back(i.id());
    if (resp.next_page_token().empty()) break;
    EXPECT_EQ(resp.instances_size(), 2);
    std::optional<std::string> after = DecodePageToken(resp.next_page_token());
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(*after, resp.instances(1).id());
    page.after = *after;
  }
  EXPECT_THAT(walked, ElementsAre("g-0", "g-1", "g-2", "g-3", "g-4", "s-0"));
}

// The reference: ListInstances' answer computed from State by brute force (every record, the
// tenants' orgs as the allocator has them now).
struct Expected {
  std::vector<std::string> ids;
  std::string next_after;
  int total = 0;
};
Expected BruteForce(const State& state, const InstanceQuery& q) {
  Expected e;
  const size_t page_size = q.page_size > 0 ? static_cast<size_t>(q.page_size) : 100;
  for (const auto& [id, entry] : state.instances()) {
    const v1::Instance& r = *entry.record;
    const allocator::Tenant* t = state.allocator().FindTenant(r.tenant_id());
    if (t == nullptr || t->org != q.org) continue;
    if (!q.tenant_id.empty() && r.tenant_id() != q.tenant_id) continue;
    if (!q.batch_id.empty() && r.batch_id() != q.batch_id) continue;
    bool labels = true;
    for (const auto& [k, v] : q.labels) {
      auto it = r.labels().find(k);
      if (it == r.labels().end() || it->second != v) labels = false;
    }
    if (!labels) continue;
    ++e.total;
    if (!q.after.empty() && id <= q.after) continue;
    if (e.ids.size() < page_size) {
      e.ids.push_back(id);
    } else if (e.next_after.empty()) {
      e.next_after = e.ids.back();
    }
  }
  return e;
}

// Random adds, replacements (another status, batch or label), erasures and tenants moving
// between orgs, published in groups; after each group, random queries (each filter, page
// sizes, tokens at and between ids) answer as the brute force does: the pages, the tokens and
// total_size, which the view keeps per tenant instead of counting.
TEST_F(InstanceViewTest, RandomChangesAndQueriesAnswerAsTheBruteForceDoes) {
  ASSERT_TRUE(state_.allocator().UpsertTenant({"third", "org", "third", {{"gb200", 100}}}).ok());
  state_.ClearJournal();
  view_.PublishAll(state_);
  std::mt19937 rng(20261207);
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> tenants = {"acme", "other", "third"};
  const std::vector<std::string> orgs = {"org", "org-2", "org-3"};
  int queries = 0;
  for (int group = 0; group < 300; ++group) {
    const State::JournalMark mark = state_.Mark();
    for (int change = pick(6); change >= 0; --change) {
      const std::string id = absl::StrCat("i-", 100 + pick(60));
      const int what = pick(10);
      if (what < 6) {
        Put(id, tenants[static_cast<size_t>(pick(3))], pick(2) == 0 ? "" : "batch-1",
            pick(2) == 0 ? v1::INSTANCE_STATUS_PENDING : v1::INSTANCE_STATUS_READY);
      } else if (what < 9) {
        if (state_.FindInstance(id) != nullptr) state_.EraseInstance(id);
      } else {
        const std::string& t = tenants[static_cast<size_t>(pick(3))];
        ASSERT_TRUE(
            state_.UpsertTenant({t, orgs[static_cast<size_t>(pick(3))], t, {{"gb200", 100}}})
                .ok());
      }
    }
    view_.Publish(state_, mark);
    state_.ClearJournal();
    EXPECT_EQ(view_.size(), state_.instances().size());
    for (int q = 0; q < 8; ++q, ++queries) {
      InstanceQuery query;
      query.org = orgs[static_cast<size_t>(pick(3))];
      if (pick(3) == 0) query.tenant_id = tenants[static_cast<size_t>(pick(3))];
      if (pick(4) == 0) query.batch_id = "batch-1";
      if (pick(4) == 0) query.labels = {{"team", pick(2) == 0 ? "solo" : "gang"}};
      query.page_size = pick(4) == 0 ? 0 : 1 + pick(12);
      if (pick(2) == 0) {
        // A token at an id or between two (a record erased since the page was read).
        query.after = absl::StrCat("i-", 100 + pick(60), pick(2) == 0 ? "" : "x");
      }
      const Expected want = BruteForce(state_, query);
      v1::ListInstancesResponse got;
      ASSERT_TRUE(view_.List(query, &got).ok());
      std::vector<std::string> ids;
      for (const v1::Instance& i : got.instances()) ids.push_back(i.id());
      ASSERT_EQ(ids, want.ids) << "group " << group << " org " << query.org << " tenant "
                               << query.tenant_id << " after " << query.after;
      ASSERT_EQ(got.total_size(), want.total) << "group " << group;
      ASSERT_EQ(got.next_page_token(),
                want.next_after.empty() ? "" : EncodePageToken(want.next_after));
    }
  }
  EXPECT_EQ(queries, 2400);
}

}  // namespace
}  // namespace nvlsched::daemon
