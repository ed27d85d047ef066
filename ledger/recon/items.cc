#include "ledger/recon/items.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <functional>

namespace paygate::recon {
namespace {

constexpr std::size_t kBlockBytes = 1 << 20;
constexpr std::size_t kInitialSlots = 1 << 10;  // a power of two; grown at half full

std::uint32_t Hash(ItemKind kind, std::string_view key) {
  const std::size_t h = std::hash<std::string_view>{}(key) ^
                        (static_cast<std::size_t>(kind) * 0x9e3779b97f4a7c15u);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

}  // namespace

Items::Items() {
  by_reference_.key = &Item::reference;
  by_txid_.key = &Item::txid;
  by_reference_.slots.assign(kInitialSlots, Slot{});
  by_txid_.slots.assign(kInitialSlots, Slot{});
}

Items::~Items() = default;

std::string_view Items::Store(std::string_view text) {
  if (text.empty()) return {};
  if (block_size_ - block_used_ < text.size()) {
    // A string longer than a block gets a block of its own.
    block_size_ = std::max(kBlockBytes, text.size());
    blocks_.push_back(std::make_unique<char[]>(block_size_));
    block_used_ = 0;
  }
  char* at = blocks_.back().get() + block_used_;
  std::memcpy(at, text.data(), text.size());
  block_used_ += text.size();
  return {at, text.size()};
}

Item& Items::Add(ItemKind kind, std::string_view id, std::string_view reference,
                 std::string_view txid, std::int64_t amount, std::string_view currency,
                 bool succeeded, std::int64_t at) {
  assert(items_.size() < kMax);
  Item& item = items_.emplace_back();
  item.kind = kind;
  item.id = Store(id);
  item.reference = Store(reference);
  item.txid = Store(txid);
  item.amount = amount;
  item.at = at;
  std::memset(item.currency, ' ', sizeof item.currency);
  std::memcpy(item.currency, currency.data(), std::min(currency.size(), sizeof item.currency));
  item.succeeded = succeeded;
  // Half full at most: probe sequences stay short.
  if ((items_.size() + 1) * 2 > by_reference_.slots.size()) Grow();
  const auto number = static_cast<std::uint32_t>(items_.size() - 1);
  if (!item.reference.empty()) Insert(by_reference_, number, Hash(kind, item.reference));
  if (!item.txid.empty()) Insert(by_txid_, number, Hash(kind, item.txid));
  return item;
}

void Items::Insert(Index& index, std::uint32_t number, std::uint32_t hash) {
  const std::size_t mask = index.slots.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& slot = index.slots[i];
    if (slot.number == 0) {
      slot = Slot{.number = number + 1, .hash = hash};
      return;
    }
    if (slot.hash != hash) continue;
    // The first one added keeps the key, as a lookup would have found it.
    const Item& item = items_[number];
    const Item& other = items_[slot.number - 1];
    if (other.kind == item.kind && other.*index.key == item.*index.key) return;
  }
}

Item* Items::Find(const Index& index, ItemKind kind, std::string_view key) {
  if (key.empty()) return nullptr;
  const std::uint32_t hash = Hash(kind, key);
  const std::size_t mask = index.slots.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = index.slots[i];
    if (slot.number == 0) return nullptr;
    if (slot.hash != hash) continue;
    Item& item = items_[slot.number - 1];
    if (item.kind == kind && item.*index.key == key) return &item;
  }
}

void Items::Grow() {
  // Slots move by their stored hash: no item is read. A key is in a table at most once (Insert
  // keeps the first), so the order they land in does not matter.
  const std::size_t size = by_reference_.slots.size() * 2;
  for (Index* index : {&by_reference_, &by_txid_}) {
    std::vector<Slot> old(size, Slot{});
    old.swap(index->slots);
    const std::size_t mask = size - 1;
    for (const Slot& slot : old) {
      if (slot.number == 0) continue;
      std::size_t i = slot.hash & mask;
      while (index->slots[i].number != 0) i = (i + 1) & mask;
      index->slots[i] = slot;
    }
  }
}

Item* Items::ByReference(ItemKind kind, std::string_view key) {
  return Find(by_reference_, kind, key);
}

Item* Items::ByTxid(ItemKind kind, std::string_view key) { return Find(by_txid_, kind, key); }

}  // namespace paygate::recon
