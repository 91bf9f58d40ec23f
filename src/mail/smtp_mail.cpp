#include "mail/smtp_mail.hpp"

#include <algorithm>
#include <cstring>

#include <curl/curl.h>
#include <fmt/format.h>

namespace monitor::mail {
namespace {

struct Upload {
  const std::string* data;
  size_t offset = 0;
};

size_t feed(char* buffer, size_t size, size_t n, void* in) {
  auto* u = static_cast<Upload*>(in);
  const size_t len = std::min(size * n, u->data->size() - u->offset);
  std::memcpy(buffer, u->data->data() + u->offset, len);
  u->offset += len;
  return len;
}

std::string header_safe(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

bool send(const std::string& smtp_url, const Mail& mail, long timeout_s, std::string& error) {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  CURL* curl = curl_ready ? curl_easy_init() : nullptr;
  if (curl == nullptr) {
    error = "libcurl: no handle";
    return false;
  }
  const std::string boundary = "monitor-" + header_safe(mail.message_id);
  const std::string message = fmt::format(
      "From: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{}@monitor>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative; boundary=\"{}\"\r\n\r\n"
      "--{}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n"
      "--{}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}\r\n--{}--\r\n",
      header_safe(mail.from), header_safe(mail.to), header_safe(mail.subject), header_safe(mail.message_id), boundary,
      boundary, mail.text, boundary, mail.html, boundary);
  Upload upload{&message};
  // fmt, not operator+: GCC 12 warns falsely (-Wrestrict) on "<" + string.
  const std::string to = fmt::format("<{}>", header_safe(mail.to)), from = fmt::format("<{}>", header_safe(mail.from));
  curl_slist* rcpt = curl_slist_append(nullptr, to.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, smtp_url.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, feed);
  curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(rcpt);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    error = curl_easy_strerror(rc);
    return false;
  }
  return true;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace monitor::mail
