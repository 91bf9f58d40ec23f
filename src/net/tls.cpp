#include "net/tls.hpp"

#include <charconv>
#include <stdexcept>

#include <csignal>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <spdlog/spdlog.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/endpoint.hpp"

namespace monitor::net {

namespace ssl = boost::asio::ssl;

namespace {

std::string openssl_reason(const boost::system::error_code& ec) {
  // Asio's message for an OpenSSL error is its reason string ("no such file",
  // "key values mismatch"), which is what a person fixing the file needs.
  return ec.message();
}

std::shared_ptr<ssl::context> load(const TlsFiles& files, TlsUse use) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls);
  // TLS 1.3 only: every part is ours, and 1.3 has no weak suites to rule out.
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_3_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  SSL_CTX_set_num_tickets(context->native_handle(), 0);  // connections are long-lived: no resumption
  // AES-128-GCM first: a quarter cheaper than AES-256 on a proxy moving
  // hundreds of MB/s, and as safe for links whose keys live an hour.
  SSL_CTX_set_ciphersuites(context->native_handle(),
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  boost::system::error_code ec;
  const auto fail = [&](std::string_view what, const std::string& path) {
    throw std::runtime_error(fmt::format("TLS {} {}: {}", what, path, openssl_reason(ec)));
  };
  if (!files.ca.empty()) {
    if (context->load_verify_file(files.ca, ec); ec) fail("CA", files.ca);
  }
  if (context->use_certificate_chain_file(files.cert, ec); ec) fail("certificate", files.cert);
  if (context->use_private_key_file(files.key, ssl::context::pem, ec); ec) fail("key", files.key);
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw std::runtime_error(fmt::format("TLS key {} does not belong to certificate {}", files.key, files.cert));
  }
  if (use == TlsUse::kLink) {
    // Both ends show a certificate from the deployment's CA, or there is no link.
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  } else if (!files.ca.empty()) {
    // Asked for, not required: a browser or a user's token needs none, and
    // one that is shown and does not verify ends the handshake.
    context->set_verify_mode(ssl::verify_peer, ec);
    // Without a session id context OpenSSL refuses to resume a session that
    // had a client certificate; with no tickets there is nothing to resume.
    SSL_CTX_set_session_id_context(context->native_handle(), reinterpret_cast<const unsigned char*>("monitor"), 7);
  }
  return context;
}

}  // namespace

std::string PeerIdentity::text() const { return fmt::format("{}:{}", wire::role_name(role), name); }

std::optional<PeerIdentity> parse_identity(std::string_view common_name) {
  const size_t colon = common_name.find(':');
  if (colon == std::string_view::npos || colon + 1 == common_name.size()) return std::nullopt;
  const std::string_view role = common_name.substr(0, colon);
  PeerIdentity identity;
  identity.name = std::string(common_name.substr(colon + 1));
  for (const wire::Role r : {wire::Role::kAgent, wire::Role::kClyde, wire::Role::kBonnie, wire::Role::kJudger}) {
    if (wire::role_name(r) == role) {
      identity.role = r;
      return identity;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> agent_sender_id(const PeerIdentity& identity) {
  if (identity.role != wire::Role::kAgent) return std::nullopt;
  uint64_t id = 0;
  const char* end = identity.name.data() + identity.name.size();
  const auto [ptr, ec] = std::from_chars(identity.name.data(), end, id);
  if (ec != std::errc{} || ptr != end || id == 0) return std::nullopt;
  return id;
}

std::optional<PeerIdentity> certificate_identity(const X509* certificate) {
  if (certificate == nullptr) return std::nullopt;
  const X509_NAME* subject = X509_get_subject_name(certificate);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return std::nullopt;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  return parse_identity(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                                         static_cast<size_t>(ASN1_STRING_length(data))));
}

TlsContext::TlsContext(TlsFiles files, TlsUse use) : files_(std::move(files)), use_(use) {
  if (use_ == TlsUse::kLink && (files_.ca.empty() || files_.cert.empty() || files_.key.empty())) {
    throw std::runtime_error("TLS needs tls_ca, tls_cert and tls_key: all three files, or none for plain TCP");
  }
  if (use_ == TlsUse::kHttpsServer && (files_.cert.empty() || files_.key.empty())) {
    throw std::runtime_error("HTTPS needs https_cert and https_key: both files, or neither for plain HTTP");
  }
  if (const std::string error = reload(); !error.empty()) throw std::runtime_error(error);
}

TlsContext::~TlsContext() = default;

TlsSession::TlsSession(ssl::context& context, bool accepting) : ssl_(SSL_new(context.native_handle())) {
  if (ssl_ == nullptr) throw std::bad_alloc();
  input_ = BIO_new(BIO_s_mem());
  output_ = BIO_new(BIO_s_mem());
  // An empty input BIO means "more to come", not end of file.
  BIO_set_mem_eof_return(input_, -1);
  BIO_set_mem_eof_return(output_, -1);
  SSL_set_bio(ssl_, input_, output_);
  if (accepting) SSL_set_accept_state(ssl_);
  else SSL_set_connect_state(ssl_);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::fail(int result) {
  const int code = SSL_get_error(ssl_, result);
  if (code == SSL_ERROR_ZERO_RETURN) {
    error_ = "the peer closed TLS";
  } else if (const unsigned long e = ERR_get_error(); e != 0) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    const char* reason = ERR_reason_error_string(e);
    error_ = reason != nullptr ? reason : text;
    if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      error_ += fmt::format(" ({})", X509_verify_cert_error_string(SSL_get_verify_result(ssl_)));
    }
  } else {
    error_ = fmt::format("TLS error {}", code);
  }
  ERR_clear_error();
}

TlsSession::Step TlsSession::handshake() {
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl_);
  if (result == 1) return Step::kDone;
  if (SSL_get_error(ssl_, result) == SSL_ERROR_WANT_READ) return Step::kWantInput;
  fail(result);
  return Step::kFailed;
}

void TlsSession::feed(const char* data, size_t size) {
  // A memory BIO takes everything it is given.
  (void)BIO_write(input_, data, static_cast<int>(size));
}

ptrdiff_t TlsSession::read(char* out, size_t capacity) {
  ERR_clear_error();
  size_t got = 0;
  const int result = SSL_read_ex(ssl_, out, capacity, &got);
  if (result == 1) return static_cast<ptrdiff_t>(got);
  if (SSL_get_error(ssl_, result) == SSL_ERROR_WANT_READ) return 0;
  fail(result);
  return -1;
}

bool TlsSession::seal(std::string_view plain, std::string& out) {
  ERR_clear_error();
  size_t written = 0;
  if (!plain.empty() && SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1) {
    fail(0);
    return false;
  }
  take_output(out);
  return true;
}

void TlsSession::take_output(std::string& out) {
  char* data = nullptr;
  const long pending = BIO_get_mem_data(output_, &data);
  if (pending <= 0) return;
  out.append(data, static_cast<size_t>(pending));  // one copy, no zero fill first
  (void)BIO_reset(output_);
}

bool TlsSession::output_pending() const { return BIO_ctrl_pending(output_) > 0; }

std::optional<PeerIdentity> TlsSession::peer_identity() const {
  X509* certificate = SSL_get1_peer_certificate(ssl_);
  auto identity = certificate_identity(certificate);
  X509_free(certificate);
  return identity;
}

std::string TlsContext::reload() {
  try {
    auto context = load(files_, use_);
    if (use_ == TlsUse::kHttpsServer) {  // names a host, not a part
      std::lock_guard lock(mutex_);
      context_ = std::move(context);
      return {};
    }
    const auto own = certificate_identity(SSL_CTX_get0_certificate(context->native_handle()));
    if (!own) {
      return fmt::format("TLS certificate {}: its common name is not <role>:<name> (agent, clyde, bonnie, judger)",
                         files_.cert);
    }
    std::lock_guard lock(mutex_);
    context_ = std::move(context);
    own_ = *own;
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::shared_ptr<ssl::context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

PeerIdentity TlsContext::own_identity() const {
  std::lock_guard lock(mutex_);
  return own_;
}

std::shared_ptr<TlsContext> make_tls(const TlsFiles& files, wire::Role role) {
  if (!files.enabled()) return nullptr;
  auto tls = std::make_shared<TlsContext>(files);
  if (tls->own_identity().role != role) {
    throw std::runtime_error(fmt::format("TLS certificate {} is of {}, not of a {}", files.cert,
                                         tls->own_identity().text(), wire::role_name(role)));
  }
  return tls;
}

std::shared_ptr<TlsContext> make_https_server(const std::string& cert, const std::string& key,
                                              const std::string& client_ca) {
  if (cert.empty() && key.empty()) return nullptr;
  return std::make_shared<TlsContext>(TlsFiles{client_ca, cert, key}, TlsUse::kHttpsServer);
}

namespace {

using Contexts = std::vector<std::shared_ptr<TlsContext>>;

void wait_for_sighup(std::shared_ptr<boost::asio::signal_set> signals, std::shared_ptr<const Contexts> contexts) {
  signals->async_wait([signals, contexts](const boost::system::error_code& ec, int) {
    if (ec) return;  // the io_context is going away
    if (contexts->empty()) spdlog::info("SIGHUP: no TLS files to reload (plain TCP and HTTP)");
    for (const auto& tls : *contexts) {
      // After reload(): a renewed certificate may name the part anew.
      const auto named = [&] {
        return tls->use() == TlsUse::kLink ? tls->own_identity().text() : "HTTPS " + tls->files().cert;
      };
      if (const std::string error = tls->reload(); error.empty()) {
        spdlog::info("SIGHUP: TLS files reloaded ({}); new connections use them", named());
      } else {
        spdlog::error("SIGHUP: TLS files of {} not reloaded, the loaded ones stay: {}", named(), error);
      }
    }
    wait_for_sighup(signals, contexts);
  });
}

}  // namespace

void reload_on_sighup(boost::asio::io_context& io, std::vector<std::shared_ptr<TlsContext>> contexts) {
  std::erase(contexts, nullptr);
  wait_for_sighup(std::make_shared<boost::asio::signal_set>(io, SIGHUP),
                  std::make_shared<const Contexts>(std::move(contexts)));
}

}  // namespace monitor::net
