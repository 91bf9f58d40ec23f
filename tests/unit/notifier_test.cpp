// The notifier: a notification pending when the judger stops is delivered
// after the restart, once; the alarm history is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "alarm/rule.hpp"
#include "judger/notifier.hpp"
#include "support/child_process.hpp"
#include "support/temp_names.hpp"
#include "support/wire_client.hpp"

using namespace std::chrono_literals;
using monitor::judger::Notifier;

TEST_CASE("the alarm history keeps 30 days: older rows are pruned when the notifier runs", "[alarms][notifier]") {
  monitor::test::TempDir dir;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  {
    Notifier notifier(dir.path(), {});
    notifier.record(now - 31 * 86400, "Shop.Api.Old", -1, "firing", "value 5");
    notifier.record(now - 29 * 86400, "Shop.Api.Recent", -1, "firing", "value 6");
  }
  // A notifier started afresh prunes at once, then every hour.
  Notifier notifier(dir.path(), {});
  auto rules = [&] {
    std::vector<std::string> out;
    for (const auto& row : notifier.history("", 0, now + 1, 100)) out.emplace_back(row.at("rule").as_string());
    return out;
  };
  REQUIRE(monitor::test::wait_until([&] { return rules().size() == 1; }, 5s));
  CHECK(rules() == std::vector<std::string>{"Shop.Api.Recent"});
}

TEST_CASE("a notification still pending when the notifier stops is delivered after the restart, once",
          "[alarms][notifier]") {
  monitor::test::TempDir dir;
  const int port = monitor::test::free_port();
  monitor::judger::NotifierOptions options;
  options.tries = 5;
  options.backoff_ms = 1500;
  monitor::judger::Notification n;
  n.key = "Shop.Api.Slow-firing-1796000000-0123456789abcdef";
  n.rule = "Shop.Api.Slow";
  n.target = "webhook:http://127.0.0.1:" + std::to_string(port) + "/hook";
  n.subject = "FIRING Shop.Api.Slow";
  n.text = "slow";
  n.body = {{"kind", "firing"}, {"rule", "Shop.Api.Slow"}};
  {
    Notifier notifier(dir.path(), options);
    REQUIRE(notifier.enqueue(n));
    // Nothing listens yet: the first try fails and the next is 1.5 s away when it stops.
    REQUIRE(monitor::test::wait_until([&] { return notifier.counters().retried == 1; }, 5s));
    CHECK(notifier.pending() == 1);
  }
  const std::string hooks = dir.file("hooks.jsonl");
  auto sink = monitor::test::ChildProcess::spawn({"/usr/bin/python3", std::string(MONITOR_EXAMPLES_DIR) + "/webhook_sink.py",
                                                  std::to_string(port), hooks}, "", dir.file("sink.log"));
  Notifier notifier(dir.path(), options);
  CHECK(notifier.enqueue(n));  // a replay of the same notice after the restart: queued once only
  REQUIRE(monitor::test::wait_until([&] { return notifier.counters().sent == 1; }, 15s));
  CHECK(notifier.pending() == 0);
  const std::string received = monitor::test::read_file(hooks);
  CHECK(std::count(received.begin(), received.end(), '\n') == 1);
  CHECK_THAT(received, Catch::Contains(n.key));
}

namespace {

monitor::judger::Notification page(const std::string& key, const std::string& target) {
  monitor::judger::Notification n;
  n.key = key;
  n.rule = "Shop.Api.Slow";
  n.target = target;
  n.subject = "FIRING Shop.Api.Slow";
  n.text = "slow";
  n.body = {{"kind", "firing"}, {"rule", "Shop.Api.Slow"}};
  return n;
}

double cpu_seconds_of_this_process() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

// Issue 20: a command: notification runs with its quoted arguments whole
// (they were split at every space), a clean environment (not the judger's,
// which may hold the registry's password) and none of the judger's
// descriptors (a child that kept the judger's port made its restart fail).
TEST_CASE("a command notification gets its quoted arguments whole, a clean environment and no inherited descriptor",
          "[alarms][notifier][command]") {
  monitor::test::TempDir dir;
  const std::string out = dir.file("argv"), env = dir.file("env"), fds = dir.file("fds");
  const std::string rules = "rule Shop.Api.Slow\n  service Shop.Api\n  attr Api.Latency\n  op MAX\n  per total\n"
                            "  when value > 5\n"
                            "  notify command:/bin/sh -c \"printf '%s|' \\\"$@\\\" > " + out + "; env > " + env +
                            "; ls -l /proc/self/fd > " + fds + "\" sh \"two  words\" plain \"a \\\"quoted\\\" one\"\n";
  const auto parsed = monitor::alarm::parse_rule_file(rules);
  INFO((parsed.error ? parsed.error->text() : std::string()));
  REQUIRE(!parsed.error);
  REQUIRE(parsed.file.rules.at(0).notify.size() == 1);

  // What the judger may hold: the registry's password, a file and a listening socket not marked close-on-exec.
  ::setenv("MONITOR_REGISTRY_PASSWORD", "hunter2", 1);
  const int leaked_file = ::open(dir.file("judger-file").c_str(), O_CREAT | O_WRONLY, 0600);
  REQUIRE(leaked_file >= 0);
  const int leaked_socket = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(leaked_socket >= 0);

  const auto n = page("Shop.Api.Slow-firing-1796000000-0123456789abcdef", parsed.file.rules[0].notify[0].text());
  Notifier notifier(dir.path(), monitor::judger::NotifierOptions{});
  REQUIRE(notifier.enqueue(n));
  REQUIRE(monitor::test::wait_until([&] { return notifier.counters().sent == 1; }, 10s));
  ::close(leaked_file);
  ::close(leaked_socket);
  ::unsetenv("MONITOR_REGISTRY_PASSWORD");

  CHECK(monitor::test::read_file(out) == "two  words|plain|a \"quoted\" one|");
  const std::string environment = monitor::test::read_file(env);
  CHECK_THAT(environment, !Catch::Contains("hunter2"));
  CHECK_THAT(environment, Catch::Contains("MONITOR_ALARM_KEY=" + n.key));
  CHECK_THAT(environment, Catch::Contains("MONITOR_ALARM_RULE=Shop.Api.Slow"));
  const std::string descriptors = monitor::test::read_file(fds);
  INFO(descriptors);
  CHECK_THAT(descriptors, !Catch::Contains("judger-file"));
  CHECK_THAT(descriptors, !Catch::Contains("socket:"));
  CHECK_THAT(descriptors, !Catch::Contains("alarms.db"));
}


// Issue 20: one delivery thread sent synchronously, so each message queued
// for a webhook that never answers held a page to a healthy one back by the
// whole timeout (10 s each: 50 s for five).
TEST_CASE("a webhook that never answers does not hold back a page to a healthy one", "[alarms][notifier]") {
  monitor::test::TempDir dir;
  // Accepts connections in the kernel's backlog and never answers them.
  const int stuck = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(stuck >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(stuck, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(stuck, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  REQUIRE(::listen(stuck, 16) == 0);
  const int healthy_port = monitor::test::free_port();
  const std::string hooks = dir.file("hooks.jsonl");
  auto sink = monitor::test::ChildProcess::spawn({"/usr/bin/python3", std::string(MONITOR_EXAMPLES_DIR) + "/webhook_sink.py",
                                                  std::to_string(healthy_port), hooks}, "", dir.file("sink.log"));
  // Up once it has written down a POST of ours.
  REQUIRE(monitor::test::wait_until([&] {
    monitor::test::http_request(healthy_port, "POST", "/ready", "{}");
    return monitor::test::read_file(hooks).find("/ready") != std::string::npos;
  }, 10s));

  Notifier notifier(dir.path(), monitor::judger::NotifierOptions{});
  const std::string stuck_target = "webhook:http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/hook";
  for (int i = 0; i < 5; ++i) REQUIRE(notifier.enqueue(page("stuck-" + std::to_string(i), stuck_target)));
  REQUIRE(notifier.enqueue(page("critical", "webhook:http://127.0.0.1:" + std::to_string(healthy_port) + "/hook")));
  // Bounded well under one timeout of the stuck receiver (10 s).
  CHECK(monitor::test::wait_until([&] { return monitor::test::read_file(hooks).find("critical") != std::string::npos; },
                                  3s));
  // The sink writes the page down before it answers, so the count follows a moment later.
  CHECK(monitor::test::wait_until([&] { return notifier.counters().sent == 1; }, 3s));
  CHECK(notifier.counters().sent == 1);
  ::close(stuck);
}

// Issue 20: while commands waited for a free slot (command_max_running) the
// notifier spun at ~80 % of a core.
TEST_CASE("commands waiting for a free slot cost no CPU", "[alarms][notifier][command]") {
  monitor::test::TempDir dir;
  monitor::judger::NotifierOptions options;
  options.command_max_running = 1;
  Notifier notifier(dir.path(), options);
  const double cpu_before = cpu_seconds_of_this_process();
  for (int i = 0; i < 3; ++i) REQUIRE(notifier.enqueue(page("sleep-" + std::to_string(i), "command:/bin/sleep 2")));
  // While the first runs (2 s) the other two wait for its slot.
  REQUIRE(monitor::test::wait_until([&] { return notifier.counters().sent == 1; }, 10s));
  const double cpu = cpu_seconds_of_this_process() - cpu_before;
  INFO("CPU seconds used while a command ran and two waited: " << cpu);
  CHECK(cpu < 0.3);  // a spin costs ~1.6 s of the 2 s
  REQUIRE(monitor::test::wait_until([&] { return notifier.counters().sent == 3; }, 15s));
}

// Issue 20: a command under way when the judger stopped was killed and left
// pending, so it ran again after the restart: a page sent twice by a command
// that had done its work.
TEST_CASE("a command still running when the notifier stops finishes and is not run again after the restart",
          "[alarms][notifier][command]") {
  monitor::test::TempDir dir;
  const std::string runs = dir.file("runs");
  const auto n = page("paged-once", "command:/bin/sh -c \"echo started >> " + runs + "; sleep 1; echo done >> " + runs +
                                        "\"");
  {
    Notifier notifier(dir.path(), monitor::judger::NotifierOptions{});
    REQUIRE(notifier.enqueue(n));
    REQUIRE(monitor::test::wait_until([&] { return !monitor::test::read_file(runs).empty(); }, 10s));
  }  // stopped while the command sleeps
  Notifier restarted(dir.path(), monitor::judger::NotifierOptions{});
  CHECK(restarted.pending() == 0);
  CHECK(monitor::test::read_file(runs) == "started\ndone\n");
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  bool delivered = false;
  for (const auto& row : restarted.history("Shop.Api.Slow", 0, now + 1, 10)) {
    delivered = delivered || row.at("event").as_string() == "delivered";
  }
  INFO(boost::json::serialize(restarted.history("Shop.Api.Slow", 0, now + 1, 10)));
  CHECK(delivered);
}
