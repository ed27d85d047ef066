#include "gateway/risk/schema.h"

#include <array>

namespace paygate::risk {

namespace {
constexpr std::array<AttrInfo, kAttrCount> kAttrs{{
#define PAYGATE_RISK_ATTR_INFO(e, name, type, list, events) \
  {Attr::e, name, Type::type, ListKind::list, events},
    PAYGATE_RISK_ATTRIBUTES(PAYGATE_RISK_ATTR_INFO)
#undef PAYGATE_RISK_ATTR_INFO
}};
}  // namespace

std::span<const AttrInfo> Attributes() { return kAttrs; }

const AttrInfo& Info(Attr attr) { return kAttrs[static_cast<std::size_t>(attr)]; }

std::optional<Attr> AttrFromName(std::string_view name) {
  for (const auto& info : kAttrs) {
    if (info.name == name) return info.attr;
  }
  return std::nullopt;
}

}  // namespace paygate::risk
