// The TLS settings every part of the batch path has, added to its settings
// table in one place: the config keys `tls_ca`, `tls_cert`, `tls_key` (and,
// for a part that listens, `allow_plaintext`), as in docs/security.md.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "common/settings.hpp"
#include "net/tls.hpp"

namespace monitor::net {

/// Adds the TLS keys to `table`; `Config` has string members tls_ca,
/// tls_cert and tls_key, and a bool allow_plaintext when `listens`.
template <class Config>
void add_tls_settings(SettingsTable<Config>& table, bool listens) {
  table.add("tls_ca", &Config::tls_ca, "PEM file of the deployment's CA (docs/security.md): with tls_cert and tls_key, "
                                       "every batch link is TLS 1.3 with certificates on both ends")
      .add("tls_cert", &Config::tls_cert, "PEM file of this part's certificate, its common name `<role>:<name>`")
      .add("tls_key", &Config::tls_key, "PEM file of its private key");
  if constexpr (requires { &Config::allow_plaintext; }) {
    if (listens) {
      table.add("allow_plaintext", &Config::allow_plaintext,
                "without TLS, listen for batches on an address other than loopback anyway");
    }
  }
}

/// Adds the HTTPS keys of a part that serves HTTP and queries judgers (the
/// judger, the dashboard): `https_cert` and `https_key` (serve HTTPS) and
/// `query_ca` (reach the judgers' API over HTTPS). `Config` has string
/// members of those names.
template <class Config>
void add_https_settings(SettingsTable<Config>& table, std::string_view served) {
  table.add("https_cert", &Config::https_cert,
            fmt::format("PEM file of the certificate {} is served with over HTTPS (TLS 1.3); it names the host or "
                        "address clients reach it by (docs/security.md). Empty: plain HTTP",
                        served))
      .add("https_key", &Config::https_key, "PEM file of https_cert's private key")
      .add("query_ca", &Config::query_ca,
           "PEM file of the CA that signs the judgers' HTTPS certificates: set, every judger's query API is "
           "reached over HTTPS and its certificate checked");
}

/// Throws when a part without TLS would listen for batches on an address other
/// than loopback and `allow_plaintext` is not set: what a daemon checks at
/// start. `listen_key` names its listen setting in the message.
void check_transport(const TlsFiles& files, bool allow_plaintext, std::string_view listen_key,
                     std::string_view listen_address);

template <class Config>
TlsFiles tls_files(const Config& config) {
  return TlsFiles{config.tls_ca, config.tls_cert, config.tls_key};
}

}  // namespace monitor::net
