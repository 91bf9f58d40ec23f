// The webhook channel: the message's JSON body POSTed to a URL.
#include "judger/notify/channel.hpp"
#include "net/http_post.hpp"

namespace monitor::judger::notify {
namespace {

class WebhookChannel final : public Channel {
 public:
  explicit WebhookChannel(int timeout_s) : timeout_s_(timeout_s) {}

  bool deliver(const std::string& url, const Delivery& d, std::string& error) override {
    net::HttpPoster poster;
    const net::PostReply reply = poster.post(url, d.body, {"Content-Type: application/json", "Idempotency-Key: " + d.key},
                                             static_cast<long>(timeout_s_));
    error = reply.error;
    return reply.ok();
  }

 private:
  const int timeout_s_;
};

}  // namespace

std::unique_ptr<Channel> make_webhook_channel(int timeout_s) { return std::make_unique<WebhookChannel>(timeout_s); }

}  // namespace monitor::judger::notify
