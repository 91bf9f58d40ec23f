#include "dashboard/dashboard_server.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/process_info.hpp"
#include "net/endpoint.hpp"
#include "net/query_string.hpp"
#include "net/spawn.hpp"

#ifndef MONITOR_DASHBOARD_WEB_ROOT
#define MONITOR_DASHBOARD_WEB_ROOT ""
#endif

namespace monitor::dashboard {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;
namespace {

constexpr size_t kMaxRequestBody = 64 * 1024;  // sign-in, an ack, a silence: small JSON

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.starts_with(name) && part.size() > name.size() && part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return "";
}

std::string content_type_of(const std::string& path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  if (path.ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

// The web application this build made, or the one installed beside the binary.
std::string find_web_root(const std::string& configured) {
  std::vector<std::string> candidates;
  if (!configured.empty()) candidates.push_back(configured);
  candidates.push_back(MONITOR_DASHBOARD_WEB_ROOT);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path().parent_path() / "share" / "monitor" / "dashboard").string());
  for (const auto& c : candidates) {
    if (!c.empty() && std::filesystem::exists(std::filesystem::path(c) / "index.html", ec)) return c;
  }
  throw std::runtime_error(fmt::format(
      "no web application (index.html) in {}: build the target dashboard_web or pass --web-root",
      configured.empty() ? std::string(MONITOR_DASHBOARD_WEB_ROOT) : configured));
}

}  // namespace

DashboardServer::DashboardServer(DashboardConfig config)
    : config_(std::move(config)),
      acceptor_(io_),
      health_("Monitor.Dashboard", config_.server_id, config_.self_metrics) {
  config_.validate();
  health_.expose(&metrics_);
  web_root_ = find_web_root(config_.web_root);
  api_pool_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(config_.api_threads));
  auto reg = registry::open_registry(config_.registry);
  if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", config_.registry, reg.error().message()));
  registry_ = std::move(*reg);
  api_ = std::make_unique<DashboardApi>(
      *registry_, ApiOptions{config_.registry, config_.session_ttl_s, 10000, config_.judger_timeout_s});
  const auto endpoint = net::parse_endpoint(config_.listen);
  if (!endpoint) throw std::runtime_error(fmt::format("listen address {}: not a numeric host:port", config_.listen));
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("listen on {}: {}", config_.listen, ec.message()));
  spdlog::info("dashboard on http://{} (web application {}, registry {})",
               net::format_endpoint(acceptor_.local_endpoint()), web_root_, config_.registry);
}

DashboardServer::~DashboardServer() = default;

asio::awaitable<void> DashboardServer::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (stopping_) co_return;
      continue;
    }
    if (connections_ >= config_.max_connections) {
      ++connections_refused_;
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::spawn(io_, session(std::move(socket)), "an HTTP session");
  }
}

asio::awaitable<void> DashboardServer::session(tcp::socket socket) {
  struct Running {
    std::atomic<uint32_t>& count;
    explicit Running(std::atomic<uint32_t>& c) : count(c) { ++count; }
    ~Running() { --count; }
  } running(connections_);
  boost::system::error_code address_ec;
  const std::string address = socket.remote_endpoint(address_ec).address().to_string();
  boost::beast::tcp_stream stream(std::move(socket));
  boost::beast::flat_buffer buffer;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBody);
    stream.expires_after(60s);  // an idle kept-alive connection, or a slow client, is dropped
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (read_ec) break;
    const auto& request = parser.get();
    const std::string_view target(request.target().data(), request.target().size());
    const size_t question = target.find('?');
    std::string path;
    std::map<std::string, std::string> params;
    const bool well_formed =
        net::decode_component(target.substr(0, question), path) &&
        (question == std::string_view::npos || net::parse_query_string(target.substr(question + 1), params));
    http::response<http::string_body> response{http::status::ok, request.version()};
    response.set("X-Content-Type-Options", "nosniff");
    if (!well_formed) {
      response.result(http::status::bad_request);
      response.set(http::field::content_type, "application/json");
      response.body() = R"({"error":"malformed URL: a % must be followed by two hex digits"})";
    } else if (path.starts_with("/api/") && path != "/api/health") {
      ApiRequest api_request{std::string(request.method_string()), path, std::move(params),
                             request.body(),
                             cookie_value(std::string_view(request[http::field::cookie].data(),
                                                           request[http::field::cookie].size()),
                                          "monitor_session")};
      ApiResponse answer;
      // On the API pool: a call may wait on a judger for judger_timeout_s,
      // and these threads must go on serving everybody else meanwhile.
      // One client address gets max_api_per_address of it at once.
      bool admitted = false;
      {
        std::lock_guard lock(api_mutex_);
        int& mine = api_by_address_[address];
        admitted = mine < config_.max_api_per_address;
        if (admitted) ++mine;
      }
      if (!admitted) {
        ++api_refused_;
        answer = ApiResponse{429, fmt::format(R"({{"error":"{} API calls of this address are under way: try again when they are answered"}})",
                                              config_.max_api_per_address), ""};
      } else {
        // Released however the call ends.
        struct ApiCall {
          DashboardServer& server;
          const std::string& address;
          explicit ApiCall(DashboardServer& s, const std::string& a) : server(s), address(a) { ++server.api_running_; }
          ~ApiCall() {
            --server.api_running_;
            std::lock_guard lock(server.api_mutex_);
            if (auto it = server.api_by_address_.find(address); it != server.api_by_address_.end() && --it->second <= 0) {
              server.api_by_address_.erase(it);
            }
          }
        } running_call(*this, address);
        answer = co_await asio::co_spawn(
            *api_pool_, [&]() -> asio::awaitable<ApiResponse> { co_return api_->handle(api_request); },
            asio::use_awaitable);
      }
      response.result(static_cast<http::status>(answer.status));
      response.set(http::field::content_type, "application/json");
      response.set(http::field::cache_control, "no-store");
      if (!answer.set_cookie.empty()) response.set(http::field::set_cookie, answer.set_cookie);
      response.body() = std::move(answer.body);
    } else if (request.method() != http::verb::get) {
      response.result(http::status::method_not_allowed);
      response.body() = "only GET here";
    } else if (path == "/api/health") {
      response.set(http::field::content_type, "application/json");
      response.body() = health_json();
    } else if (path == "/metrics") {
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = metrics_.text();
    } else {
      const std::string file = path == "/" ? "/index.html" : path;
      std::ifstream in;
      if (file.find("..") == std::string::npos && file.find('\0') == std::string::npos) {
        in.open(web_root_ + file, std::ios::binary);
      }
      if (!in || std::filesystem::is_directory(web_root_ + file)) {
        response.result(http::status::not_found);
        response.set(http::field::content_type, "text/plain");
        response.body() = "not found";
      } else {
        std::ostringstream content;
        content << in.rdbuf();
        response.set(http::field::content_type, content_type_of(file));
        response.set(http::field::cache_control, "no-cache");
        response.set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
        response.body() = content.str();
      }
    }
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    stream.expires_after(30s);
    auto [write_ec, write_n] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    if (write_ec || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

std::string DashboardServer::health_json() const {
  const ApiCounters& c = api_->counters();
  return boost::json::serialize(boost::json::object{
      {"requests", c.requests.load()},          {"refused", c.refused.load()},
      {"bad_requests", c.bad_requests.load()},  {"sign_ins", c.sign_ins.load()},
      {"sign_ins_failed", c.sign_ins_failed.load()}, {"judger_errors", c.judger_errors.load()},
      {"sessions", api_->sessions()},           {"connections", connections_.load()},
      {"connections_refused", connections_refused_.load()},
      {"api_running", api_running_.load()},   {"api_refused", api_refused_.load()}});
}

void DashboardServer::report_health() {
  const ApiCounters& c = api_->counters();
  health_.counter("Requests.Served", c.requests.load());
  health_.counter("Requests.Refused", c.refused.load());
  health_.counter("Requests.Bad", c.bad_requests.load());
  health_.counter("SignIns.Ok", c.sign_ins.load());
  health_.counter("SignIns.Failed", c.sign_ins_failed.load());
  health_.counter("Judger.Errors", c.judger_errors.load());
  health_.gauge("Sessions.Live", static_cast<int64_t>(api_->sessions()));
  const RssInfo rss = read_rss();
  health_.gauge("Process.RssBytes", static_cast<int64_t>(rss.anon_bytes + rss.file_bytes));
}

asio::awaitable<void> DashboardServer::health_loop() {
  asio::steady_timer timer(io_);
  while (!stopping_) {
    net::guarded("reporting health", [&] { report_health(); });
    timer.expires_after(5s);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

int DashboardServer::run() {
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: stopping", sig);
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    io_.stop();
  });
  net::spawn(io_, accept_loop(), "the HTTP listener");
  net::spawn(io_, health_loop(), "the health loop");
  std::vector<std::thread> threads;
  for (int i = 1; i < config_.threads; ++i) threads.emplace_back([this] { io_.run(); });
  io_.run();
  for (auto& t : threads) t.join();
  api_pool_->join();  // calls under way end within judger_timeout_s
  spdlog::info("stopped: {}", health_json());
  return 0;
}

}  // namespace monitor::dashboard
