// monitor-proxy: Clyde (relays a data centre's agents to a Bonnie) or Bonnie
// (validates and routes by service to judgers).
#include "common/daemon_main.hpp"
#include "proxy/proxy.hpp"

int main(int argc, char** argv) {
  using monitor::proxy::ProxyConfig;
  const monitor::Daemon<ProxyConfig> daemon{
      "monitor-proxy",
      "Proxy between agents and judgers (docs/proxy.md).\n"
      "  --role clyde: relays the agents of a data centre to one Bonnie of its list,\n"
      "                failing over to another when it dies.\n"
      "  --role bonnie: drops reports of unregistered services and attrs, and routes\n"
      "                 the rest by service to the judger the registry assigns.",
      "docs/proxy.md", monitor::proxy::proxy_settings()};
  return monitor::daemon_main(argc, argv, daemon, [](ProxyConfig config, const cxxopts::ParseResult&) {
    monitor::proxy::Proxy proxy(std::move(config));
    return proxy.run();
  });
}
