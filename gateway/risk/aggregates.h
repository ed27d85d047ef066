#pragma once

// In-memory aggregate state for a ruleset's declared aggregates (issue 5 §3, RED-FLAGS.md §6.3).
//
// Feeding. Aggregates are fed AFTER a decision: the caller evaluates, then calls Observe(event)
// with the same event. A decision therefore reads the state before its own event counts (Radar's
// semantics: "counts exclude the current payment"). Every event is counted whatever the outcome: a
// blocked card test still counts towards the next attempt's velocity. Observe depends only on the
// event (its type, attributes and time), never on the wall clock, so replaying stored events in
// their original order rebuilds exactly the same state: this is how the state survives a restart
// and how several daemon instances converge (each replays the events the others stored). An event
// is fed to an aggregate when its type is one of the aggregate's `on` events, its `by` key (and
// `of` value) is present, and its `where` filter is true (a filter that is unknown because of a
// missing value does not count).
//
// Window semantics (count, sum, count_distinct over W). Time is cut into buckets of width B: 5
// minutes for W <= 2h, 1 hour for W <= 8d, 1 day above; W is a whole number of buckets, N = W / B.
// An event at time t falls into bucket floor(t / B). A read at time T (the deciding event's time)
// covers buckets floor(T / B) - N .. floor(T / B), i.e. every event in [T - W, T] plus the older
// part of the oldest bucket: at least W and less than W + B of history (Stripe Radar documents the
// same "window plus up to one bucket"). Events later than T in the current bucket also count (only
// possible when replaying out of order). Sums add only amounts in the aggregate's currency.
// count_distinct keeps, per key, the 32 members seen most recently (exact below that; above it, the
// oldest members are forgotten first).
//
// first_seen(): the time of the key's earliest observed event; a key never observed is first seen
// at the deciding event's own time (so "first seen less than 24h ago" holds for a brand-new key).
// last_seen(): the time of the key's latest observed event (before this one); missing for a key
// never observed. Both are all-time.
//
// Memory: per aggregate and key one slot of an open-addressing table (two cache lines) holding up
// to four non-empty buckets inline (a sparse ring, pruned as buckets leave the window); more spill
// to the heap. Threads: Read and Observe may run concurrently from any threads (64 shards per
// aggregate, each under a reader-writer lock). A read-then-observe is not atomic across concurrent
// decisions on the same key; two decisions at the same instant may both see the state without the
// other.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <vector>

#include "gateway/risk/event.h"
#include "gateway/risk/ruleset.h"

namespace paygate::risk {

// The state of one aggregate definition.
class AggregateState {
 public:
  explicit AggregateState(const AggregateDef& def);

  // The aggregate's value for `key` as seen at `now_s`. Never allocates.
  Value Read(std::uint64_t key, std::int64_t now_s) const;
  // Adds one observation at `time_s`: `amount` for sums, `member` (a hash) for count_distinct.
  void Add(std::uint64_t key, std::int64_t time_s, std::int64_t amount, std::uint64_t member);

  std::size_t key_count() const;
  const std::string& signature() const { return signature_; }

  // Members kept per key by count_distinct.
  static constexpr std::size_t kDistinctCap = 32;

  // Starts loading the memory that Read(key, ...) will touch, without locking or reading it: the
  // evaluator issues this for every aggregate of a decision first, so their cache misses overlap.
  void Prefetch(std::uint64_t key) const;

 private:
  // A bucket (count, sum) or a count_distinct member (value = member hash; count unused).
  struct Cell {
    std::int32_t epoch;
    std::int32_t count;
    std::int64_t value;
  };
  // One key's state, two cache lines: most keys have few cells, which stay inline; a key with more
  // moves all its cells to `spill`. Cells are sorted by epoch.
  struct alignas(64) Entry {
    std::uint64_t key = 0;  // 0: empty slot
    std::int64_t first_s = INT64_MAX;
    std::int64_t last_s = INT64_MIN;
    std::uint32_t n = 0;
    bool spilled = false;
    std::array<Cell, 4> inline_cells{};
    std::vector<Cell> spill;

    Cell* cells() { return spilled ? spill.data() : inline_cells.data(); }
    const Cell* cells() const { return spilled ? spill.data() : inline_cells.data(); }
    void Insert(std::uint32_t pos, const Cell& c);
    template <class Pred>
    void EraseIf(Pred pred);
  };
  // Open addressing with linear probing, capacity a power of two, at most half full. `data`/`mask`
  // mirror the vector for Prefetch, which reads them without the lock.
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::vector<Entry> table;
    std::size_t used = 0;
    std::atomic<const Entry*> data{nullptr};
    std::atomic<std::size_t> mask{0};
  };
  static constexpr std::size_t kShards = 64;
  static std::uint64_t Mix(std::uint64_t key) { return key * 0x9E3779B97F4A7C15ull; }
  Shard& ShardFor(std::uint64_t key) const { return shards_[Mix(key) >> 58]; }
  static std::size_t Slot(std::uint64_t key, std::size_t mask) {
    const std::uint64_t h = Mix(key);
    return static_cast<std::size_t>(h ^ (h >> 29)) & mask;
  }
  // Key 0 marks empty slots; a real key 0 is stored as this one.
  static std::uint64_t Stored(std::uint64_t key) { return key == 0 ? 0x5bd1e9955bd1e995ull : key; }
  static const Entry* Find(const Shard& shard, std::uint64_t key);
  static Entry& FindOrInsert(Shard& shard, std::uint64_t key);

  AggregateFunc func_;
  Type type_;
  std::uint32_t currency_;
  std::int64_t bucket_s_;
  std::int64_t buckets_;  // N
  std::string signature_;
  mutable std::array<Shard, kShards> shards_;
};

// The key an event has for an aggregate keyed by `by`, or nullopt when the attribute is missing.
std::optional<std::uint64_t> AggregateKey(const Event& event, Attr by);

// The states of one compiled ruleset's aggregates, in the ruleset's aggregate order.
class AggregateStore {
 public:
  // States for `ruleset`. A definition whose signature (function, attributes, window, events,
  // filter; not its name) matches one in `previous` shares that state, so reloading a ruleset keeps
  // the history of unchanged aggregates; the others start empty and are marked fresh.
  AggregateStore(std::shared_ptr<const CompiledRuleset> ruleset, const AggregateStore* previous);

  const CompiledRuleset& ruleset() const { return *ruleset_; }
  const std::shared_ptr<const CompiledRuleset>& ruleset_ptr() const { return ruleset_; }
  const AggregateState& state(std::size_t i) const { return *states_[i]; }
  bool fresh(std::size_t i) const { return fresh_[i]; }
  bool any_fresh() const;

  // Reads aggregate `i` for `event` (missing when the event lacks the key). Never allocates.
  Value Read(std::size_t i, const Event& event) const;
  void Prefetch(std::size_t i, const Event& event) const;

  // Feeds every aggregate the event qualifies for (see above). Call once per decided event, after
  // the decision. Not idempotent: the caller feeds each stored event once (by its position in the
  // log).
  void Observe(const Event& event);
  // Feeds only the fresh aggregates: rebuild them from stored history after a reload without
  // counting the carried-over ones twice.
  void ObserveFresh(const Event& event);
  // Rebuilds from stored events in their original order (ObserveFresh on a new store, Observe on an
  // empty one, both are the same thing).
  void Replay(std::span<const Event> events) {
    for (const auto& e : events) ObserveFresh(e);
  }

 private:
  void Feed(const Event& event, bool fresh_only);

  std::shared_ptr<const CompiledRuleset> ruleset_;
  std::vector<std::shared_ptr<AggregateState>> states_;
  std::vector<bool> fresh_;
};

}  // namespace paygate::risk
