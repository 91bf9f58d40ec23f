#include "net/tls_settings.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "net/endpoint.hpp"

namespace monitor::net {

void check_transport(const TlsFiles& files, bool allow_plaintext, std::string_view listen_key,
                     std::string_view listen_address) {
  if (files.enabled() || allow_plaintext || listen_address.empty()) return;
  const auto endpoint = parse_endpoint(listen_address);
  if (endpoint && endpoint->address().is_loopback()) return;
  throw std::runtime_error(fmt::format(
      "{} {} is not a loopback address: configure tls_ca, tls_cert and tls_key (docs/security.md), "
      "or set allow_plaintext to accept plain TCP from the network",
      listen_key, listen_address));
}

}  // namespace monitor::net
