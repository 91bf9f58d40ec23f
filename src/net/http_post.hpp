// One HTTP POST client (libcurl) for what the judger sends out: alarm
// webhooks and exported minutes. A client keeps its connection between
// posts, so an exporter sending a request per batch does not connect each
// time; each post is a transfer of its own, so nothing of one reply's state
// (a target's garbage included) reaches the next.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

typedef void CURL;
typedef void CURLSH;

namespace monitor::net {

struct PostReply {
  long status = 0;   // HTTP status; 0 when no reply arrived
  std::string body;  // at most kMaxReplyBody bytes kept: an error message, not data
  std::string error; // the transport's error, or "HTTP <status>" for a non-2xx reply
  bool answered = false;  // a whole reply arrived (its status is the target's word)
  bool ok() const noexcept { return error.empty() && status >= 200 && status < 300; }
};

/// Not thread-safe: one per thread that posts.
class HttpPoster {
 public:
  static constexpr size_t kMaxReplyBody = 4096;
  HttpPoster();
  ~HttpPoster();
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  /// POSTs `body` to `url` (http or https) with the given headers ("Name:
  /// value"), under a deadline of `timeout_s` on the whole exchange.
  PostReply post(const std::string& url, std::string_view body, const std::vector<std::string>& headers,
                 long timeout_s);

 private:
  CURLSH* connections_;  // the connection cache the posts share
};

}  // namespace monitor::net
