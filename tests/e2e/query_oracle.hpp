// What a user reads: minutes through `monitorctl query --output json`, which
// finds the judger in the registry and serves only final minutes. The
// end-to-end exactness checks of issue 7 read here, never the store's tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "net/http_get.hpp"
#include "support/child_process.hpp"
#include "e2e/registry_address.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

namespace monitor::e2e {

inline int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The sum of the `op` minute values of (service, attr) for `server` ("total"
/// or an id) over [from, to), or -1 when monitorctl fails.
inline double query_sum(const test::TempDir& dir, const std::string& service, const std::string& attr,
                        const std::string& op, const std::string& server, int64_t from, int64_t to) {
  const std::string out = dir.file("query.json");
  auto query = test::ChildProcess::spawn({MONITORCTL_PATH, "query", "--registry", registry_address(dir),
                                          "--service", service, "--attr", attr, "--op", op, "--server", server,
                                          "--from", std::to_string(from), "--to", std::to_string(to), "--output",
                                          "json"},
                                         out, dir.file("query.err"));
  const auto rc = query.wait_for(std::chrono::seconds(10));
  if (rc != 0) {
    UNSCOPED_INFO("monitorctl query exited " << (rc ? std::to_string(*rc) : "late") << ": "
                                             << test::read_file(dir.file("query.err")) << test::read_file(out));
    return -1;
  }
  double sum = 0;
  try {
    const boost::json::value body = boost::json::parse(test::read_file(out));  // outlives the loop below
    for (const auto& p : body.at("points").as_array()) sum += p.as_array().at(1).to_number<double>();
  } catch (const std::exception& e) {
    UNSCOPED_INFO("monitorctl query printed what does not parse (" << e.what() << "): " << test::read_file(out));
    return -1;
  }
  return sum;
}

/// Waits (bounded: until the minute after `last_second` is final plus
/// `margin`) for the query sum to reach `expected`, and returns the last sum
/// read. Final minutes only change by late amendments, so a sum that reached
/// its goal stays there; one that never does fails the caller's CHECK.
inline double query_sum_when_final(const test::TempDir& dir, const std::string& service, const std::string& attr,
                                   const std::string& op, const std::string& server, int64_t from,
                                   int64_t last_second, double expected,
                                   std::chrono::seconds margin = std::chrono::seconds(20)) {
  const int64_t to = last_second - last_second % 60 + 60;
  const int64_t give_up = to + margin.count();
  double sum = -1;
  while (true) {
    sum = query_sum(dir, service, attr, op, server, from - from % 60, to);
    if (sum == expected || unix_now_s() >= give_up) return sum;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a poll interval, not a wait for an event
  }
}

/// A sample of a part's `GET /metrics` on `address` (host:port) by its
/// Prometheus name, or -1 when the part does not answer or has no such sample.
inline int64_t metrics_sample(const std::string& address, const std::string& name) {
  const auto reply = net::http_get(address, "/metrics", std::chrono::seconds(2));
  if (!reply || reply->status != 200) return -1;
  const size_t at = reply->body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::atoll(reply->body.c_str() + at + name.size() + 2);
}

/// A counter of the judger's /api/health on `query_port`, or -1 when it does not answer.
inline int64_t judger_health(int query_port, const char* field) {
  const auto reply = test::http_get(query_port, "/api/health");
  try {
    return boost::json::parse(reply.body).at(field).to_number<int64_t>();
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace monitor::e2e
