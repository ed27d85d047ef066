#include "gateway/risk/event.h"

#include "gateway/risk/risk.pb.h"

namespace paygate::risk {

Event::Event(EventType type, std::int64_t time_s) : type_(type), time_s_(time_s) {
  for (const auto& info : Attributes())
    values_[static_cast<std::size_t>(info.attr)].type = info.type;
  values_[static_cast<std::size_t>(Attr::kEventTime)] = Value::Of(Type::kTime, time_s);
}

bool Event::Accepts(Attr attr, Type type) const {
  const AttrInfo& info = Info(attr);
  return info.type == type && (info.events & MaskOf(type_)) != 0 && attr != Attr::kEventTime;
}

bool Event::SetBool(Attr attr, bool value) {
  if (!Accepts(attr, Type::kBool)) return false;
  values_[static_cast<std::size_t>(attr)] = Value::Of(Type::kBool, value ? 1 : 0);
  return true;
}

bool Event::SetInt(Attr attr, std::int64_t value) {
  if (!Accepts(attr, Type::kInt)) return false;
  values_[static_cast<std::size_t>(attr)] = Value::Of(Type::kInt, value);
  return true;
}

bool Event::SetTime(Attr attr, std::int64_t unix_s) {
  if (!Accepts(attr, Type::kTime)) return false;
  values_[static_cast<std::size_t>(attr)] = Value::Of(Type::kTime, unix_s);
  return true;
}

bool Event::SetDuration(Attr attr, std::int64_t seconds) {
  if (!Accepts(attr, Type::kDuration)) return false;
  values_[static_cast<std::size_t>(attr)] = Value::Of(Type::kDuration, seconds);
  return true;
}

bool Event::SetMoney(Attr attr, std::int64_t minor_units, std::string_view currency) {
  const auto packed = PackCurrency(currency);
  if (!packed || !Accepts(attr, Type::kMoney)) return false;
  values_[static_cast<std::size_t>(attr)] = Value::Of(Type::kMoney, minor_units, *packed);
  return true;
}

bool Event::SetText(Attr attr, std::string_view text) {
  const AttrInfo& info = Info(attr);
  if (!Accepts(attr, info.type)) return false;
  Value v;
  switch (info.type) {
    case Type::kString:
      v = Value::Of(Type::kString, static_cast<std::int64_t>(HashString(text)));
      break;
    case Type::kCountry: {
      const auto packed = PackCountry(text);
      if (!packed) return false;
      v = Value::Of(Type::kCountry, *packed);
      break;
    }
    case Type::kIp: {
      const auto ip = ParseIp(text);
      if (!ip) return false;
      v = Value::Of(Type::kIp, static_cast<std::int64_t>(ip->high));
      v.b = ip->low;
      break;
    }
    case Type::kBin: {
      const auto bin = ParseBin(text);
      if (!bin) return false;
      v = Value::Of(Type::kBin, *bin);
      break;
    }
    default:
      return false;
  }
  values_[static_cast<std::size_t>(attr)] = v;
  text_[static_cast<std::size_t>(attr)] = text;
  return true;
}

void Event::Clear(Attr attr) {
  if (attr == Attr::kEventTime) return;
  values_[static_cast<std::size_t>(attr)] = Value::Missing(Info(attr).type);
  text_[static_cast<std::size_t>(attr)] = {};
}

Result<Event, std::string> EventFromProto(const pb::Event& proto) {
  const auto type = EventTypeFromName(proto.event_type());
  if (!type) return "unknown event type '" + proto.event_type() + "'";
  Event event(*type, proto.time_unix_s());
  for (const auto& a : proto.attributes()) {
    const auto attr = AttrFromName(a.name());
    if (!attr) return "unknown attribute '" + a.name() + "'";
    const auto& v = a.value();
    bool ok = false;
    switch (v.kind_case()) {
      case pb::Value::kBoolValue:
        ok = event.SetBool(*attr, v.bool_value());
        break;
      case pb::Value::kIntValue:
        ok = event.SetInt(*attr, v.int_value());
        break;
      case pb::Value::kMoneyValue:
        ok = event.SetMoney(*attr, v.money_value().minor_units(), v.money_value().currency());
        break;
      case pb::Value::kDurationS:
        ok = event.SetDuration(*attr, v.duration_s());
        break;
      case pb::Value::kTimeUnixS:
        ok = event.SetTime(*attr, v.time_unix_s());
        break;
      case pb::Value::kCountry:
        ok = event.SetText(*attr, v.country());
        break;
      case pb::Value::kStringValue:
        ok = event.SetText(*attr, v.string_value());
        break;
      case pb::Value::kIp:
        ok = event.SetText(*attr, v.ip());
        break;
      case pb::Value::kBin:
        ok = event.SetText(*attr, v.bin());
        break;
      case pb::Value::kDisplay:
        ok = false;
        break;
      case pb::Value::KIND_NOT_SET:
        ok = true;
        break;  // missing
    }
    if (!ok)
      return "attribute '" + a.name() + "' has a value of the wrong type or form for this event";
  }
  return event;
}

void EventToProto(const Event& event, pb::Event& out) {
  out.Clear();
  out.set_event_type(std::string(EventTypeName(event.type())));
  out.set_time_unix_s(event.time());
  for (const auto& info : Attributes()) {
    if (info.attr == Attr::kEventTime) continue;
    const Value& v = event.Get(info.attr);
    if (!v.present) continue;
    auto* a = out.add_attributes();
    a->set_name(std::string(info.name));
    auto* pv = a->mutable_value();
    switch (v.type) {
      case Type::kBool:
        pv->set_bool_value(v.a != 0);
        break;
      case Type::kInt:
        pv->set_int_value(v.a);
        break;
      case Type::kMoney:
        pv->mutable_money_value()->set_minor_units(v.a);
        pv->mutable_money_value()->set_currency(UnpackCurrency(v.aux));
        break;
      case Type::kDuration:
        pv->set_duration_s(v.a);
        break;
      case Type::kTime:
        pv->set_time_unix_s(v.a);
        break;
      case Type::kCountry:
        pv->set_country(UnpackCountry(v.a));
        break;
      case Type::kString:
        pv->set_string_value(std::string(event.Text(info.attr)));
        break;
      case Type::kIp:
        pv->set_ip(std::string(event.Text(info.attr)));
        break;
      case Type::kBin:
        pv->set_bin(std::string(event.Text(info.attr)));
        break;
    }
  }
}

}  // namespace paygate::risk
