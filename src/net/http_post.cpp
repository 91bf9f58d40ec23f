#include "net/http_post.hpp"

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
  curl_ = curl_ready ? curl_easy_init() : nullptr;
}

HttpPoster::~HttpPoster() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

PostReply HttpPoster::post(const std::string& url, std::string_view body, const std::vector<std::string>& headers,
                           long timeout_s) {
  PostReply reply;
  if (curl_ == nullptr) {
    reply.error = "libcurl could not be initialised";
    return reply;
  }
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_reset(curl_);  // keeps the connection cache, forgets the previous request's options
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_POST, 1L);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, std::min(timeout_s, 5L));
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, keep_reply);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
  const CURLcode rc = curl_easy_perform(curl_);
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
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
