// The pieces reconciliation's bulk paths stand on: PostgreSQL's binary COPY format as
// ledger/recon/binary_copy.h writes and reads it (byte for byte against the documented layout),
// and the compact store of our items (ledger/recon/items.h) that a million-line bill is matched
// against.
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ledger/recon/binary_copy.h"
#include "ledger/recon/items.h"

namespace paygate::recon {
namespace {

using namespace std::string_literals;

TEST(BinaryCopyWriter, WritesTheDocumentedLayout) {
  std::string out;
  BinaryCopyWriter w(out);
  w.Header();
  // Signature, flags 0, no extension.
  EXPECT_EQ(out, "PGCOPY\n\xff\r\n\0"s + std::string(8, '\0'));
  out.clear();
  w.Row(6);
  w.Int4(-2);
  w.Int8(0x0102030405060708);
  w.Text("ab");
  w.Bool(true);
  w.Null();
  w.TimestampUnix(kPgEpochUnix + 1);
  w.Trailer();
  const std::string want = "\x00\x06"s                                       // 6 fields
                           "\x00\x00\x00\x04\xff\xff\xff\xfe"s                // int4 -2
                           "\x00\x00\x00\x08\x01\x02\x03\x04\x05\x06\x07\x08"s  // int8
                           "\x00\x00\x00\x02" "ab"s                           // text
                           "\x00\x00\x00\x01\x01"s                           // bool
                           "\xff\xff\xff\xff"s                               // NULL
                           "\x00\x00\x00\x08\x00\x00\x00\x00\x00\x0f\x42\x40"s  // 1 s in µs
                           "\xff\xff"s;                                      // trailer
  EXPECT_EQ(out, want);
}

TEST(BinaryCopyReader, ReadsWhatTheWriterWrites) {
  // As the server sends COPY TO data: the header with the first row, then a row per message, then
  // the trailer alone.
  std::string first, second, last;
  BinaryCopyWriter(first).Header();
  BinaryCopyWriter a(first);
  a.Row(4);
  a.Text("pay_1");
  a.Int4(7);
  a.Null();
  a.TimestampUnix(1773100000);
  BinaryCopyWriter b(second);
  b.Row(2);
  b.Bool(false);
  b.Int8(-5);
  BinaryCopyWriter(last).Trailer();

  BinaryCopyReader reader;
  std::vector<BinaryField> f;
  ASSERT_EQ(reader.Next(first, f), BinaryCopyReader::Status::kRow);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(*f[0], "pay_1");
  EXPECT_EQ(BinaryCopyReader::Int4(f[1]), 7);
  EXPECT_FALSE(f[2].has_value());
  EXPECT_EQ(BinaryCopyReader::TimestampUnix(f[3]), 1773100000);
  // Wrong widths and NULLs decode to nothing rather than to garbage.
  EXPECT_FALSE(BinaryCopyReader::Int8(f[1]).has_value());
  EXPECT_FALSE(BinaryCopyReader::Int4(f[2]).has_value());
  ASSERT_EQ(reader.Next(second, f), BinaryCopyReader::Status::kRow);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(BinaryCopyReader::Bool(f[0]), false);
  EXPECT_EQ(BinaryCopyReader::Int8(f[1]), -5);
  EXPECT_EQ(reader.Next(last, f), BinaryCopyReader::Status::kEnd);
}

TEST(BinaryCopyReader, RefusesMalformedData) {
  std::string header;
  BinaryCopyWriter(header).Header();
  std::string row;
  BinaryCopyWriter w(row);
  w.Row(1);
  w.Text("abc");
  std::vector<BinaryField> f;
  {
    BinaryCopyReader reader;  // no signature
    EXPECT_EQ(reader.Next(row, f), BinaryCopyReader::Status::kMalformed);
  }
  {
    BinaryCopyReader reader;  // a field cut short
    EXPECT_EQ(reader.Next(header + row.substr(0, row.size() - 1), f),
              BinaryCopyReader::Status::kMalformed);
  }
  {
    BinaryCopyReader reader;  // bytes after the row
    EXPECT_EQ(reader.Next(header + row + "x", f), BinaryCopyReader::Status::kMalformed);
  }
  {
    BinaryCopyReader reader;  // a header extension is skipped, whatever it holds
    std::string extended = header;
    extended[18] = '\x02';
    // Named: the fields are views into the data, which must outlive them.
    const std::string data = extended + "zz" + row;
    EXPECT_EQ(reader.Next(data, f), BinaryCopyReader::Status::kRow);
    EXPECT_EQ(*f.at(0), "abc");
  }
}

TEST(BinaryCopyReader, TimestampsBefore2000RoundDown) {
  std::string m;
  BinaryCopyWriter(m).Header();
  BinaryCopyWriter w(m);
  w.Row(1);
  w.Int8(-1);  // one microsecond before 2000-01-01
  BinaryCopyReader reader;
  std::vector<BinaryField> f;
  ASSERT_EQ(reader.Next(m, f), BinaryCopyReader::Status::kRow);
  EXPECT_EQ(BinaryCopyReader::TimestampUnix(f[0]), kPgEpochUnix - 1);
}

TEST(Items, FindsByReferenceAndTransactionIdPerKind) {
  Items items;
  Item& attempt = items.Add(ItemKind::kAttempt, "pay_a:1", "pay_a_1", "4200001", 1000, "CNY",
                            true, 100);
  Item& refund = items.Add(ItemKind::kRefund, "re_a", "pay_a_1", "", 300, "CNY", false, 200);
  EXPECT_EQ(items.ByReference(ItemKind::kAttempt, "pay_a_1"), &attempt);
  EXPECT_EQ(items.ByReference(ItemKind::kRefund, "pay_a_1"), &refund);
  EXPECT_EQ(items.ByTxid(ItemKind::kAttempt, "4200001"), &attempt);
  EXPECT_EQ(items.ByTxid(ItemKind::kRefund, "4200001"), nullptr);
  // An empty key names nothing, though the refund has no provider id.
  EXPECT_EQ(items.ByTxid(ItemKind::kRefund, ""), nullptr);
  EXPECT_EQ(items.ByReference(ItemKind::kAttempt, ""), nullptr);
  EXPECT_EQ(items.ByReference(ItemKind::kAttempt, "pay_b_1"), nullptr);
  EXPECT_EQ(attempt.id, "pay_a:1");
  EXPECT_EQ(attempt.currency_code(), "CNY");
  EXPECT_EQ(refund.amount, 300);
  EXPECT_FALSE(refund.succeeded);
}

TEST(Items, FirstAddedKeepsAKey) {
  Items items;
  Item& first = items.Add(ItemKind::kAttempt, "o1:1", "ref", "tx", 1, "CNY", true, 0);
  items.Add(ItemKind::kAttempt, "o2:1", "ref", "tx", 2, "CNY", true, 0);
  // Still after the tables grew many times over.
  for (int i = 0; i < 5000; ++i) {
    items.Add(ItemKind::kAttempt, fmt::format("x{}:1", i), fmt::format("r{}", i),
              fmt::format("t{}", i), i, "CNY", true, 0);
  }
  EXPECT_EQ(items.ByReference(ItemKind::kAttempt, "ref"), &first);
  EXPECT_EQ(items.ByTxid(ItemKind::kAttempt, "tx"), &first);
}

TEST(Items, ManyItemsStayFindableAndInPlace) {
  Items items;
  std::vector<Item*> added;
  constexpr int kCount = 200000;
  for (int i = 0; i < kCount; ++i) {
    added.push_back(&items.Add(i % 3 == 0 ? ItemKind::kRefund : ItemKind::kAttempt,
                               fmt::format("id{}", i), fmt::format("pay_{:024}_1", i),
                               i % 2 == 0 ? fmt::format("42{:026}", i) : std::string(), i, "CNY",
                               true, i));
  }
  ASSERT_EQ(items.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    const ItemKind kind = i % 3 == 0 ? ItemKind::kRefund : ItemKind::kAttempt;
    const ItemKind other = kind == ItemKind::kRefund ? ItemKind::kAttempt : ItemKind::kRefund;
    const std::string reference = fmt::format("pay_{:024}_1", i);
    // Pointers taken when added still point at the same item: nothing moved as it grew.
    ASSERT_EQ(items.ByReference(kind, reference), added[i]) << i;
    ASSERT_EQ(items.ByReference(other, reference), nullptr) << i;
    ASSERT_EQ(added[i]->amount, i);
    ASSERT_EQ(added[i]->reference, reference);
    if (i % 2 == 0) {
      ASSERT_EQ(items.ByTxid(kind, fmt::format("42{:026}", i)), added[i]) << i;
    }
  }
  EXPECT_EQ(items.ByTxid(ItemKind::kAttempt, fmt::format("42{:026}", 1)), nullptr);
}

}  // namespace
}  // namespace paygate::recon
