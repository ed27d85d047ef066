#include "gateway/risk/lists.h"

#include <algorithm>
#include <charconv>

namespace paygate::risk {

namespace {
bool Live(std::int64_t expires_s, std::int64_t now_s) {
  return expires_s == 0 || now_s < expires_s;
}
std::int64_t LaterExpiry(std::int64_t a, std::int64_t b) {
  return (a == 0 || b == 0) ? 0 : std::max(a, b);
}
}  // namespace

std::size_t TypedList::size() const {
  std::size_t n = exact_.size() + bins_.size();
  for (const auto& g : ip_groups_) n += g.blocks.size();
  return n;
}

bool TypedList::Contains(const Value& v, std::int64_t now_s) const {
  if (!v.present || v.type != ListKindType(kind_)) return false;
  switch (kind_) {
    case ListKind::kIp: {
      const Ip128 ip{static_cast<std::uint64_t>(v.a), v.b};
      for (const auto& g : ip_groups_) {
        const Ip128 net = MaskIp(ip, g.prefix_bits);
        const auto it =
            std::lower_bound(g.blocks.begin(), g.blocks.end(), net,
                             [](const IpBlock& b, const Ip128& n) { return b.network < n; });
        if (it != g.blocks.end() && it->network == net && Live(it->expires_s, now_s)) return true;
      }
      return false;
    }
    case ListKind::kBin: {
      // Ranges are sorted by lo; walk back from the last range starting at or below v while some
      // earlier range still reaches v.
      auto it = std::upper_bound(bins_.begin(), bins_.end(), v.a,
                                 [](std::int64_t x, const BinRange& r) { return x < r.lo; });
      while (it != bins_.begin()) {
        --it;
        if (it->max_hi < v.a) return false;
        if (it->hi >= v.a && Live(it->expires_s, now_s)) return true;
      }
      return false;
    }
    default: {
      const auto it = std::lower_bound(exact_.begin(), exact_.end(), v.a,
                                       [](const Exact& e, std::int64_t k) { return e.key < k; });
      return it != exact_.end() && it->key == v.a && Live(it->expires_s, now_s);
    }
  }
}

const TypedList* ListSet::Find(std::string_view name) const {
  const auto it =
      std::lower_bound(lists_.begin(), lists_.end(), name,
                       [](const TypedList& l, std::string_view n) { return l.name() < n; });
  return it != lists_.end() && it->name() == name ? &*it : nullptr;
}

TypedList& ListSetBuilder::ListFor(std::string_view name, ListKind kind, std::string* error) {
  for (auto& l : lists_) {
    if (l.name_ == name) {
      if (l.kind_ != kind) {
        *error = "list @" + std::string(name) + " holds " + std::string(ListKindName(l.kind_)) +
                 ", not " + std::string(ListKindName(kind));
      }
      return l;
    }
  }
  TypedList& l = lists_.emplace_back();
  l.name_ = std::string(name);
  l.kind_ = kind;
  return l;
}

Result<void, std::string> ListSetBuilder::Declare(std::string_view name, ListKind kind) {
  if (name.empty() || kind == ListKind::kNone) return std::string("a list needs a name and a kind");
  std::string error;
  ListFor(name, kind, &error);
  if (!error.empty()) return error;
  return outcome::success();
}

Result<void, std::string> ListSetBuilder::Add(std::string_view name, ListKind kind,
                                              std::string_view item, std::int64_t expires_s) {
  if (name.empty() || kind == ListKind::kNone) return std::string("a list needs a name and a kind");
  if (expires_s < 0) return std::string("negative expiry");
  std::string error;
  TypedList& list = ListFor(name, kind, &error);
  if (!error.empty()) return error;
  auto bad = [&](std::string_view why) {
    return "list @" + std::string(name) + ": item '" + std::string(item) + "' " + std::string(why);
  };
  switch (kind) {
    case ListKind::kIp: {
      int bits = -1;
      std::string_view addr = item;
      if (const auto slash = item.find('/'); slash != std::string_view::npos) {
        addr = item.substr(0, slash);
        const auto digits = item.substr(slash + 1);
        int n = 0;
        const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec != std::errc() || p != digits.data() + digits.size())
          return bad("has a bad prefix length");
        bits = n;
      }
      const auto ip = ParseIp(addr);
      if (!ip) return bad("is not an IP address or CIDR block");
      const bool v4 = addr.find(':') == std::string_view::npos;
      if (bits < 0) bits = v4 ? 32 : 128;
      if (bits > (v4 ? 32 : 128)) return bad("has a prefix longer than the address");
      const int prefix = v4 ? bits + 96 : bits;  // IPv4 lives in ::ffff:0:0/96
      auto g = std::find_if(list.ip_groups_.begin(), list.ip_groups_.end(),
                            [&](const TypedList::IpGroup& x) { return x.prefix_bits == prefix; });
      if (g == list.ip_groups_.end()) {
        list.ip_groups_.push_back({prefix, {}});
        g = list.ip_groups_.end() - 1;
      }
      g->blocks.push_back({MaskIp(*ip, prefix), expires_s});
      break;
    }
    case ListKind::kBin: {
      std::string_view lo_text = item;
      std::string_view hi_text = item;
      if (const auto dash = item.find('-'); dash != std::string_view::npos) {
        lo_text = item.substr(0, dash);
        hi_text = item.substr(dash + 1);
      }
      const auto lo = ParseBin(lo_text);
      const auto hi_base = ParseBin(hi_text);
      if (!lo || !hi_base) return bad("is not a BIN (6-8 digits) or BIN range");
      // The upper end covers every card under it: "411112" reaches 41111299.
      std::int64_t hi = *hi_base;
      for (std::size_t i = hi_text.size(); i < 8; ++i) {
        std::int64_t unit = 1;
        for (std::size_t j = i + 1; j < 8; ++j) unit *= 10;
        hi += 9 * unit;
      }
      if (*lo > hi) return bad("is an empty range");
      list.bins_.push_back({*lo, hi, expires_s, 0});
      break;
    }
    case ListKind::kCountry: {
      const auto c = PackCountry(item);
      if (!c) return bad("is not a two-letter upper-case country code");
      list.exact_.push_back({*c, expires_s});
      break;
    }
    default:
      if (item.empty()) return bad("is empty");
      list.exact_.push_back({static_cast<std::int64_t>(HashString(item)), expires_s});
      break;
  }
  return outcome::success();
}

std::shared_ptr<const ListSet> ListSetBuilder::Build() && {
  auto set = std::make_shared<ListSet>();
  for (auto& l : lists_) {
    std::sort(l.exact_.begin(), l.exact_.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    // One entry per key: the item that stays longest wins.
    std::vector<TypedList::Exact> merged;
    for (const auto& e : l.exact_) {
      if (!merged.empty() && merged.back().key == e.key) {
        merged.back().expires_s = LaterExpiry(merged.back().expires_s, e.expires_s);
      } else {
        merged.push_back(e);
      }
    }
    l.exact_ = std::move(merged);
    for (auto& g : l.ip_groups_) {
      std::sort(g.blocks.begin(), g.blocks.end(),
                [](const auto& a, const auto& b) { return a.network < b.network; });
      std::vector<TypedList::IpBlock> blocks;
      for (const auto& b : g.blocks) {
        if (!blocks.empty() && blocks.back().network == b.network) {
          blocks.back().expires_s = LaterExpiry(blocks.back().expires_s, b.expires_s);
        } else {
          blocks.push_back(b);
        }
      }
      g.blocks = std::move(blocks);
    }
    std::sort(l.bins_.begin(), l.bins_.end(),
              [](const auto& a, const auto& b) { return a.lo < b.lo; });
    std::int64_t max_hi = 0;
    for (auto& r : l.bins_) {
      max_hi = std::max(max_hi, r.hi);
      r.max_hi = max_hi;
    }
  }
  std::sort(lists_.begin(), lists_.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  set->lists_ = std::move(lists_);
  set->version_ = version_;
  return set;
}

ListHolder::ListHolder() : current_(ListSetBuilder(0).Build()) {}

}  // namespace paygate::risk
