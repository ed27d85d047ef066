#pragma once

// One event to decide on: its type, its time, and the values of the schema's attributes (schema.h).
// An Event is a fixed-size value (no heap): building one on the request path does not allocate.
// Text attributes (ids, hashes, countries, IPs, BINs) are parsed and hashed when set; the Event
// also keeps a view of the text so a Decision can render its inputs. That text must outlive the
// Event's use (the caller's request, or the stored proto being replayed).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/result.h"
#include "gateway/risk/schema.h"
#include "gateway/risk/value.h"

namespace paygate::risk {

namespace pb {
class Event;
}

class Event {
 public:
  // `time_s` is the event's time (Unix seconds): every window and age is measured from it, never
  // from the wall clock, so replays decide exactly as the original did.
  Event(EventType type, std::int64_t time_s);

  EventType type() const { return type_; }
  std::int64_t time() const { return time_s_; }

  // Each setter returns false, leaving the attribute unchanged, when the attribute is not declared
  // for this event type, has another type, or the text is malformed (country not two upper-case
  // letters, bad IP, BIN not 6-8 digits, currency not three upper-case letters).
  bool SetBool(Attr attr, bool value);
  bool SetInt(Attr attr, std::int64_t value);
  bool SetTime(Attr attr, std::int64_t unix_s);
  bool SetDuration(Attr attr, std::int64_t seconds);
  bool SetMoney(Attr attr, std::int64_t minor_units, std::string_view currency);
  // For kString, kCountry, kIp and kBin attributes.
  bool SetText(Attr attr, std::string_view text);
  void Clear(Attr attr);

  const Value& Get(Attr attr) const { return values_[static_cast<std::size_t>(attr)]; }
  std::string_view Text(Attr attr) const { return text_[static_cast<std::size_t>(attr)]; }

 private:
  bool Accepts(Attr attr, Type type) const;

  EventType type_;
  std::int64_t time_s_;
  std::array<Value, kAttrCount> values_;
  std::array<std::string_view, kAttrCount> text_;
};

// Stored form, for replay in shadow mode and backtests. The proto's strings must outlive `out`.
Result<Event, std::string> EventFromProto(const pb::Event& proto);
void EventToProto(const Event& event, pb::Event& out);

}  // namespace paygate::risk
