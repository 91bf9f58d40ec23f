// What an alarm notice says, rendered once for every channel: the plain text
// (a mail's text part, a command's log), the HTML of a mail, and the JSON body
// a webhook receives and a command reads on its stdin (docs/rules.md,
// "Notifications"). Pure: the alarm engine gathers the facts, channels carry
// the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "alarm/evaluator.hpp"
#include "alarm/rule.hpp"

namespace monitor::alarm {

inline constexpr int kMessageRecentMinutes = 10;  // the minutes a message shows of each series

/// One series a notice is about.
struct MessageSeries {
  int64_t server = -1;          // -1: the total
  std::string host;             // its recorded host name; empty: none known
  std::optional<double> value;  // the alarm's value at its last evaluation
  // The kMessageRecentMinutes minutes up to the notice's, oldest first; nullopt: no data.
  std::vector<std::optional<double>> recent;
  std::optional<AlarmState> alarm;  // its alarm, when the rule still has one
};

struct MessageFacts {
  Notice::Kind kind = Notice::Kind::kFiring;
  int64_t minute = 0;  // of the notice, in minutes since the epoch
  std::vector<MessageSeries> series;
  std::string correction;     // a corrected minute's explanation; empty: none
  std::string partial;        // the service moved during the minute: how; empty: it did not
  std::string dashboard_url;  // each series links to its chart there; empty: no links
};

struct Message {
  std::string subject;
  std::string text;
  std::string html;
  // The webhook's body; "key" is left empty for the caller, who sets one per target.
  boost::json::object body;
};

Message render_message(const Rule& rule, const MessageFacts& facts);

}  // namespace monitor::alarm
