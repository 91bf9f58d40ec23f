// One way of delivering an alarm's message — a webhook, an e-mail, a command —
// behind one interface, so the notifier's outbox, lanes and retries are
// written once over all of them (as Alertmanager's notify stages sit over
// its integrations). A channel delivers one message once; retrying is the
// notifier's.
#pragma once

#include <memory>
#include <string>

namespace monitor::judger::notify {

/// A message as the outbox keeps it (docs/rules.md, "Notifications").
struct Delivery {
  std::string key;      // idempotency key, the same for every try
  std::string subject;
  std::string text;
  std::string html;
  std::string body;     // JSON
};

class Channel {
 public:
  virtual ~Channel() = default;
  /// Delivers to `address` (the target without its "scheme:"), blocking at
  /// most the channel's timeout. Thread-safe. False with `error` set when it
  /// did not.
  virtual bool deliver(const std::string& address, const Delivery& d, std::string& error) = 0;
};

/// POSTs the body, with the key as Idempotency-Key.
std::unique_ptr<Channel> make_webhook_channel(int timeout_s);
/// Mails text and HTML through SMTP, with the key as Message-ID.
std::unique_ptr<Channel> make_email_channel(std::string smtp_url, std::string mail_from, int timeout_s);
/// Runs "/path args…" without a shell, the body on stdin (a file in
/// `input_dir`), and waits for it at most `timeout_s`; past it the command
/// is killed with its process group.
std::unique_ptr<Channel> make_command_channel(std::string input_dir, int timeout_s);

}  // namespace monitor::judger::notify
