#include "gateway/risk/aggregates.h"

#include <algorithm>
#include <mutex>

#include "gateway/risk/evaluator.h"

namespace paygate::risk {

namespace {
std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Mixes both halves of a value into one 64-bit key or member hash.
std::uint64_t KeyOf(const Value& v) {
  return static_cast<std::uint64_t>(v.a) ^ (v.b * 0x9E3779B97F4A7C15ull) ^
         (std::uint64_t{v.aux} << 48);
}
}  // namespace

std::optional<std::uint64_t> AggregateKey(const Event& event, Attr by) {
  const Value& v = event.Get(by);
  if (!v.present) return std::nullopt;
  return KeyOf(v);
}

AggregateState::AggregateState(const AggregateDef& def)
    : func_(def.func),
      type_(def.type),
      currency_(def.currency),
      bucket_s_(def.bucket_s > 0 ? def.bucket_s : 1),
      buckets_(def.bucket_s > 0 ? def.window_s / def.bucket_s : 0),
      signature_(def.signature) {}

void AggregateState::Entry::Insert(std::uint32_t pos, const Cell& c) {
  if (!spilled && n < inline_cells.size()) {
    for (std::uint32_t i = n; i > pos; --i) inline_cells[i] = inline_cells[i - 1];
    inline_cells[pos] = c;
    ++n;
    return;
  }
  if (!spilled) {
    spill.assign(inline_cells.begin(), inline_cells.begin() + n);
    spilled = true;
  }
  spill.insert(spill.begin() + pos, c);
  ++n;
}

template <class Pred>
void AggregateState::Entry::EraseIf(Pred pred) {
  Cell* c = cells();
  std::uint32_t out = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (!pred(c[i])) c[out++] = c[i];
  }
  n = out;
  if (spilled) spill.resize(n);
}

const AggregateState::Entry* AggregateState::Find(const Shard& shard, std::uint64_t key) {
  if (shard.table.empty()) return nullptr;
  const std::uint64_t stored = Stored(key);
  const std::size_t mask = shard.table.size() - 1;
  for (std::size_t i = Slot(stored, mask);; i = (i + 1) & mask) {
    const Entry& e = shard.table[i];
    if (e.key == stored) return &e;
    if (e.key == 0) return nullptr;
  }
}

AggregateState::Entry& AggregateState::FindOrInsert(Shard& shard, std::uint64_t key) {
  const std::uint64_t stored = Stored(key);
  if ((shard.used + 1) * 2 > shard.table.size()) {
    std::vector<Entry> bigger(shard.table.empty() ? 16 : shard.table.size() * 2);
    const std::size_t mask = bigger.size() - 1;
    for (auto& e : shard.table) {
      if (e.key == 0) continue;
      std::size_t i = Slot(e.key, mask);
      while (bigger[i].key != 0) i = (i + 1) & mask;
      bigger[i] = std::move(e);
    }
    shard.table = std::move(bigger);
    shard.data.store(shard.table.data(), std::memory_order_relaxed);
    shard.mask.store(mask, std::memory_order_relaxed);
  }
  const std::size_t mask = shard.table.size() - 1;
  std::size_t i = Slot(stored, mask);
  while (shard.table[i].key != 0 && shard.table[i].key != stored) i = (i + 1) & mask;
  Entry& e = shard.table[i];
  if (e.key == 0) {
    e.key = stored;
    ++shard.used;
  }
  return e;
}

void AggregateState::Prefetch(std::uint64_t key) const {
  const Shard& shard = ShardFor(key);
  const Entry* data = shard.data.load(std::memory_order_relaxed);
  if (data == nullptr) return;
  // A stale pointer after a concurrent resize is harmless: a prefetch never faults.
  const char* p = reinterpret_cast<const char*>(
      data + Slot(Stored(key), shard.mask.load(std::memory_order_relaxed)));
  __builtin_prefetch(p);
  __builtin_prefetch(p + 64);
}

Value AggregateState::Read(std::uint64_t key, std::int64_t now_s) const {
  const Shard& shard = ShardFor(key);
  std::shared_lock lock(shard.mu);
  const Entry* e = Find(shard, key);
  const std::int64_t now_epoch = FloorDiv(now_s, bucket_s_);
  const std::int64_t oldest = now_epoch - buckets_;
  const Cell* cells = e != nullptr ? e->cells() : nullptr;
  const std::uint32_t n = e != nullptr ? e->n : 0;
  switch (func_) {
    case AggregateFunc::kCount:
    case AggregateFunc::kSum: {
      std::int64_t count = 0;
      std::int64_t sum = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        if (cells[i].epoch >= oldest && cells[i].epoch <= now_epoch) {
          count += cells[i].count;
          sum += cells[i].value;
        }
      }
      if (func_ == AggregateFunc::kCount) return Value::Of(Type::kInt, count);
      return Value::Of(type_, sum, type_ == Type::kMoney ? currency_ : 0);
    }
    case AggregateFunc::kCountDistinct: {
      std::int64_t distinct = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        distinct += (cells[i].epoch >= oldest && cells[i].epoch <= now_epoch) ? 1 : 0;
      }
      return Value::Of(Type::kInt, distinct);
    }
    case AggregateFunc::kFirstSeen:
      return Value::Of(Type::kTime, e == nullptr ? now_s : std::min(e->first_s, now_s));
    case AggregateFunc::kLastSeen:
      return e == nullptr ? Value::Missing(Type::kTime) : Value::Of(Type::kTime, e->last_s);
  }
  return Value::Missing(type_);
}

void AggregateState::Add(std::uint64_t key, std::int64_t time_s, std::int64_t amount,
                         std::uint64_t member) {
  Shard& shard = ShardFor(key);
  std::unique_lock lock(shard.mu);
  Entry& e = FindOrInsert(shard, key);
  e.first_s = std::min(e.first_s, time_s);
  e.last_s = std::max(e.last_s, time_s);
  if (func_ == AggregateFunc::kFirstSeen || func_ == AggregateFunc::kLastSeen) return;
  // Epochs fit 32 bits for any time within thousands of years at the smallest (5-minute) bucket.
  const auto epoch = static_cast<std::int32_t>(FloorDiv(time_s, bucket_s_));
  const auto window = static_cast<std::int32_t>(buckets_);
  if (func_ == AggregateFunc::kCountDistinct) {
    // Members are kept in arrival order; `epoch` is the bucket of each one's latest observation.
    std::int32_t newest = epoch;
    for (std::uint32_t i = 0; i < e.n; ++i) newest = std::max(newest, e.cells()[i].epoch);
    if (epoch < newest - window) return;  // older than anything a later read can see
    e.EraseIf([&](const Cell& c) { return c.epoch < newest - window; });
    Cell* cells = e.cells();
    for (std::uint32_t i = 0; i < e.n; ++i) {
      if (static_cast<std::uint64_t>(cells[i].value) == member) {
        cells[i].epoch = std::max(cells[i].epoch, epoch);
        return;
      }
    }
    if (e.n >= kDistinctCap) {
      std::uint32_t oldest = 0;
      for (std::uint32_t i = 1; i < e.n; ++i) {
        if (cells[i].epoch < cells[oldest].epoch) oldest = i;
      }
      if (cells[oldest].epoch > epoch) return;  // the newcomer is the oldest: keep the most recent
      cells[oldest] = {epoch, 1, static_cast<std::int64_t>(member)};
      return;
    }
    e.Insert(e.n, {epoch, 1, static_cast<std::int64_t>(member)});
    return;
  }
  const std::int32_t newest = e.n == 0 ? epoch : std::max(epoch, e.cells()[e.n - 1].epoch);
  if (epoch < newest - window) return;
  e.EraseIf([&](const Cell& c) { return c.epoch < newest - window; });
  Cell* cells = e.cells();
  std::uint32_t pos = 0;
  while (pos < e.n && cells[pos].epoch < epoch) ++pos;
  if (pos == e.n || cells[pos].epoch != epoch) {
    e.Insert(pos, {epoch, 0, 0});
    cells = e.cells();
  }
  cells[pos].count += 1;
  cells[pos].value += amount;
}

std::size_t AggregateState::key_count() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::shared_lock lock(s.mu);
    n += s.used;
  }
  return n;
}

AggregateStore::AggregateStore(std::shared_ptr<const CompiledRuleset> ruleset,
                               const AggregateStore* previous)
    : ruleset_(std::move(ruleset)) {
  for (const auto& def : ruleset_->aggregates) {
    std::shared_ptr<AggregateState> state;
    if (previous != nullptr) {
      for (const auto& s : previous->states_) {
        if (s->signature() == def.signature) state = s;
      }
    }
    fresh_.push_back(state == nullptr);
    states_.push_back(state != nullptr ? std::move(state) : std::make_shared<AggregateState>(def));
  }
}

bool AggregateStore::any_fresh() const {
  return std::find(fresh_.begin(), fresh_.end(), true) != fresh_.end();
}

Value AggregateStore::Read(std::size_t i, const Event& event) const {
  const AggregateDef& def = ruleset_->aggregates[i];
  const auto key = AggregateKey(event, def.by);
  if (!key) return Value::Missing(def.type);
  return states_[i]->Read(*key, event.time());
}

void AggregateStore::Prefetch(std::size_t i, const Event& event) const {
  const auto key = AggregateKey(event, ruleset_->aggregates[i].by);
  if (key) states_[i]->Prefetch(*key);
}

void AggregateStore::Observe(const Event& event) { Feed(event, false); }
void AggregateStore::ObserveFresh(const Event& event) { Feed(event, true); }

void AggregateStore::Feed(const Event& event, bool fresh_only) {
  const EventMask mask = MaskOf(event.type());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    if (fresh_only && !fresh_[i]) continue;
    const AggregateDef& def = ruleset_->aggregates[i];
    if (!(def.on & mask)) continue;
    const auto key = AggregateKey(event, def.by);
    if (!key) continue;
    std::int64_t amount = 0;
    std::uint64_t member = 0;
    if (def.func == AggregateFunc::kSum || def.func == AggregateFunc::kCountDistinct) {
      const Value& of = event.Get(def.of);
      if (!of.present) continue;
      if (def.func == AggregateFunc::kSum) {
        if (of.type == Type::kMoney && of.aux != def.currency) continue;
        amount = of.a;
      } else {
        member = KeyOf(of);
      }
    }
    if (def.filter_end > def.filter_begin &&
        EvaluateFilter(*ruleset_, def.filter_begin, def.filter_end, event) != Truth::kTrue) {
      continue;
    }
    states_[i]->Add(*key, event.time(), amount, member);
  }
}

}  // namespace paygate::risk
