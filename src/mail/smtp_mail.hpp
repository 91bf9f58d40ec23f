// One client for SMTP: a plain-text + HTML mail sent through libcurl. The
// judger's notifications and monitorctl's daily report both send with it.
#pragma once

#include <string>
#include <string_view>

namespace monitor::mail {

struct Mail {
  std::string from, to, subject;
  std::string message_id;  // without <…@monitor>; a retried delivery keeps it, so it can be recognised
  std::string text, html;
};

/// Sends `mail` through `smtp_url` (smtp://host:port, smtps://…) within
/// `timeout_s`. False with `error` in words on failure. Header fields are
/// cleaned of line breaks, so no value can add a header.
bool send(const std::string& smtp_url, const Mail& mail, long timeout_s, std::string& error);

/// Text made safe inside HTML (the HTML part of a mail).
std::string html_escape(std::string_view s);

}  // namespace monitor::mail
