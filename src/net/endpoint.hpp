// "host:port" addresses as every part's config and the registry write them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace monitor::net {

/// A numeric IPv4 or IPv6 address and a port ("127.0.0.1:7300", "[::1]:7300"),
/// or nullopt. Names are not resolved: the registry holds addresses.
std::optional<boost::asio::ip::tcp::endpoint> parse_endpoint(std::string_view text);

/// The inverse, for logs and registry entries.
std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace monitor::net
