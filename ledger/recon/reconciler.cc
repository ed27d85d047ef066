#include "ledger/recon/reconciler.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "adapters/bill_files.h"
#include "adapters/common/archive.h"
#include "adapters/wechatpay/bill.h"
#include "config/logging.h"
#include "ledger/db/params.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"
#include "ledger/recon/binary_copy.h"
#include "ledger/recon/items.h"
#include "ledger/recon/settlement.h"

namespace paygate::recon {
namespace {

namespace asio = boost::asio;
using adapters::bill::Record;
using db::ArrayLiteral;
using db::Params;
using db::PgConnection;
using db::PgResult;
using db::Statement;

// Ledger reason codes of reconciliation postings (the payments service uses its own).
constexpr std::int32_t kReasonFee = 40;
constexpr std::int32_t kReasonSettlement = 41;
constexpr std::int32_t kReasonAdjustment = 42;

// Bytes of COPY data buffered before they are sent: bounds memory whatever the file size.
constexpr std::size_t kCopyFlushBytes = 1 << 20;

enum class Class : std::uint8_t {
  kMatched,
  kMissingOurs,
  kMissingProvider,
  kAmountMismatch,
  kStatusMismatch,
  kTiming,
  kDuplicate
};
constexpr std::size_t kClasses = 7;
enum class Rule : std::uint8_t { kNone, kReference, kTransactionId, kRule };

std::string_view KindName(ItemKind kind) {
  return kind == ItemKind::kAttempt ? "attempt" : "refund";
}

std::string_view ClassName(Class c) {
  switch (c) {
    case Class::kMatched:
      return "matched";
    case Class::kMissingOurs:
      return "missing_ours";
    case Class::kMissingProvider:
      return "missing_provider";
    case Class::kAmountMismatch:
      return "amount_mismatch";
    case Class::kStatusMismatch:
      return "status_mismatch";
    case Class::kTiming:
      return "timing";
    case Class::kDuplicate:
      return "duplicate";
  }
  return "";
}

std::string_view RuleName(Rule r) {
  switch (r) {
    case Rule::kNone:
      return "";
    case Rule::kReference:
      return "reference";
    case Rule::kTransactionId:
      return "transaction_id";
    case Rule::kRule:
      return "rule";
  }
  return "";
}

// A bill line held back until every item is known (no match by reference or id while streaming).
struct Held {
  std::int32_t line_no = 0;
  std::int64_t at = 0;
  Record record;
};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil): pure
// arithmetic, a million bill lines a run, where timegm() consults the time zone machinery.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool ValidDate(int y, int m, int d) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

// "YYYY-MM-DDTHH:MM:SS+HH:MM" (the normalised bill time) -> unix seconds. Refuses impossible
// dates and times (2026-02-30, 25:00) rather than rolling them over.
std::optional<std::int64_t> ParseTime(std::string_view text) {
  if (text.size() != 25 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[13] != ':' || text[16] != ':' || (text[19] != '+' && text[19] != '-') ||
      text[22] != ':') {
    return std::nullopt;
  }
  bool ok = true;
  auto number = [&](std::size_t at, std::size_t len) {
    int value = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') ok = false;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const int y = number(0, 4), mo = number(5, 2), d = number(8, 2), h = number(11, 2),
            mi = number(14, 2), s = number(17, 2), oh = number(20, 2), om = number(23, 2);
  if (!ok || !ValidDate(y, mo, d) || h > 23 || mi > 59 || s > 60 || oh > 23 || om > 59) {
    return std::nullopt;
  }
  const std::int64_t offset = (oh * 3600 + om * 60) * (text[19] == '-' ? -1 : 1);
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
         h * 3600 + mi * 60 + s - offset;
}

// "YYYY-MM-DD" -> unix seconds of its midnight UTC.
std::optional<std::int64_t> ParseDate(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  return ParseTime(std::string(text) + "T00:00:00+00:00");
}

// COPY text format: backslash, tab, newline and carriage return escaped.
void AppendField(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

// One row of COPY text (the exceptions: few, so text is simpler than binary and as fast).
class CopyRow {
 public:
  explicit CopyRow(std::string& out) : out_(out) {}
  CopyRow& Text(std::string_view v) {
    Sep();
    AppendField(out_, v);
    return *this;
  }
  CopyRow& Int(std::int64_t v) {
    Sep();
    fmt::format_to(std::back_inserter(out_), "{}", v);
    return *this;
  }
  CopyRow& Null() {
    Sep();
    out_ += "\\N";
    return *this;
  }
  ~CopyRow() { out_ += '\n'; }

 private:
  void Sep() {
    if (!first_) out_ += '\t';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
};

// Whether a refund line says the money moved (WeChat writes PROCESSING, ABNORMAL or CLOSED for
// refunds that have not).
bool RefundDone(std::string_view status) {
  return status != "PROCESSING" && status != "ABNORMAL" && status != "CLOSED" &&
         status != "FAILED";
}

constexpr std::string_view kItemColumns =
    "SELECT 'attempt', a.order_id || ':' || a.seq, a.provider_reference, "
    "a.provider_transaction_id, o.amount_minor, o.currency, a.status = 'succeeded', "
    "extract(epoch FROM a.updated_at)::bigint "
    "FROM payment_attempts a JOIN payment_orders o ON o.id = a.order_id ";
constexpr std::string_view kRefundColumns =
    "SELECT 'refund', r.id, r.provider_reference, r.provider_transaction_id, r.amount_minor, "
    "r.currency, r.status = 'succeeded', extract(epoch FROM r.updated_at)::bigint "
    "FROM payment_refunds r JOIN payment_orders o ON o.id = r.order_id ";

// The first statement of an import's transaction. JIT off: each statement runs once, and
// compiling those the planner costs high (a million-row load, the ledger's) took longer than
// running them. work_mem for this transaction only: the load's hash join of a million orders
// then runs in one batch (about 130 MB of server memory, once a day per account) instead of
// spilling to disk in sixteen.
const Statement kBeginImport{
    "recon_begin_import",
    "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true), "
    "pg_advisory_xact_lock(hashtextextended($1, 0))"};

// A string as an SQL literal, for COPY, which takes no bind parameters. The E'' form reads the
// same whatever standard_conforming_strings says; text cannot hold NUL, so callers refuse it.
std::string SqlLiteral(std::string_view text) {
  std::string out = "E'";
  for (char c : text) {
    if (c == '\\' || c == '\'') out += c;
    out += c;
  }
  out += '\'';
  return out;
}

// Items of the account that changed in [from, to) and no current bill has taken, in binary COPY
// (streamed: a million rows never sit in one result). Attempt ids are built by the client. The
// values are literals rather than current_setting() so the planner sees them (a hash join, not
// a nested loop) and the scan compares constants. Attempts carry their order's amount and
// currency (0012): no join of the orders, except by primary key for attempts older than that.
std::string CopyItemsSql(std::string_view provider, std::string_view account, std::int64_t from,
                         std::int64_t to) {
  return fmt::format(
      "COPY (SELECT false, a.order_id, a.seq, a.provider_reference, a.provider_transaction_id, "
      "coalesce(a.amount_minor, (SELECT o.amount_minor FROM payment_orders o "
      "WHERE o.id = a.order_id)), coalesce(a.currency, (SELECT o.currency FROM payment_orders o "
      "WHERE o.id = a.order_id)), a.status = 'succeeded', a.updated_at "
      "FROM payment_attempts a "
      "WHERE a.provider = {0} AND a.merchant_account = {1} "
      "AND a.updated_at >= to_timestamp({2}) AND a.updated_at < to_timestamp({3}) "
      "AND NOT EXISTS (SELECT 1 FROM recon_bill_items b WHERE b.our_kind = 'attempt' "
      "AND b.our_id = a.order_id || ':' || a.seq AND NOT b.superseded) "
      "UNION ALL "
      "SELECT true, r.id, 0, r.provider_reference, r.provider_transaction_id, r.amount_minor, "
      "r.currency, r.status = 'succeeded', r.updated_at "
      "FROM payment_refunds r JOIN payment_orders o ON o.id = r.order_id "
      "WHERE o.provider = {0} AND o.merchant_account = {1} "
      "AND r.updated_at >= to_timestamp({2}) AND r.updated_at < to_timestamp({3}) "
      "AND NOT EXISTS (SELECT 1 FROM recon_bill_items b WHERE b.our_kind = 'refund' "
      "AND b.our_id = r.id AND NOT b.superseded)) TO STDOUT (FORMAT binary)",
      SqlLiteral(provider), SqlLiteral(account), from, to);
}
constexpr std::int16_t kCopyItemFields = 9;

constexpr std::string_view kCopyBillItems =
    "COPY recon_bill_items (import_id, line_no, kind, provider_transaction_id, "
    "merchant_reference, provider_refund_id, refund_reference, amount_minor, fee_minor, "
    "currency, occurred_at, status, class, match_rule, our_kind, our_id, our_amount_minor) "
    "FROM STDIN (FORMAT binary)";
constexpr std::int16_t kBillItemFields = 17;

std::string ScopeNote(const Options& options) {
  return fmt::format("cut-off window {} s", options.cutoff_window.count());
}

// An unlinked temporary file (TMPDIR, else /tmp), closed when the last copy of the pointer goes;
// nullptr (errno set) when none can be made.
std::shared_ptr<int> OpenUnlinkedTempFile() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = fmt::format("{}/paygate-recon-XXXXXX", dir != nullptr && *dir ? dir : "/tmp");
  const int raw = mkstemp(path.data());
  if (raw < 0) return nullptr;
  unlink(path.c_str());
  return std::shared_ptr<int>(new int(raw), [](int* f) {
    close(*f);
    delete f;
  });
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The file holding `head` and then every piece `next` yields.
template <class Next>
RResult<std::shared_ptr<int>> SpoolToTempFile(std::string_view head, Next& next) {
  auto failed = []() {
    const int e = errno;
    return Error(std::error_code(e, std::generic_category()),
                 fmt::format("cannot spool the bill to a temporary file: errno {}", e));
  };
  auto fd = OpenUnlinkedTempFile();
  if (fd == nullptr || !WriteAll(*fd, head)) return failed();
  for (;;) {
    auto more = next();
    if (!more) return more.error();
    if (more.value().empty()) break;
    if (!WriteAll(*fd, more.value())) return failed();
  }
  return fd;
}

// What would otherwise pile up in memory as a bill streams, however long it is (lines nothing has
// matched yet, exception rows): appended to an unlinked temporary file, read back in pieces.
class SpillFile {
 public:
  // Appends `bytes`, making the file on first use; false (errno set) when the disk refuses.
  bool Append(std::string_view bytes) {
    if (fd_ == nullptr && (fd_ = OpenUnlinkedTempFile()) == nullptr) return false;
    if (!WriteAll(*fd_, bytes)) return false;
    size_ += bytes.size();
    return true;
  }
  std::uint64_t size() const { return size_; }
  // The `n` bytes at `offset` into `out`; false (errno set) when they cannot be read back.
  bool ReadAt(std::uint64_t offset, std::size_t n, std::string& out) const {
    out.resize(n);
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = pread(*fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

 private:
  std::shared_ptr<int> fd_;
  std::uint64_t size_ = 0;
};

// A held line in the spill file's form: fixed fields, then each string with its 32-bit length.
void PutHeld(std::string& out, const Held& h) {
  auto put = [&out](const auto& value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  };
  const Record& r = h.record;
  put(h.line_no);
  put(h.at);
  put(static_cast<std::uint8_t>(r.kind));
  put(r.amount_minor);
  put(r.fee_minor);
  for (const std::string* text :
       {&r.provider, &r.merchant_id, &r.provider_transaction_id, &r.merchant_reference,
        &r.provider_refund_id, &r.refund_reference, &r.currency, &r.occurred_at, &r.status}) {
    put(static_cast<std::uint32_t>(text->size()));
    out.append(*text);
  }
}

// The next held line of `in` (PutHeld's form), consumed; false when `in` is cut short.
bool TakeHeld(std::string_view& in, Held& h) {
  auto take = [&in](auto& value) {
    if (in.size() < sizeof(value)) return false;
    std::memcpy(&value, in.data(), sizeof(value));
    in.remove_prefix(sizeof(value));
    return true;
  };
  Record& r = h.record;
  std::uint8_t kind = 0;
  if (!take(h.line_no) || !take(h.at) || !take(kind) || !take(r.amount_minor) ||
      !take(r.fee_minor)) {
    return false;
  }
  r.kind = kind == static_cast<std::uint8_t>(Record::Kind::kRefund) ? Record::Kind::kRefund
                                                                    : Record::Kind::kPayment;
  for (std::string* text :
       {&r.provider, &r.merchant_id, &r.provider_transaction_id, &r.merchant_reference,
        &r.provider_refund_id, &r.refund_reference, &r.currency, &r.occurred_at, &r.status}) {
    std::uint32_t size = 0;
    if (!take(size) || in.size() < size) return false;
    text->assign(in.substr(0, size));
    in.remove_prefix(size);
  }
  return true;
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < length; ++i) fmt::format_to(std::back_inserter(out), "{:02x}", digest[i]);
  return out;
}

// The state of one import while it runs: our items and their indexes, the COPY buffer, the
// totals of the bill and of each class, the exceptions to write.
struct Reconciler::Run {
  const Options* options = nullptr;
  ImportRequest request;
  std::int64_t import_id = 0;
  std::int64_t day_start = 0;
  std::int64_t day_end = 0;

  Items items;
  std::string copy;         // binary COPY data of recon_bill_items not sent yet
  // Lines matched by nothing while streaming, until every item is known: the newest up to
  // kHeldInMemory here, the older ones in held_spill, kHeldInMemory at a time (held_chunks: each
  // one's offset and size), so a bill of any length holds a bounded number in memory.
  static constexpr std::size_t kHeldInMemory = 32768;
  std::vector<Held> held;
  SpillFile held_spill;
  std::vector<std::pair<std::uint64_t, std::size_t>> held_chunks;
  // Exception rows past kCopyFlushBytes wait in exceptions_spill for their COPY.
  SpillFile exceptions_spill;
  std::vector<std::string> inquire_attempts, inquire_refunds;
  std::string exceptions;   // COPY text of recon_exceptions
  // Open timing exceptions of earlier bills, by "<our kind>:<our id>": a line of this bill that
  // takes the item settles them.
  std::unordered_map<std::string, std::vector<std::int64_t>> timing_open;
  std::vector<std::int64_t> timing_settled;
  std::array<ClassTotals, kClasses> classes{};

  std::int32_t line_no = 0;
  std::string currency;
  std::int64_t paid = 0, refunded = 0, fees = 0, tolerated = 0;
  adapters::bill::Totals totals;
  std::string error;  // why the file was refused
  // Set when a spill file fails (the disk, not the bill): the import fails with spill_code.
  std::string spill_error;
  std::error_code spill_code;

  void SpillFailed(std::string message, std::error_code code) {
    spill_error = std::move(message);
    spill_code = code;
  }
  std::string scratch;  // builds attempt ids without an allocation each
  // Milliseconds per phase ("items=.. lines=.."), logged with the import: where a slow one went.
  std::string phases;
  std::chrono::steady_clock::time_point lap = std::chrono::steady_clock::now();

  void Lap(std::string_view phase) {
    const auto now = std::chrono::steady_clock::now();
    fmt::format_to(std::back_inserter(phases), "{}{}_ms={}", phases.empty() ? "" : " ", phase,
                   std::chrono::duration_cast<std::chrono::milliseconds>(now - lap).count());
    lap = now;
  }

  Item* Find(const Record& r, Rule* rule) {
    const bool refund = r.kind == Record::Kind::kRefund;
    const ItemKind kind = refund ? ItemKind::kRefund : ItemKind::kAttempt;
    if (Item* item = items.ByReference(kind, refund ? r.refund_reference : r.merchant_reference)) {
      *rule = Rule::kReference;
      return item;
    }
    if (Item* item =
            items.ByTxid(kind, refund ? r.provider_refund_id : r.provider_transaction_id)) {
      *rule = Rule::kTransactionId;
      return item;
    }
    return nullptr;
  }

  bool InCutoffWindow(std::int64_t at) const {
    return at >= day_end - options->cutoff_window.count();
  }

  // Bill totals and the currency check, for every line.
  bool Account(const Record& r) {
    if (currency.empty()) currency = r.currency;
    if (r.currency != currency) {
      error = fmt::format("line {}: the bill mixes currencies ({} and {})", line_no, currency,
                          r.currency);
      return false;
    }
    const bool refund = r.kind == Record::Kind::kRefund;
    if (!refund) paid += r.amount_minor;
    // A refund that has not gone through moves neither its amount nor its returned fee: both
    // count on the bill where it did.
    const bool moved = !refund || RefundDone(r.status);
    if (refund && moved) refunded += r.amount_minor;
    if (moved) fees += r.fee_minor;
    return true;
  }

  void Claim(Item& item) {
    item.claimed = true;
    if (timing_open.empty()) return;
    scratch.assign(KindName(item.kind));
    scratch += ':';
    scratch += item.id;
    if (auto it = timing_open.find(scratch); it != timing_open.end()) {
      timing_settled.insert(timing_settled.end(), it->second.begin(), it->second.end());
      timing_open.erase(it);
    }
  }

  // A line with the item it matched (nullptr: none) and how: decides its class, writes its COPY
  // row and, where the sides disagree, its exception.
  void Decide(std::int32_t line, std::int64_t at, const Record& r, Item* item, Rule rule) {
    const bool refund = r.kind == Record::Kind::kRefund;
    const std::int64_t sign = refund ? -1 : 1;
    const bool done = refund ? RefundDone(r.status) : true;
    const std::int64_t theirs = done ? r.amount_minor : 0;
    Class c = Class::kMatched;
    std::int64_t delta = 0;
    std::string detail;
    if (item == nullptr) {
      c = InCutoffWindow(at) || !done ? Class::kTiming : Class::kMissingOurs;
      delta = -sign * theirs;
      rule = Rule::kNone;
    } else if (item->claimed) {
      c = Class::kDuplicate;
      delta = -sign * theirs;
      detail = fmt::format("{} {} is already matched by another line", KindName(item->kind),
                           item->id);
      item = nullptr;
      rule = Rule::kNone;
    } else {
      Claim(*item);
      const std::int64_t ours = item->succeeded ? item->amount : 0;
      delta = sign * (ours - theirs);
      if (done && !item->succeeded) {
        c = Class::kStatusMismatch;
        detail = "the provider says it succeeded; a status inquiry is scheduled";
        (item->kind == ItemKind::kAttempt ? inquire_attempts : inquire_refunds)
            .emplace_back(item->kind == ItemKind::kAttempt ? item->reference : item->id);
      } else if (!done && item->succeeded) {
        c = Class::kStatusMismatch;
        detail = fmt::format("we say succeeded, the provider says {}", r.status);
      } else if (!done) {
        c = Class::kTiming;
        detail = fmt::format("not final on either side (provider: {})", r.status);
      } else if (item->currency_code() != r.currency) {
        c = Class::kAmountMismatch;
        detail = fmt::format("currency {} here, {} in the bill", item->currency_code(), r.currency);
      } else if (std::llabs(delta) <= options->amount_tolerance_minor) {
        c = Class::kMatched;
        tolerated += delta;
        delta = 0;
      } else {
        c = Class::kAmountMismatch;
      }
    }
    BinaryCopyWriter row(copy);
    row.Row(kBillItemFields);
    row.Int8(import_id);
    row.Int4(line);
    row.Text(refund ? "refund" : "payment");
    row.Text(r.provider_transaction_id);
    row.Text(r.merchant_reference);
    row.Text(r.provider_refund_id);
    row.Text(r.refund_reference);
    row.Int8(r.amount_minor);
    row.Int8(r.fee_minor);
    row.Text(r.currency);
    row.TimestampUnix(at);
    row.Text(r.status);
    row.Text(ClassName(c));
    row.Text(RuleName(rule));
    if (item != nullptr) {
      row.Text(KindName(item->kind));
      row.Text(item->id);
      row.Int8(item->amount);
    } else {
      row.Null();
      row.Null();
      row.Null();
    }
    ClassTotals& totals_of_class = classes[static_cast<std::size_t>(c)];
    totals_of_class.count += 1;
    totals_of_class.our_amount_minor += item != nullptr ? item->amount : 0;
    totals_of_class.their_amount_minor += r.amount_minor;
    if (c != Class::kMatched) {
      const std::int32_t priority = c == Class::kStatusMismatch ? (done ? 1 : 2)
                                    : c == Class::kAmountMismatch ? 3
                                    : c == Class::kTiming         ? 8
                                    : c == Class::kDuplicate      ? 5
                                                                  : 4;
      const std::string& reference = refund ? r.refund_reference : r.merchant_reference;
      Raise(c, priority, line, item, reference, item ? std::optional(item->amount) : std::nullopt,
            r.amount_minor, delta, r.currency, detail);
    }
  }

  // An exception; one without a line (ours only) also counts in its class's totals, as the
  // report shows our items the bill lacks next to the bill's lines.
  void Raise(Class c, std::int32_t priority, std::int32_t line, const Item* item,
             std::string_view reference, std::optional<std::int64_t> ours,
             std::optional<std::int64_t> theirs, std::int64_t delta, std::string_view cur,
             std::string_view detail) {
    if (line <= 0) {
      ClassTotals& t = classes[static_cast<std::size_t>(c)];
      t.count += 1;
      t.our_amount_minor += ours.value_or(0);
    }
    CopyRow row(exceptions);
    row.Int(import_id)
        .Text(ClassName(c))
        .Text("open")
        .Int(priority)
        .Text(request.provider)
        .Text(request.merchant_account)
        .Text(request.bill_date);
    if (line > 0) {
      row.Int(line);
    } else {
      row.Null();
    }
    if (item != nullptr) {
      row.Text(KindName(item->kind)).Text(item->id);
    } else {
      row.Null().Null();
    }
    row.Text(reference);
    if (ours) {
      row.Int(*ours);
    } else {
      row.Null();
    }
    if (theirs) {
      row.Int(*theirs);
    } else {
      row.Null();
    }
    row.Int(delta).Text(cur).Text(detail);
    if (exceptions.size() >= kCopyFlushBytes && spill_error.empty()) {
      if (exceptions_spill.Append(exceptions)) {
        exceptions.clear();
      } else {
        const int e = errno;
        SpillFailed(fmt::format("cannot spill exception rows to a temporary file: errno {}", e),
                    std::error_code(e, std::generic_category()));
      }
    }
  }

  // Moves the held lines to the spill file, as one chunk.
  bool SpillHeld() {
    std::string bytes;
    for (const Held& h : held) PutHeld(bytes, h);
    const std::uint64_t offset = held_spill.size();
    if (!held_spill.Append(bytes)) {
      const int e = errno;
      SpillFailed(fmt::format("cannot spill held lines to a temporary file: errno {}", e),
                  std::error_code(e, std::generic_category()));
      error = spill_error;
      return false;
    }
    held_chunks.emplace_back(offset, bytes.size());
    held.clear();
    return true;
  }

  // The next chunk of held lines to settle, oldest first, into `chunk`: false when none is left.
  bool NextHeldChunk(std::vector<Held>& chunk) {
    chunk.clear();
    if (held_chunks.empty()) {
      chunk.swap(held);
      return !chunk.empty();
    }
    const auto [offset, size] = held_chunks.front();
    held_chunks.erase(held_chunks.begin());
    std::string bytes;
    if (!held_spill.ReadAt(offset, size, bytes)) {
      const int e = errno;
      SpillFailed(fmt::format("cannot read held lines back from their file: errno {}", e),
                  std::error_code(e, std::generic_category()));
      return false;
    }
    std::string_view in = bytes;
    while (!in.empty()) {
      Held h;
      if (!TakeHeld(in, h)) {
        SpillFailed("held lines came back from their file cut short",
                    std::make_error_code(std::errc::io_error));
        return false;
      }
      chunk.push_back(std::move(h));
    }
    return true;
  }

  // Called by the parsers for every line, in order.
  bool OnRecord(Record&& r) {
    // A spill that failed stops the stream here: what it could not take would pile up in memory.
    if (!spill_error.empty()) {
      error = spill_error;
      return false;
    }
    ++line_no;
    if (!Account(r)) return false;
    auto at = ParseTime(r.occurred_at);
    if (!at) {
      error = fmt::format("line {}: bad time '{}'", line_no, r.occurred_at);
      return false;
    }
    Rule rule = Rule::kNone;
    Item* item = Find(r, &rule);
    if (item == nullptr) {
      held.push_back(Held{.line_no = line_no, .at = *at, .record = std::move(r)});
      if (held.size() >= kHeldInMemory) return SpillHeld();
      return true;
    }
    Decide(line_no, *at, r, item, rule);
    return true;
  }

  void AddItem(ItemKind kind, std::string_view id, std::string_view reference,
               std::string_view txid, std::int64_t amount, std::string_view item_currency,
               bool succeeded, std::int64_t at, std::int64_t scope_from, std::int64_t scope_to) {
    Item& item = items.Add(kind, id, reference, txid, amount, item_currency, succeeded, at);
    item.in_scope = succeeded && at >= scope_from && at < scope_to;
  }

  // Adds items from a query with kItemColumns' shape.
  Result<void> AddItems(const PgResult& rows, std::int64_t scope_from, std::int64_t scope_to) {
    if (items.size() + static_cast<std::size_t>(rows.rows()) > Items::kMax) {
      return make_error_code(Errc::invalid_argument);
    }
    for (int i = 0; i < rows.rows(); ++i) {
      LEDGER_TRY(auto kind, rows.GetText(i, 0));
      LEDGER_TRY(auto id, rows.GetText(i, 1));
      LEDGER_TRY(auto reference, rows.GetText(i, 2));
      LEDGER_TRY(auto txid, rows.GetText(i, 3));
      LEDGER_TRY(auto amount, rows.GetInt64(i, 4));
      LEDGER_TRY(auto item_currency, rows.GetText(i, 5));
      LEDGER_TRY(auto succeeded, rows.GetBool(i, 6));
      LEDGER_TRY(auto at, rows.GetInt64(i, 7));
      AddItem(kind == "refund" ? ItemKind::kRefund : ItemKind::kAttempt, id, reference, txid,
              amount, item_currency, succeeded, at, scope_from, scope_to);
    }
    return outcome::success();
  }

  // Adds the item one row of kCopyItems holds; false when the row is not of that shape.
  bool AddCopiedItem(const std::vector<BinaryField>& f) {
    using R = BinaryCopyReader;
    if (f.size() != static_cast<std::size_t>(kCopyItemFields) || items.size() >= Items::kMax) {
      return false;
    }
    const auto refund = R::Bool(f[0]);
    const auto seq = R::Int4(f[2]);
    const auto amount = R::Int8(f[5]);
    const auto succeeded = R::Bool(f[7]);
    const auto at = R::TimestampUnix(f[8]);
    if (!refund || !f[1] || !seq || !f[3] || !f[4] || !amount || !f[6] || !succeeded || !at) {
      return false;
    }
    std::string_view id = *f[1];
    if (!*refund) {
      scratch.assign(id);
      fmt::format_to(std::back_inserter(scratch), ":{}", *seq);
      id = scratch;
    }
    AddItem(*refund ? ItemKind::kRefund : ItemKind::kAttempt, id, *f[3], *f[4], *amount, *f[6],
            *succeeded, *at, day_start, day_end);
    return true;
  }
};

Reconciler::Reconciler(db::PgPool& pool, ledger::PostgresLedger& ledger, Options options)
    : pool_(pool), ledger_(ledger), options_(std::move(options)) {}

asio::awaitable<RResult<Report>> Reconciler::Import(ImportRequest request, std::string_view bytes,
                                                    Deadline deadline) {
  std::string hash = Sha256Hex(bytes);
  bool given = false;
  ChunkReader read = [bytes, given]() mutable -> Result<std::string_view, Error> {
    if (given) return std::string_view();
    given = true;
    return bytes;
  };
  co_return co_await ImportStream(std::move(request), std::move(hash), std::move(read), {},
                                  deadline);
}

asio::awaitable<RResult<Report>> Reconciler::ImportStream(ImportRequest request,
                                                          std::string sha256_hex, ChunkReader read,
                                                          Progress progress, Deadline deadline) {
  // WeChat trade bills stream record by record, plain or gzip (inflated as it arrives), and so do
  // Alipay's and UnionPay's files once spooled to disk.
  std::uint64_t bytes_read = 0;
  auto next = [&]() -> Result<std::string_view, Error> {
    auto piece = read();
    if (piece && progress) progress(bytes_read += piece.value().size());
    return piece;
  };
  auto first = next();
  if (!first) co_return first.error();
  std::string_view head = first.value();
  const bool streamable = request.provider == "wechatpay";
  const bool gzip = head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b';

  std::function<Result<bool, Error>(Run&)> feed;
  if (streamable) {
    auto reader = std::make_shared<std::unique_ptr<adapters::wechatpay::TradeBillReader>>();
    auto pending = std::make_shared<std::string_view>(head);
    auto finished = std::make_shared<bool>(false);
    // A gzip bill is inflated a piece at a time; its bound limits the work, not memory.
    std::shared_ptr<adapters::archive::InflateStream> inflater;
    if (gzip) {
      inflater = std::make_shared<adapters::archive::InflateStream>(
          adapters::archive::InflateStream::Wrapper::kGzip,
          adapters::archive::kStreamedInflatedMax);
    }
    feed = [reader, pending, finished, inflater, next](Run& run) mutable -> Result<bool, Error> {
      if (!*reader) {
        *reader = std::make_unique<adapters::wechatpay::TradeBillReader>(
            [&run](Record&& r) -> adapters::wechatpay::WxResult<void> {
              if (!run.OnRecord(std::move(r))) return adapters::wechatpay::Fail(run.error);
              return outcome::success();
            });
      }
      if (*finished) return false;
      std::string_view piece = *pending;
      if (piece.empty()) {
        auto more = next();
        if (!more) return more.error();
        piece = more.value();
      }
      *pending = {};
      if (piece.empty()) {
        *finished = true;
        if (inflater) {
          if (auto ended = inflater->Finish(); !ended) {
            return Error(Errc::bad_file, ended.error().message);
          }
        }
        auto totals = (*reader)->Finish();
        if (!totals) return Error(Errc::bad_file, totals.error().message);
        run.totals = totals.value();
        return false;
      }
      std::string refused;  // why the reader refused an inflated piece
      auto parse = [&](std::string_view text) {
        auto fed = (*reader)->Feed(text);
        if (!fed) refused = run.error.empty() ? fed.error().message : run.error;
        return static_cast<bool>(fed);
      };
      if (inflater) {
        auto inflated = inflater->Feed(piece, parse);
        if (!inflated) {
          return Error(Errc::bad_file, refused.empty() ? inflated.error().message : refused);
        }
      } else if (!parse(piece)) {
        return Error(Errc::bad_file, refused);
      }
      return true;
    };
  } else if (request.provider == "alipay" || request.provider == "unionpay") {
    // Archives need their central directory, at the end: the file is spooled to an unlinked
    // temporary file (disk, not memory), then its entry inflated and parsed a piece at a time.
    auto spool = SpoolToTempFile(head, next);
    if (!spool) co_return spool.error();
    auto fd = std::move(spool).value();
    auto stream = std::make_shared<std::unique_ptr<adapters::BillFileStream>>();
    std::shared_ptr<Run*> target = std::make_shared<Run*>(nullptr);
    auto opened = adapters::BillFileStream::Open(
        request.provider, request.file_name, *fd,
        [target](Record&& r) -> Result<void, std::string> {
          Run& run = **target;
          if (!run.OnRecord(std::move(r))) return run.error;
          return outcome::success();
        });
    if (!opened) co_return Error(Errc::bad_file, opened.error());
    *stream = std::move(opened).value();
    feed = [fd, stream, target](Run& run) -> Result<bool, Error> {
      *target = &run;
      auto more = (*stream)->Next();
      if (!more) return Error(Errc::bad_file, more.error());
      if (!more.value()) run.totals = (*stream)->totals();
      return more.value();
    };
  } else {
    std::string whole(head);
    for (;;) {
      auto more = next();
      if (!more) co_return more.error();
      if (more.value().empty()) break;
      whole.append(more.value());
    }
    auto parsed = adapters::ParseBillFile(request.provider, request.file_name, whole);
    if (!parsed) co_return Error(Errc::bad_file, parsed.error());
    auto file = std::make_shared<adapters::bill::File>(std::move(parsed).value());
    feed = [file](Run& run) -> Result<bool, Error> {
      for (auto& record : file->records) {
        if (!run.OnRecord(std::move(record))) return Error(Errc::bad_file, run.error);
      }
      run.totals = file->totals;
      file->records.clear();
      return false;
    };
  }
  co_return co_await ImportRecords(std::move(request), std::move(sha256_hex), std::move(feed),
                                   deadline);
}

asio::awaitable<RResult<Report>> Reconciler::ImportRecords(
    ImportRequest request, std::string sha256_hex, std::function<Result<bool, Error>(Run&)> feed,
    Deadline deadline) {
  auto date = ParseDate(request.bill_date);
  if (!date) co_return Error(Errc::invalid_argument, "bill_date must be YYYY-MM-DD");
  if (request.provider.empty() || request.merchant_account.empty()) {
    co_return Error(Errc::invalid_argument, "provider and merchant_account are required");
  }
  if (request.provider.find('\0') != std::string::npos ||
      request.merchant_account.find('\0') != std::string::npos) {
    co_return Error(Errc::invalid_argument, "provider and merchant_account cannot hold NUL");
  }
  // The accounts the postings need (idempotent, outside the import's transaction).
  ledger::ChartSpec spec;
  spec.currency = "CNY";
  spec.clearing.push_back({request.provider, request.merchant_account});
  spec.banks.push_back(options_.settlement_bank);
  const std::string clearing =
      "provider_clearing:" + request.provider + ":" + request.merchant_account;

  Run run;
  run.options = &options_;
  run.request = request;
  run.day_start = *date - options_.bill_utc_offset.count();
  run.day_end = run.day_start + 86400;

  std::string failure;  // a message for errors the transaction body returns as codes
  bool already = false;
  std::int64_t import_id = 0;
  db::TransactionOptions tx;
  // The file is streamed once: a retry could not read it again. The caller retries the import.
  tx.retry.attempts_max = 1;

  auto body = [&](PgConnection& conn) -> asio::awaitable<Result<std::int64_t>> {
    const std::string lock_key =
        "recon:" + request.provider + ":" + request.merchant_account + ":" + request.bill_date;
    LEDGER_CO_TRYV(co_await conn.Execute(kBeginImport, Params().Add(lock_key), deadline));
    LEDGER_CO_TRY(auto existing,
                  co_await conn.Execute(
                      "SELECT id FROM recon_imports WHERE provider = $1 AND merchant_account = $2 "
                      "AND bill_date = $3::date AND file_sha256 = $4",
                      Params()
                          .Add(request.provider)
                          .Add(request.merchant_account)
                          .Add(request.bill_date)
                          .Add(sha256_hex),
                      deadline));
    if (existing.rows() == 1) {
      already = true;
      co_return existing.GetInt64(0, 0);
    }
    LEDGER_CO_TRY(auto previous,
                  co_await conn.Execute(
                      "SELECT id, version, fee_amount_minor, settlement_minor, tolerated_minor, "
                      "currency FROM recon_imports WHERE provider = $1 AND merchant_account = $2 "
                      "AND bill_date = $3::date AND state = 'current'",
                      Params().Add(request.provider).Add(request.merchant_account).Add(
                          request.bill_date),
                      deadline));
    std::int64_t prev_id = 0, prev_fee = 0, prev_settlement = 0, prev_tolerated = 0;
    std::int32_t version = 1;
    if (previous.rows() == 1) {
      LEDGER_CO_TRY(prev_id, previous.GetInt64(0, 0));
      LEDGER_CO_TRY(auto v, previous.GetInt64(0, 1));
      version = static_cast<std::int32_t>(v) + 1;
      LEDGER_CO_TRY(prev_fee, previous.GetInt64(0, 2));
      LEDGER_CO_TRY(prev_settlement, previous.GetInt64(0, 3));
      LEDGER_CO_TRY(prev_tolerated, previous.GetInt64(0, 4));
      // The corrected file replaces the previous version: its lines release their items and its
      // open exceptions are superseded by the ones this version raises.
      const std::string prev_text = std::to_string(prev_id);
      LEDGER_CO_TRYV(co_await conn.Execute(
          "UPDATE recon_imports SET state = 'superseded' WHERE id = $1::bigint",
          Params().Add(prev_id), deadline));
      LEDGER_CO_TRYV(co_await conn.Execute(
          "UPDATE recon_bill_items SET superseded = true WHERE import_id = $1::bigint",
          Params().Add(prev_id), deadline));
      // (A settlement_mismatch is a settlement line's, not the file's: settlement.h.)
      LEDGER_CO_TRYV(co_await conn.Execute(
          "UPDATE recon_exceptions SET status = 'superseded', updated_at = now() "
          "WHERE import_id = $1::bigint AND status IN ('open', 'assigned') "
          "AND class <> 'settlement_mismatch'",
          Params().Add(prev_id), deadline));
    }
    LEDGER_CO_TRY(auto inserted,
                  co_await conn.Execute(
                      "INSERT INTO recon_imports (provider, merchant_account, bill_date, "
                      "file_sha256, file_name, version, previous_import_id, state, principal, "
                      "settled_on_import) "
                      "VALUES ($1, $2, $3::date, $4, $5, $6, NULLIF($7, 0), 'current', $8, $9) "
                      "RETURNING id",
                      Params()
                          .Add(request.provider)
                          .Add(request.merchant_account)
                          .Add(request.bill_date)
                          .Add(sha256_hex)
                          .Add(request.file_name.substr(0, 255))
                          .Add(version)
                          .Add(prev_id)
                          .Add(request.principal)
                          .Add(options_.settle_on_import),
                      deadline));
    LEDGER_CO_TRY(run.import_id, inserted.GetInt64(0, 0));
    run.Lap("begin");

    // Our items around the day: the day itself is what the bill should hold; a day either side
    // catches lines booked across midnight. Lines naming older items are looked up afterwards.
    {
      BinaryCopyReader reader;
      std::vector<BinaryField> fields;
      bool malformed = false;
      const std::function<void(std::string_view)> on_row = [&](std::string_view message) {
        if (malformed) return;
        switch (reader.Next(message, fields)) {
          case BinaryCopyReader::Status::kRow:
            malformed = !run.AddCopiedItem(fields);
            break;
          case BinaryCopyReader::Status::kEnd:
            break;
          case BinaryCopyReader::Status::kMalformed:
            malformed = true;
            break;
        }
      };
      const std::string sql = CopyItemsSql(request.provider, request.merchant_account,
                                           run.day_start - 86400, run.day_end + 86400);
      LEDGER_CO_TRYV(co_await conn.CopyOut(sql, on_row, deadline));
      if (malformed) {
        failure = "our items did not load (unexpected COPY data)";
        co_return make_error_code(db::Errc::protocol_error);
      }
    }
    run.Lap("items");
    // Open timing differences of earlier bills, which a line of this one may settle.
    {
      LEDGER_CO_TRY(auto rows,
                    co_await conn.Execute(
                        "SELECT id, our_kind || ':' || our_id FROM recon_exceptions "
                        "WHERE class = 'timing' AND status IN ('open', 'assigned') "
                        "AND provider = $1 AND merchant_account = $2 AND our_id IS NOT NULL",
                        Params().Add(request.provider).Add(request.merchant_account), deadline));
      for (int i = 0; i < rows.rows(); ++i) {
        LEDGER_CO_TRY(const std::int64_t id, rows.GetInt64(i, 0));
        LEDGER_CO_TRY(const std::string_view key, rows.GetText(i, 1));
        run.timing_open[std::string(key)].push_back(id);
      }
    }

    // The lines go in by binary COPY as they are parsed and matched.
    LEDGER_CO_TRYV(co_await conn.CopyBegin(kCopyBillItems, deadline));
    BinaryCopyWriter(run.copy).Header();
    for (;;) {
      auto more = feed(run);
      if (!more) {
        failure = more.error().message;
        co_await conn.CopyEnd(deadline, "bill refused");
        if (!run.spill_error.empty()) co_return run.spill_code;
        co_return make_error_code(Errc::bad_file);
      }
      if (!more.value()) BinaryCopyWriter(run.copy).Trailer();
      if (run.copy.size() >= kCopyFlushBytes || !more.value()) {
        LEDGER_CO_TRYV(co_await conn.CopyData(run.copy, deadline));
        run.copy.clear();
      }
      if (!more.value()) break;
    }
    LEDGER_CO_TRYV(co_await conn.CopyEnd(deadline));
    run.Lap("lines");

    // Lines no item matched while streaming: items outside the loaded days, by reference or id,
    // then by rule. A chunk at a time (Run::held_chunks), oldest first, each with its own look-up
    // and COPY, so memory stays bounded however many lines wait.
    std::multimap<std::int64_t, Item*> candidates;  // unclaimed succeeded items by amount
    bool candidates_built = false;
    std::vector<Held> chunk;
    while (run.NextHeldChunk(chunk)) {
      std::vector<std::string> refs, txids;
      for (const Held& h : chunk) {
        const bool refund = h.record.kind == Record::Kind::kRefund;
        refs.push_back(refund ? h.record.refund_reference : h.record.merchant_reference);
        txids.push_back(refund ? h.record.provider_refund_id : h.record.provider_transaction_id);
      }
      const std::string sql = std::string(kItemColumns) +
                              "WHERE a.provider = $1 AND a.merchant_account = $2 AND "
                              "(a.provider_reference = ANY($3::text[]) OR "
                              "(a.provider_transaction_id <> '' AND a.provider_transaction_id = "
                              "ANY($4::text[]))) AND NOT EXISTS (SELECT 1 FROM recon_bill_items b "
                              "WHERE b.our_kind = 'attempt' AND b.our_id = a.order_id || ':' || "
                              "a.seq AND NOT b.superseded) AND (a.updated_at < to_timestamp($5) OR "
                              "a.updated_at >= to_timestamp($6)) UNION ALL " +
                              std::string(kRefundColumns) +
                              "WHERE o.provider = $1 AND o.merchant_account = $2 AND "
                              "(r.provider_reference = ANY($3::text[]) OR "
                              "(r.provider_transaction_id <> '' AND r.provider_transaction_id = "
                              "ANY($4::text[]))) AND NOT EXISTS (SELECT 1 FROM recon_bill_items b "
                              "WHERE b.our_kind = 'refund' AND b.our_id = r.id AND NOT "
                              "b.superseded) AND (r.updated_at < to_timestamp($5) OR "
                              "r.updated_at >= to_timestamp($6))";
      LEDGER_CO_TRY(auto rows, co_await conn.Execute(sql,
                                                     Params()
                                                         .Add(request.provider)
                                                         .Add(request.merchant_account)
                                                         .AddUntyped(ArrayLiteral(refs))
                                                         .AddUntyped(ArrayLiteral(txids))
                                                         .Add(run.day_start - 86400)
                                                         .Add(run.day_end + 86400),
                                                     deadline));
      // Found this way they are matched if a line names them, but never expected by this bill.
      const std::size_t known = run.items.size();
      LEDGER_CO_TRYV(run.AddItems(rows, 0, 0));

      // Then by reference or id again, then by rule: same kind and currency, amount within the
      // tolerance, time within the window, closest time first; what is left has no counterpart.
      BinaryCopyWriter(run.copy).Header();
      std::vector<Held*> unmatched;
      for (Held& h : chunk) {
        Rule rule = Rule::kNone;
        if (Item* item = run.Find(h.record, &rule)) {
          run.Decide(h.line_no, h.at, h.record, item, rule);
        } else {
          unmatched.push_back(&h);
        }
      }
      if (options_.rule_window.count() > 0 && !unmatched.empty()) {
        // Every item once, when first needed; then the ones each chunk's look-up adds.
        for (auto it = candidates_built ? run.items.begin() + static_cast<std::ptrdiff_t>(known)
                                        : run.items.begin();
             it != run.items.end(); ++it) {
          if (!it->claimed && it->succeeded) candidates.emplace(it->amount, &*it);
        }
        candidates_built = true;
      }
      for (Held* h : unmatched) {
        Item* best = nullptr;
        const Record& r = h->record;
        const ItemKind want =
            r.kind == Record::Kind::kRefund ? ItemKind::kRefund : ItemKind::kAttempt;
        const std::int64_t tol = options_.amount_tolerance_minor;
        for (auto it = candidates.lower_bound(r.amount_minor - tol);
             it != candidates.end() && it->first <= r.amount_minor + tol; ++it) {
          Item* c = it->second;
          if (c->claimed || c->kind != want || c->currency_code() != r.currency) continue;
          const std::int64_t gap = std::llabs(c->at - h->at);
          if (gap > options_.rule_window.count()) continue;
          if (best == nullptr || gap < std::llabs(best->at - h->at)) best = c;
        }
        run.Decide(h->line_no, h->at, r, best, best ? Rule::kRule : Rule::kNone);
      }
      BinaryCopyWriter(run.copy).Trailer();
      LEDGER_CO_TRYV(co_await conn.CopyBegin(kCopyBillItems, deadline));
      LEDGER_CO_TRYV(co_await conn.CopyData(run.copy, deadline));
      LEDGER_CO_TRYV(co_await conn.CopyEnd(deadline));
      run.copy.clear();
    }
    if (!run.spill_error.empty()) {
      failure = run.spill_error;
      co_return run.spill_code;
    }

    run.Lap("held");
    // Our items the bill should have held and does not.
    for (const Item& item : run.items) {
      if (!item.in_scope || item.claimed) continue;
      const bool timing = run.InCutoffWindow(item.at);
      const std::int64_t sign = item.kind == ItemKind::kRefund ? -1 : 1;
      run.Raise(timing ? Class::kTiming : Class::kMissingProvider, timing ? 8 : 4, 0, &item,
                item.reference, item.amount, std::nullopt, sign * item.amount,
                item.currency_code(), timing ? ScopeNote(options_) : "");
    }
    if (!run.spill_error.empty()) {
      failure = run.spill_error;
      co_return run.spill_code;
    }
    if (!run.exceptions.empty() || run.exceptions_spill.size() > 0) {
      LEDGER_CO_TRYV(co_await conn.CopyBegin(
          "COPY recon_exceptions (import_id, class, status, priority, provider, merchant_account, "
          "bill_date, line_no, our_kind, our_id, reference, our_amount_minor, their_amount_minor, "
          "delta_minor, currency, detail) FROM STDIN",
          deadline));
      // The spilled rows first, a piece at a time (COPY text rows end with their newline, so
      // the pieces may cut them anywhere), then the rest.
      std::string piece;
      for (std::uint64_t at = 0; at < run.exceptions_spill.size(); at += piece.size()) {
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(kCopyFlushBytes, run.exceptions_spill.size() - at));
        if (!run.exceptions_spill.ReadAt(at, n, piece)) {
          const int e = errno;
          failure = fmt::format("cannot read exception rows back from their file: errno {}", e);
          co_await conn.CopyEnd(deadline, "spill file unreadable");
          co_return std::error_code(e, std::generic_category());
        }
        LEDGER_CO_TRYV(co_await conn.CopyData(piece, deadline));
      }
      LEDGER_CO_TRYV(co_await conn.CopyData(run.exceptions, deadline));
      LEDGER_CO_TRYV(co_await conn.CopyEnd(deadline));
    }

    // The provider says paid and we do not: ask the provider now (the payments janitor's table).
    for (const auto& [kind, ids] : {std::pair{"inquire_attempt", &run.inquire_attempts},
                                    std::pair{"inquire_refund", &run.inquire_refunds}}) {
      if (ids->empty()) continue;
      LEDGER_CO_TRYV(co_await conn.Execute(
          "INSERT INTO janitor_tasks (kind, object_id, due_at) SELECT $1, id, now() "
          "FROM unnest($2::text[]) AS id ON CONFLICT (kind, object_id) DO UPDATE "
          "SET due_at = now(), manual = false",
          Params().Add(kind).AddUntyped(ArrayLiteral(*ids)), deadline));
    }

    // Timing differences of earlier days that this bill now settles (found while matching).
    if (!run.timing_settled.empty()) {
      LEDGER_CO_TRYV(co_await conn.Execute(
          "UPDATE recon_exceptions SET status = 'resolved', resolution = 'matched by the bill of ' "
          "|| $2, resolved_by = 'recon', resolved_at = now(), updated_at = now() "
          "WHERE id = ANY($1::bigint[]) AND status IN ('open', 'assigned')",
          Params().AddUntyped(ArrayLiteral(run.timing_settled)).Add(request.bill_date),
          deadline));
    }

    // Counts and amounts per class, for reports: the lines never change once written.
    {
      std::vector<std::string> names;
      std::vector<std::int64_t> counts, ours, theirs;
      for (std::size_t c = 0; c < kClasses; ++c) {
        if (run.classes[c].count == 0) continue;
        names.emplace_back(ClassName(static_cast<Class>(c)));
        counts.push_back(run.classes[c].count);
        ours.push_back(run.classes[c].our_amount_minor);
        theirs.push_back(run.classes[c].their_amount_minor);
      }
      if (!names.empty()) {
        LEDGER_CO_TRYV(co_await conn.Execute(
            "INSERT INTO recon_import_classes (import_id, class, count, our_amount_minor, "
            "their_amount_minor) SELECT $1::bigint, * FROM unnest($2::text[], $3::bigint[], "
            "$4::bigint[], $5::bigint[])",
            Params()
                .Add(run.import_id)
                .AddUntyped(ArrayLiteral(names))
                .AddUntyped(ArrayLiteral(counts))
                .AddUntyped(ArrayLiteral(ours))
                .AddUntyped(ArrayLiteral(theirs)),
            deadline));
      }
    }

    // What changed against the previous version.
    std::int64_t added = 0, removed = 0, changed = 0;
    if (prev_id != 0) {
      LEDGER_CO_TRY(auto diff,
                    co_await conn.Execute(
                        "SELECT count(*) FILTER (WHERE o.line_no IS NULL), "
                        "count(*) FILTER (WHERE n.line_no IS NULL), "
                        "count(*) FILTER (WHERE n.line_no IS NOT NULL AND o.line_no IS NOT NULL "
                        "AND (n.amount_minor, n.fee_minor, n.status, n.currency) IS DISTINCT FROM "
                        "(o.amount_minor, o.fee_minor, o.status, o.currency)) "
                        "FROM (SELECT * FROM recon_bill_items WHERE import_id = $1::bigint) n "
                        "FULL JOIN (SELECT * FROM recon_bill_items WHERE import_id = $2::bigint) o "
                        "ON n.kind = o.kind AND n.provider_transaction_id = "
                        "o.provider_transaction_id AND n.provider_refund_id = o.provider_refund_id",
                        Params().Add(run.import_id).Add(prev_id), deadline));
      LEDGER_CO_TRY(added, diff.GetInt64(0, 0));
      LEDGER_CO_TRY(removed, diff.GetInt64(0, 1));
      LEDGER_CO_TRY(changed, diff.GetInt64(0, 2));
    }

    run.Lap("exceptions");
    // Ledger effects, in this transaction; a corrected version posts only its difference.
    const std::string currency = run.currency.empty() ? "CNY" : run.currency;
    // Without settle_on_import the lines wait for their settlement line (settlement.h); a
    // version after one that did settle reverses that settlement, as its lines now wait too.
    const std::int64_t settlement =
        options_.settle_on_import ? run.paid - run.refunded - run.fees : 0;
    const ledger::AccountId clearing_id = ledger::AccountIdFor(currency, clearing);
    std::vector<ledger::Transfer> transfers;
    auto post = [&](std::string_view what, std::int64_t amount, std::string_view other,
                    std::int32_t reason) {
      if (amount == 0) return;
      ledger::Transfer t;
      t.id.value = fmt::format("recon:{}:{}", what, run.import_id);
      const ledger::AccountId other_id = ledger::AccountIdFor(currency, other);
      // Positive: the clearing account gives the money up (credit); negative: it receives it.
      t.debit_account_id = amount > 0 ? other_id : clearing_id;
      t.credit_account_id = amount > 0 ? clearing_id : other_id;
      t.amount = std::llabs(amount);
      t.currency = currency;
      t.reason_code = reason;
      t.external_ref = fmt::format("recon_import:{}", run.import_id);
      transfers.push_back(std::move(t));
    };
    post("fee", run.fees - prev_fee, "provider_fees:" + request.provider, kReasonFee);
    post("settle", settlement - prev_settlement, "bank:" + options_.settlement_bank,
         kReasonSettlement);
    post("tolerance", run.tolerated - prev_tolerated, "suspense", kReasonAdjustment);
    if (!transfers.empty()) {
      LEDGER_CO_TRY(auto results,
                    co_await ledger_.PostTransfersInTransaction(conn, transfers, deadline));
      for (std::size_t i = 0; i < results.size(); ++i) {
        if (results[i] != ledger::TransferResult::kOk &&
            results[i] != ledger::TransferResult::kExists) {
          failure = fmt::format("ledger refused {}: {}", transfers[i].id.value,
                                ledger::ToString(results[i]));
          co_return make_error_code(Errc::ledger_rejected);
        }
      }
    }

    run.Lap("ledger");
    // Balance reconciliation: the clearing account against the bill's day-end figures. After the
    // settlement it should hold only what open exceptions explain, plus our traffic after the day
    // that no bill has settled yet; anything else is drift. Our traffic after the day is found by
    // its updated_at index (0012) and each item's claim looked up in the unique index, one probe
    // an item: written as a correlated scalar rather than NOT EXISTS, which the planner, seeing the
    // statistics of recon_bill_items from before this import's million rows, turned into a hash of
    // every line (0.45 s of a 1M-line import).
    LEDGER_CO_TRY(auto balance,
                  co_await conn.Execute(
                      "SELECT coalesce((SELECT debits_posted - credits_posted FROM ledger_accounts "
                      "WHERE id = $1), 0), "
                      "coalesce((SELECT sum(delta_minor) FROM recon_exceptions WHERE provider = $2 "
                      "AND merchant_account = $3 AND currency = $4 AND status IN ('open', "
                      "'assigned')), 0)::bigint, "
                      "coalesce((SELECT sum(o.amount_minor) FROM payment_attempts a JOIN "
                      "payment_orders o ON o.id = a.order_id WHERE a.provider = $2 AND "
                      "a.merchant_account = $3 AND o.currency = $4 AND a.status = 'succeeded' AND "
                      "a.updated_at >= to_timestamp($5) AND (SELECT 1 FROM recon_bill_items b "
                      "WHERE b.our_kind = 'attempt' AND b.our_id = a.order_id || ':' || a.seq AND "
                      "NOT b.superseded LIMIT 1) IS NULL), 0)::bigint - "
                      "coalesce((SELECT sum(r.amount_minor) FROM payment_refunds r JOIN "
                      "payment_orders o ON o.id = r.order_id WHERE o.provider = $2 AND "
                      "o.merchant_account = $3 AND r.currency = $4 AND r.status = 'succeeded' AND "
                      "r.updated_at >= to_timestamp($5) AND (SELECT 1 FROM recon_bill_items b "
                      "WHERE b.our_kind = 'refund' AND b.our_id = r.id AND NOT b.superseded "
                      "LIMIT 1) IS NULL), 0)::bigint",
                      Params()
                          .Add(clearing_id.value)
                          .Add(request.provider)
                          .Add(request.merchant_account)
                          .Add(currency)
                          .Add(run.day_end),
                      deadline));
    LEDGER_CO_TRY(const std::int64_t clearing_balance, balance.GetInt64(0, 0));
    LEDGER_CO_TRY(const std::int64_t open_delta, balance.GetInt64(0, 1));
    LEDGER_CO_TRY(const std::int64_t later, balance.GetInt64(0, 2));
    LEDGER_CO_TRY(const std::int64_t unsettled,
                  co_await UnsettledNetMinor(conn, request.provider, request.merchant_account,
                                             currency, deadline));
    const std::int64_t explained = open_delta + later + unsettled;

    LEDGER_CO_TRYV(co_await conn.Execute(
        "UPDATE recon_imports SET line_count = $2, payment_count = $3, payment_amount_minor = $4, "
        "refund_count = $5, refund_amount_minor = $6, fee_amount_minor = $7, currency = $8, "
        "settlement_minor = $9, tolerated_minor = $10, clearing_balance_minor = $11, "
        "explained_minor = $12, drift_minor = $13, diff_added = $14, diff_removed = $15, "
        "diff_changed = $16 WHERE id = $1",
        Params()
            .Add(run.import_id)
            .Add(static_cast<std::int64_t>(run.line_no))
            .Add(run.totals.payment_count)
            .Add(run.totals.payment_amount_minor)
            .Add(run.totals.refund_count)
            .Add(run.totals.refund_amount_minor)
            .Add(run.fees)
            .Add(currency)
            .Add(settlement)
            .Add(run.tolerated)
            .Add(clearing_balance)
            .Add(explained)
            .Add(clearing_balance - explained)
            .Add(added)
            .Add(removed)
            .Add(changed),
        deadline));
    const std::string audit_detail =
        fmt::format("{} {} {} v{} sha256={} lines={}", request.provider, request.merchant_account,
                    request.bill_date, version, sha256_hex, run.line_no);
    LEDGER_CO_TRYV(co_await conn.Execute(
        "INSERT INTO recon_audit (principal, action, object_type, object_id, detail) "
        "VALUES ($1, 'import', 'reconciliation', $2, $3)",
        Params().Add(request.principal).Add(std::to_string(run.import_id)).Add(audit_detail),
        deadline));
    run.Lap("balance");
    co_return run.import_id;
  };

  auto created = co_await ledger_.CreateAccounts(ledger::StandardChart(spec), deadline);
  if (!created) co_return Error(created.error());
  auto done = co_await db::RunInTransaction(pool_, deadline, tx, body);
  if (!done) {
    if (!failure.empty()) co_return Error(done.error(), failure);
    co_return Error(done.error());
  }
  import_id = done.value();
  if (!already) {
    run.Lap("commit");
    log::Get("recon")->info("event=recon_imported import_id={} lines={} {}", import_id,
                            run.line_no, run.phases);
  }
  auto report = co_await GetReport(import_id, deadline);
  if (report) report.value().already_imported = already;
  co_return report;
}

asio::awaitable<RResult<Report>> Reconciler::GetReport(std::int64_t import_id,
                                                       Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return Error(lease.error());
  PgConnection& conn = *lease.value();
  auto head = co_await conn.Execute(
      "SELECT id, provider, merchant_account, bill_date::text, version, state, line_count, "
      "currency, payment_amount_minor, refund_amount_minor, fee_amount_minor, "
      "clearing_balance_minor, explained_minor, drift_minor, diff_added, diff_removed, "
      "diff_changed FROM recon_imports WHERE id = $1",
      Params().Add(import_id), deadline);
  if (!head) co_return Error(head.error());
  if (head.value().rows() != 1) co_return Error(Errc::not_found, "no such reconciliation");
  const PgResult& h = head.value();
  Report report;
  auto text = [&](int col) { return std::string(h.GetText(0, col).value()); };
  auto num = [&](int col) { return h.GetInt64(0, col).value(); };
  report.import_id = num(0);
  report.provider = text(1);
  report.merchant_account = text(2);
  report.bill_date = text(3);
  report.version = static_cast<std::int32_t>(num(4));
  report.state = text(5);
  report.lines = num(6);
  report.currency = text(7);
  report.payment_amount_minor = num(8);
  report.refund_amount_minor = num(9);
  report.fee_amount_minor = num(10);
  report.clearing_balance_minor = num(11);
  report.explained_minor = num(12);
  report.drift_minor = num(13);
  report.diff_added = num(14);
  report.diff_removed = num(15);
  report.diff_changed = num(16);
  auto classes = co_await conn.Execute(
      "SELECT class, count, our_amount_minor, their_amount_minor FROM recon_import_classes "
      "WHERE import_id = $1",
      Params().Add(import_id), deadline);
  if (!classes) co_return Error(classes.error());
  const PgResult& c = classes.value();
  for (int i = 0; i < c.rows(); ++i) {
    ClassTotals& t = report.classes[std::string(c.GetText(i, 0).value())];
    t.count += c.GetInt64(i, 1).value();
    t.our_amount_minor += c.GetInt64(i, 2).value();
    t.their_amount_minor += c.GetInt64(i, 3).value();
  }
  co_return report;
}

asio::awaitable<RResult<std::vector<Report>>> Reconciler::ReportsForDate(std::string bill_date,
                                                                         Deadline deadline) {
  if (!ParseDate(bill_date)) co_return Error(Errc::invalid_argument, "date must be YYYY-MM-DD");
  std::vector<std::int64_t> ids;
  {
    auto lease = co_await pool_.Acquire(deadline);
    if (!lease) co_return Error(lease.error());
    auto rows = co_await lease.value()->Execute(
        "SELECT id FROM recon_imports WHERE bill_date = $1::date AND state = 'current' "
        "ORDER BY provider, merchant_account",
        Params().Add(bill_date), deadline);
    if (!rows) co_return Error(rows.error());
    for (int i = 0; i < rows.value().rows(); ++i) ids.push_back(rows.value().GetInt64(i, 0).value());
  }
  std::vector<Report> out;
  for (std::int64_t id : ids) {
    auto report = co_await GetReport(id, deadline);
    if (!report) co_return report.error();
    out.push_back(std::move(report).value());
  }
  co_return out;
}

namespace {

constexpr std::string_view kExceptionColumns =
    "SELECT id, import_id, class, status, priority, provider, merchant_account, bill_date::text, "
    "coalesce(our_kind, ''), coalesce(our_id, ''), reference, our_amount_minor, "
    "their_amount_minor, delta_minor, currency, detail, assignee, resolution, "
    "adjustment_transfer_id FROM recon_exceptions ";

Result<Exception> ParseException(const PgResult& r, int i) {
  Exception e;
  LEDGER_TRY(e.id, r.GetInt64(i, 0));
  LEDGER_TRY(e.import_id, r.GetInt64(i, 1));
  auto text = [&](int col) { return std::string(r.GetText(i, col).value()); };
  e.klass = text(2);
  e.status = text(3);
  LEDGER_TRY(auto priority, r.GetInt64(i, 4));
  e.priority = static_cast<std::int32_t>(priority);
  e.provider = text(5);
  e.merchant_account = text(6);
  e.bill_date = text(7);
  e.our_kind = text(8);
  e.our_id = text(9);
  e.reference = text(10);
  if (!r.IsNull(i, 11)) e.our_amount_minor = r.GetInt64(i, 11).value();
  if (!r.IsNull(i, 12)) e.their_amount_minor = r.GetInt64(i, 12).value();
  LEDGER_TRY(e.delta_minor, r.GetInt64(i, 13));
  e.currency = text(14);
  e.detail = text(15);
  e.assignee = text(16);
  e.resolution = text(17);
  e.adjustment_transfer_id = text(18);
  return e;
}

asio::awaitable<Result<Exception>> LockException(PgConnection& conn, std::int64_t id,
                                                 Deadline deadline) {
  const std::string sql = std::string(kExceptionColumns) + "WHERE id = $1 FOR UPDATE";
  LEDGER_CO_TRY(auto rows, co_await conn.Execute(sql, Params().Add(id), deadline));
  if (rows.rows() != 1) co_return make_error_code(Errc::not_found);
  co_return ParseException(rows, 0);
}

asio::awaitable<Result<void>> Audit(PgConnection& conn, std::string_view principal,
                                    std::string_view action, std::int64_t id,
                                    std::string_view detail, Deadline deadline) {
  LEDGER_CO_TRYV(co_await conn.Execute(
      "INSERT INTO recon_audit (principal, action, object_type, object_id, detail) "
      "VALUES ($1, $2, 'reconciliation_exception', $3, $4)",
      Params().Add(principal).Add(action).Add(std::to_string(id)).Add(detail), deadline));
  co_return outcome::success();
}

}  // namespace

asio::awaitable<RResult<std::vector<Exception>>> Reconciler::ListExceptions(ExceptionFilter filter,
                                                                            Deadline deadline) {
  const std::int32_t limit = std::clamp(filter.limit, 1, 1000);
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return Error(lease.error());
  const std::string sql = std::string(kExceptionColumns) +
                          "WHERE ($1 = '' OR class = $1) AND ($2 = '' OR status = $2) AND "
                          "($3 = '' OR provider = $3) AND ($4 = '' OR bill_date = $4::date) AND "
                          "($5 = '' OR assignee = $5) AND id > $6 ORDER BY id LIMIT $7";
  auto rows = co_await lease.value()->Execute(
      sql,
      Params()
          .Add(filter.klass)
          .Add(filter.status)
          .Add(filter.provider)
          .Add(filter.bill_date)
          .Add(filter.assignee)
          .Add(filter.after_id)
          .Add(limit),
      deadline);
  if (!rows) co_return Error(rows.error());
  std::vector<Exception> out;
  for (int i = 0; i < rows.value().rows(); ++i) {
    auto e = ParseException(rows.value(), i);
    if (!e) co_return Error(e.error());
    out.push_back(std::move(e).value());
  }
  co_return out;
}

asio::awaitable<RResult<Exception>> Reconciler::Assign(std::int64_t id, std::string assignee,
                                                       std::string principal, Deadline deadline) {
  if (assignee.empty() || assignee.size() > 128) {
    co_return Error(Errc::invalid_argument, "assignee must be 1..128 characters");
  }
  auto done = co_await db::RunInTransaction(
      pool_, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Exception>> {
        LEDGER_CO_TRY(auto e, co_await LockException(conn, id, deadline));
        if (e.status != "open" && e.status != "assigned") co_return make_error_code(Errc::invalid_state);
        LEDGER_CO_TRYV(co_await conn.Execute(
            "UPDATE recon_exceptions SET assignee = $2, status = 'assigned', updated_at = now() "
            "WHERE id = $1",
            Params().Add(id).Add(assignee), deadline));
        const std::string detail = fmt::format("{} -> {}", e.assignee, assignee);
        LEDGER_CO_TRYV(co_await Audit(conn, principal, "assign", id, detail, deadline));
        e.assignee = assignee;
        e.status = "assigned";
        co_return e;
      });
  if (!done) co_return Error(done.error());
  co_return std::move(done).value();
}

asio::awaitable<RResult<Exception>> Reconciler::Comment(std::int64_t id, std::string body,
                                                        std::string principal, Deadline deadline) {
  if (body.empty() || body.size() > 2000) {
    co_return Error(Errc::invalid_argument, "comment must be 1..2000 bytes");
  }
  auto done = co_await db::RunInTransaction(
      pool_, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Exception>> {
        LEDGER_CO_TRY(auto e, co_await LockException(conn, id, deadline));
        LEDGER_CO_TRYV(co_await conn.Execute(
            "INSERT INTO recon_exception_comments (exception_id, principal, body) "
            "VALUES ($1, $2, $3)",
            Params().Add(id).Add(principal).Add(body), deadline));
        const std::string detail = fmt::format("{} bytes", body.size());
        LEDGER_CO_TRYV(co_await Audit(conn, principal, "comment", id, detail, deadline));
        co_return e;
      });
  if (!done) co_return Error(done.error());
  co_return std::move(done).value();
}

asio::awaitable<RResult<Exception>> Reconciler::Resolve(std::int64_t id, std::string reason,
                                                        bool post_adjustment,
                                                        std::string principal,
                                                        Deadline deadline) {
  if (reason.empty() || reason.size() > 500) {
    co_return Error(Errc::invalid_argument, "reason must be 1..500 bytes");
  }
  std::string failure;
  auto done = co_await db::RunInTransaction(
      pool_, deadline, db::TransactionOptions{},
      [&](PgConnection& conn) -> asio::awaitable<Result<Exception>> {
        LEDGER_CO_TRY(auto e, co_await LockException(conn, id, deadline));
        if (e.status != "open" && e.status != "assigned") co_return make_error_code(Errc::invalid_state);
        std::string transfer_id;
        if (post_adjustment && e.delta_minor != 0) {
          // Accepting the difference: suspense takes what the clearing account holds too much of
          // (or lends what it lacks), with the exception as the reason.
          const std::string clearing = "provider_clearing:" + e.provider + ":" + e.merchant_account;
          ledger::Transfer t;
          t.id.value = fmt::format("recon:adj:{}", id);
          const auto clearing_id = ledger::AccountIdFor(e.currency, clearing);
          const auto suspense_id = ledger::AccountIdFor(e.currency, "suspense");
          t.debit_account_id = e.delta_minor > 0 ? suspense_id : clearing_id;
          t.credit_account_id = e.delta_minor > 0 ? clearing_id : suspense_id;
          t.amount = std::llabs(e.delta_minor);
          t.currency = e.currency;
          t.reason_code = kReasonAdjustment;
          t.external_ref = fmt::format("recon_exception:{}:{}", id, e.klass);
          std::vector<ledger::Transfer> transfers{t};
          LEDGER_CO_TRY(auto results,
                        co_await ledger_.PostTransfersInTransaction(conn, transfers, deadline));
          if (results.front() != ledger::TransferResult::kOk &&
              results.front() != ledger::TransferResult::kExists) {
            failure = fmt::format("ledger refused {}: {}", t.id.value,
                                  ledger::ToString(results.front()));
            co_return make_error_code(Errc::ledger_rejected);
          }
          transfer_id = t.id.value;
        }
        LEDGER_CO_TRYV(co_await conn.Execute(
            "UPDATE recon_exceptions SET status = 'resolved', resolution = $2, "
            "adjustment_transfer_id = $3, resolved_by = $4, resolved_at = now(), "
            "updated_at = now() WHERE id = $1",
            Params().Add(id).Add(reason).Add(transfer_id).Add(principal), deadline));
        // Named first: GCC 12 miscompiles temporaries built in a coroutine call's arguments.
        const std::string detail = fmt::format("reason={} adjustment={}", reason,
                                               transfer_id.empty() ? "none" : transfer_id);
        LEDGER_CO_TRYV(co_await Audit(conn, principal, "resolve", id, detail, deadline));
        e.status = "resolved";
        e.resolution = reason;
        e.adjustment_transfer_id = transfer_id;
        co_return e;
      });
  if (!done) {
    if (!failure.empty()) co_return Error(done.error(), failure);
    co_return Error(done.error());
  }
  co_return std::move(done).value();
}

}  // namespace paygate::recon
