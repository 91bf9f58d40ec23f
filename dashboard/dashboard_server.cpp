#include "dashboard/dashboard_server.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
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
#include "query/judger_client.hpp"

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

// Why a call that changes state (sign-in, sign-out, an ack, a silence) is
// refused, if it is: it must come from this dashboard's own pages. A browser
// sends the Origin of the page that makes it; a page of another origin
// (another port of this host too, which a SameSite cookie does not tell
// apart) cannot send JSON without a CORS preflight this server never grants.
// Clients that are not browsers send no Origin and carry their own cookie.
struct Refusal {
  unsigned status;
  std::string why;
};
std::optional<Refusal> cross_origin_refusal(const http::request<http::string_body>& request, bool https) {
  constexpr std::string_view kJson = "application/json";
  if (!boost::beast::iequals(request[http::field::content_type].substr(0, kJson.size()), kJson)) {
    return Refusal{415, "send the call as JSON (Content-Type: application/json)"};
  }
  const auto origin = request[http::field::origin];
  if (origin.empty()) return std::nullopt;
  const auto host = request[http::field::host];
  const std::string_view from(origin.data(), origin.size());
  const std::string_view own(host.data(), host.size());
  const std::string_view scheme = https ? "https://" : "http://";
  if (!own.empty() && from.size() == scheme.size() + own.size() && from.starts_with(scheme) && from.ends_with(own)) {
    return std::nullopt;
  }
  return Refusal{403, fmt::format("a call from another origin ({}) may not change anything here", from)};
}

}  // namespace

DashboardServer::DashboardServer(DashboardConfig config)
    : config_(std::move(config)),
      acceptor_(io_),
      health_("Monitor.Dashboard", config_.server_id, config_.self_metrics) {
  config_.validate();
  query::JudgerClient::set_token(config_.judger_token);
  if (!config_.query_ca.empty()) query::JudgerClient::set_https(net::make_https_client(config_.query_ca));
  https_ = net::make_https_server(config_.https_cert, config_.https_key, {});
  health_.expose(&metrics_);
  web_root_ = find_web_root(config_.web_root);
  web_root_canonical_ = std::filesystem::canonical(web_root_);
  api_pool_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(config_.api_threads));
  auto reg = registry::open_registry(config_.registry);
  if (!reg) throw std::runtime_error(fmt::format("open registry {}: {}", config_.registry, reg.error().message()));
  registry_ = std::move(*reg);
  ApiOptions api_options;
  api_options.registry_address = config_.registry;
  api_options.session_ttl_s = config_.session_ttl_s;
  api_options.max_sessions_per_user = static_cast<size_t>(config_.max_sessions_per_user);
  api_options.sign_in_throttle.free_failures = config_.sign_in_free_failures;
  api_options.sign_in_throttle.max_delay_s = config_.sign_in_max_delay_s;
  api_options.judger_timeout_s = config_.judger_timeout_s;
  api_options.https = https_ != nullptr;
  api_ = std::make_unique<DashboardApi>(*registry_, std::move(api_options));
  net::listen_on(acceptor_, config_.listen, "listen");
  net::HttpServer::Options http_options;
  http_options.name = "dashboard";
  http_options.max_connections = static_cast<size_t>(config_.max_connections);
  http_options.max_per_address = static_cast<size_t>(config_.max_connections_per_address);
  http_options.read_timeout = 60s;  // an idle kept-alive connection, or a slow client, is dropped
  http_options.write_timeout = 30s;
  http_options.max_body = kMaxRequestBody;
  http_options.tls = https_;
  http_ = std::make_unique<net::HttpServer>(acceptor_, http_options,
                                            [this](net::HttpExchange& exchange) { return handle(exchange); });
  spdlog::info("dashboard on {}://{} (web application {}, registry {})",
               https_ ? "https" : "http", net::format_endpoint(acceptor_.local_endpoint()), web_root_, config_.registry);
}

DashboardServer::~DashboardServer() = default;

asio::awaitable<net::HttpReply> DashboardServer::handle(net::HttpExchange& exchange) {
  const auto& request = exchange.request;
  const std::string_view target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  std::string path;
  std::map<std::string, std::string> params;
  const bool well_formed =
      net::decode_component(target.substr(0, question), path) &&
      (question == std::string_view::npos || net::parse_query_string(target.substr(question + 1), params));
  net::HttpReply reply;
  reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
  const bool api_call = well_formed && path.starts_with("/api/") && path != "/api/health";
  const auto refused =
      api_call && request.method() != http::verb::get ? cross_origin_refusal(request, https_ != nullptr) : std::nullopt;
  if (!well_formed) {
    reply.status = 400;
    reply.body = R"({"error":"malformed URL: a % must be followed by two hex digits"})";
  } else if (refused) {
    ++cross_origin_refused_;
    reply.status = refused->status;
    reply.body = boost::json::serialize(boost::json::object{{"error", refused->why}});
  } else if (api_call) {
    ApiRequest api_request{std::string(request.method_string()), path, std::move(params), request.body(),
                           cookie_value(std::string_view(request[http::field::cookie].data(),
                                                         request[http::field::cookie].size()),
                                        "monitor_session"),
                           exchange.peer_address};
    const ApiResponse answer = co_await call_api(exchange.peer_address, std::move(api_request));
    reply.status = static_cast<unsigned>(answer.status);
    reply.headers.emplace_back("Cache-Control", "no-store");
    if (!answer.set_cookie.empty()) reply.headers.emplace_back("Set-Cookie", answer.set_cookie);
    if (answer.retry_after_s > 0) reply.headers.emplace_back("Retry-After", std::to_string(answer.retry_after_s));
    reply.body = answer.body;
  } else if (request.method() != http::verb::get) {
    reply = {405, "text/plain", "only GET here", std::move(reply.headers), false};
  } else if (path == "/api/health") {
    reply.body = health_json();
  } else if (path == "/metrics") {
    reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.body = metrics_.text();
  } else {
    serve_file(path, reply);
  }
  co_return reply;
}

asio::awaitable<ApiResponse> DashboardServer::call_api(const std::string& address, ApiRequest request) {
  // On the API pool: a call may wait on a judger for judger_timeout_s, and
  // the io threads must go on serving everybody else meanwhile. One client
  // address gets max_api_per_address of it at once.
  {
    std::lock_guard lock(api_mutex_);
    int& mine = api_by_address_[address];
    if (mine >= config_.max_api_per_address) {
      ++api_refused_;
      co_return ApiResponse{429,
                            fmt::format(R"({{"error":"{} API calls of this address are under way: try again when they "
                                        "are answered"}})",
                                        config_.max_api_per_address),
                            ""};
    }
    ++mine;
  }
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
  co_return co_await asio::co_spawn(
      *api_pool_, [&]() -> asio::awaitable<ApiResponse> { co_return api_->handle(request); }, asio::use_awaitable);
}

void DashboardServer::serve_file(const std::string& path, net::HttpReply& reply) const {
  // Only a regular file inside the web root: the path is resolved (links,
  // "..") and must still be under it. A target not starting with '/' once
  // read "<root>-secret.txt" beside it.
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path file;
  if (path.starts_with('/') && path.find('\0') == std::string::npos) {
    file = fs::weakly_canonical(fs::path(web_root_) / (path == "/" ? "index.html" : path.substr(1)), ec);
  }
  const auto [end, rest] = std::mismatch(web_root_canonical_.begin(), web_root_canonical_.end(), file.begin(), file.end());
  std::ifstream in;
  if (!ec && !file.empty() && end == web_root_canonical_.end() && rest != file.end() && fs::is_regular_file(file, ec)) {
    in.open(file, std::ios::binary);
  }
  if (!in.is_open() || !in) {
    reply.status = 404;
    reply.content_type = "text/plain";
    reply.body = "not found";
    return;
  }
  std::ostringstream content;
  content << in.rdbuf();
  reply.content_type = content_type_of(file.string());
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.headers.emplace_back("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
  reply.body = content.str();
}

const health::HealthTable<DashboardServer>& DashboardServer::health_table() {
  using D = DashboardServer;
  static const health::HealthTable<DashboardServer> table = [] {
    health::HealthTable<DashboardServer> t;
    t.counter("Requests.Served", "requests", "", [](const D& d) { return d.api_->counters().requests.load(); })
        .counter("Requests.Refused", "refused", "", [](const D& d) { return d.api_->counters().refused.load(); })
        .counter("Requests.Bad", "bad_requests", "", [](const D& d) { return d.api_->counters().bad_requests.load(); })
        .counter("SignIns.Ok", "sign_ins", "", [](const D& d) { return d.api_->counters().sign_ins.load(); })
        .counter("SignIns.Failed", "sign_ins_failed", "", [](const D& d) { return d.api_->counters().sign_ins_failed.load(); })
        .counter("SignIns.Throttled", "sign_ins_throttled", "",
                 [](const D& d) { return d.api_->counters().sign_ins_throttled.load(); })
        .counter("Judger.Errors", "judger_errors", "", [](const D& d) { return d.api_->counters().judger_errors.load(); })
        .gauge("Sessions.Live", "sessions", "", [](const D& d) { return static_cast<int64_t>(d.api_->sessions()); })
        .resident_memory();
    return t;
  }();
  return table;
}

std::vector<std::string> DashboardServer::health_attrs() { return health_table().attrs(); }

std::string DashboardServer::health_json() const {
  boost::json::object health{{"connections", http_->counters().live.load()},
                             {"connections_refused", http_->counters().connections_refused.load()},
                             {"api_running", api_running_.load()},
                             {"api_refused", api_refused_.load()},
                             {"cross_origin_refused", cross_origin_refused_.load()}};
  health_table().add_json(*this, health);
  return boost::json::serialize(health);
}

void DashboardServer::report_health() { health_table().report(*this, health_); }

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
    http_->stop();
    acceptor_.close(ignored);
    io_.stop();
  });
  net::reload_on_sighup(io_, {https_});
  http_->start();
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
