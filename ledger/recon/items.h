#pragma once

// Our side of a reconciliation, held while the bill streams past: payment attempts and refunds,
// found by our reference or by the provider's id. A day can hold a million of them, so they are
// compact: strings live in one arena of large blocks (no allocation per string, nothing moves as
// it grows), items in a deque (no copy of the whole when it grows), and the two indexes are
// open-addressing tables of 32-bit item numbers. About 150 bytes an item where a node-based map
// per key, with a std::string per field, took several times that.
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

namespace paygate::recon {

enum class ItemKind : std::uint8_t { kAttempt, kRefund };

struct Item {
  std::string_view id;         // "<order id>:<seq>" or the refund id
  std::string_view reference;  // what the provider knows us by (out_trade_no / out_refund_no)
  std::string_view txid;       // the provider's transaction (refund) id, "" when unknown
  std::int64_t amount = 0;
  std::int64_t at = 0;        // unix seconds of its last change (success, for a succeeded item)
  char currency[3] = {};
  ItemKind kind = ItemKind::kAttempt;
  bool succeeded = false;
  bool in_scope = false;  // succeeded within the bill day: the bill should have it
  bool claimed = false;   // matched by a line of this bill

  std::string_view currency_code() const { return {currency, 3}; }
};

class Items {
 public:
  Items();
  ~Items();
  Items(const Items&) = delete;
  Items& operator=(const Items&) = delete;

  // Items are numbered in 32 bits: callers refuse more before adding.
  static constexpr std::size_t kMax = 0xfffffffe;

  // Copies the strings in. Pointers to items stay valid as more are added (a deque). At most kMax.
  Item& Add(ItemKind kind, std::string_view id, std::string_view reference, std::string_view txid,
            std::int64_t amount, std::string_view currency, bool succeeded, std::int64_t at);

  // The first item added of `kind` with this reference or provider id; nullptr when none (or
  // `key` is empty).
  Item* ByReference(ItemKind kind, std::string_view key);
  Item* ByTxid(ItemKind kind, std::string_view key);

  std::size_t size() const { return items_.size(); }
  std::deque<Item>::iterator begin() { return items_.begin(); }
  std::deque<Item>::iterator end() { return items_.end(); }

 private:
  // One open-addressing table with linear probing. A slot holds the item's number + 1 (0: empty)
  // and its key's 32-bit hash, which places it and screens candidates: a probe reads an item (a
  // cache miss, a million items being far larger than the caches) only when the hash agrees.
  struct Slot {
    std::uint32_t number = 0;
    std::uint32_t hash = 0;
  };
  struct Index {
    std::vector<Slot> slots;
    std::string_view Item::*key = nullptr;
  };
  std::string_view Store(std::string_view text);
  void Insert(Index& index, std::uint32_t number, std::uint32_t hash);
  Item* Find(const Index& index, ItemKind kind, std::string_view key);
  void Grow();

  std::deque<Item> items_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::size_t block_used_ = 0, block_size_ = 0;
  Index by_reference_, by_txid_;
};

}  // namespace paygate::recon
