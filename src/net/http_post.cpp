#include "net/http_post.hpp"

#include <memory>

#include <curl/curl.h>
#include <fmt/format.h>

namespace monitor::net {
namespace {

size_t keep_reply(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  const size_t room = HttpPoster::kMaxReplyBody - std::min(body->size(), HttpPoster::kMaxReplyBody);
  body->append(data, std::min(room, size * n));
  return size * n;  // the rest is read and dropped: the reply is only ever an error message
}

}  // namespace

HttpPoster::HttpPoster() {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  connections_ = curl_ready ? curl_share_init() : nullptr;
  if (connections_ != nullptr) curl_share_setopt(connections_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

HttpPoster::~HttpPoster() {
  if (connections_ != nullptr) curl_share_cleanup(connections_);
}

PostReply HttpPoster::post(const std::string& url, std::string_view body, const std::vector<std::string>& headers,
                           long timeout_s) {
  PostReply reply;
  // A handle per post, reset by nothing: libcurl 7.88 (Debian 12) read freed
  // memory when a handle that had taken one malformed reply was reset and
  // given another (found by export_reply_fuzz). The share keeps connections.
  const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(
      connections_ != nullptr ? curl_easy_init() : nullptr, curl_easy_cleanup);
  CURL* const curl = handle.get();
  if (curl == nullptr) {
    reply.error = "libcurl could not be initialised";
    return reply;
  }
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_SHARE, connections_);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, std::min(timeout_s, 5L));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_reply);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  reply.answered = rc == CURLE_OK;
  if (rc != CURLE_OK) {
    reply.error = curl_easy_strerror(rc);
  } else if (!reply.ok()) {
    reply.error = fmt::format("HTTP {}", reply.status);
  }
  return reply;
}

}  // namespace monitor::net
