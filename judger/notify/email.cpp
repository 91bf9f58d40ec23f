// The e-mail channel: the message's text and HTML through SMTP.
#include "judger/notify/channel.hpp"
#include "mail/smtp_mail.hpp"

namespace monitor::judger::notify {
namespace {

class EmailChannel final : public Channel {
 public:
  EmailChannel(std::string smtp_url, std::string mail_from, int timeout_s)
      : smtp_url_(std::move(smtp_url)), mail_from_(std::move(mail_from)), timeout_s_(timeout_s) {}

  bool deliver(const std::string& to, const Delivery& d, std::string& error) override {
    // The Message-ID is the idempotency key: a retried delivery is recognisable.
    return mail::send(smtp_url_, {mail_from_, to, d.subject, d.key, d.text, d.html}, static_cast<long>(timeout_s_),
                      error);
  }

 private:
  const std::string smtp_url_;
  const std::string mail_from_;
  const int timeout_s_;
};

}  // namespace

std::unique_ptr<Channel> make_email_channel(std::string smtp_url, std::string mail_from, int timeout_s) {
  return std::make_unique<EmailChannel>(std::move(smtp_url), std::move(mail_from), timeout_s);
}

}  // namespace monitor::judger::notify
