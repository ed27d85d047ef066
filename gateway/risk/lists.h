#pragma once

// Lists for `x in @list` (issue 5 §4): typed items with optional expiry, held in immutable
// snapshots that are swapped whole, independently of rulesets (a list edit never needs a
// recompile). Lookups are allocation-free: exact items are a sorted array of 64-bit keys; IPs are
// CIDR blocks grouped by prefix length; BINs are ranges. Persisting lists and auditing each change
// is the caller's job (the lead's PostgreSQL store and API); this is the in-memory form they build.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"
#include "gateway/risk/value.h"

namespace paygate::risk {

class TypedList {
 public:
  const std::string& name() const { return name_; }
  ListKind kind() const { return kind_; }
  std::size_t size() const;

  // True if `v` (of the list's value type) matches an item that has not expired at `now_s`. An item
  // with expiry T matches while now_s < T.
  bool Contains(const Value& v, std::int64_t now_s) const;

 private:
  friend class ListSetBuilder;
  struct Exact {
    std::int64_t key;
    std::int64_t expires_s;  // 0: never
  };
  struct IpBlock {
    Ip128 network;
    std::int64_t expires_s;
  };
  struct IpGroup {
    int prefix_bits;
    std::vector<IpBlock> blocks;  // sorted by network
  };
  struct BinRange {
    std::int64_t lo;
    std::int64_t hi;
    std::int64_t expires_s;
    std::int64_t max_hi;  // max of hi over this and every earlier range (ranges sorted by lo)
  };

  std::string name_;
  ListKind kind_ = ListKind::kString;
  std::vector<Exact> exact_;  // sorted by key, one entry per key (the latest expiry)
  std::vector<IpGroup> ip_groups_;
  std::vector<BinRange> bins_;
};

// An immutable set of lists with a version the caller chooses (e.g. the database revision),
// recorded in every decision.
class ListSet {
 public:
  // Null when no list of that name exists; a ruleset treats an absent list as empty.
  const TypedList* Find(std::string_view name) const;
  std::uint64_t version() const { return version_; }
  std::size_t list_count() const { return lists_.size(); }

 private:
  friend class ListSetBuilder;
  std::vector<TypedList> lists_;  // sorted by name
  std::uint64_t version_ = 0;
};

class ListSetBuilder {
 public:
  explicit ListSetBuilder(std::uint64_t version) : version_(version) {}

  // Adds an item to list `name` of `kind` (a list's kind is fixed by its first item). Item forms:
  // account_hash, device_id, id_number, name, string: the text as the gateway supplies it (exact);
  // country: "CN"; ip: "203.0.113.7", "203.0.113.0/24", "2001:db8::/32";
  // bin: "411111" (6-8 digits, all cards in it) or "41111100-41111199" (inclusive range).
  // `expires_s` 0 means never. Errors name the list and the item.
  Result<void, std::string> Add(std::string_view name, ListKind kind, std::string_view item,
                                std::int64_t expires_s = 0);
  // Declares an empty list (so it exists with its kind).
  Result<void, std::string> Declare(std::string_view name, ListKind kind);

  std::shared_ptr<const ListSet> Build() &&;

 private:
  TypedList& ListFor(std::string_view name, ListKind kind, std::string* error);

  std::uint64_t version_;
  std::vector<TypedList> lists_;
};

// The live list snapshot, swapped atomically; readers pin one snapshot per decision.
class ListHolder {
 public:
  ListHolder();
  std::shared_ptr<const ListSet> Current() const {
    return current_.load(std::memory_order_acquire);
  }
  void Swap(std::shared_ptr<const ListSet> next) {
    current_.store(std::move(next), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const ListSet>> current_;
};

}  // namespace paygate::risk
