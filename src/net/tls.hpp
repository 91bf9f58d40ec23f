// TLS 1.3 with mutual authentication for the batch links (docs/security.md):
// one CA per deployment signs every part's certificate, and the certificate's
// common name, "<role>:<name>", is who the peer is. An agent's name is its
// sender id in decimal; a proxy's or a judger's is its configured name.
// Peers are not checked against host names: a certificate from the
// deployment's CA with the right role is the peer, wherever it connects from.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/messages.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio
struct x509_st;
struct ssl_st;
struct bio_st;

namespace monitor::net {

/// The files a part's TLS is made of; all empty: plain TCP.
struct TlsFiles {
  std::string ca;    // PEM: the deployment's CA, the only issuer trusted
  std::string cert;  // PEM: this part's certificate (chain)
  std::string key;   // PEM: its private key
  bool enabled() const noexcept { return !ca.empty() || !cert.empty() || !key.empty(); }
};

/// Who a certificate says it is.
struct PeerIdentity {
  wire::Role role = wire::Role::kAgent;
  std::string name;
  std::string text() const;  // "agent:42", for logs
};

/// "<role>:<name>" with a known role and a non-empty name, or nothing.
std::optional<PeerIdentity> parse_identity(std::string_view common_name);

/// The identity a verified certificate's common name gives, or nothing.
std::optional<PeerIdentity> certificate_identity(const x509_st* certificate);

/// For an agent: the sender id its identity names, or nothing.
std::optional<uint64_t> agent_sender_id(const PeerIdentity& identity);

/// What a context is for. kLink: a batch link, both ends showing a
/// certificate of the deployment's CA named "<role>:<name>". kHttpsServer: an
/// HTTP server (the judger's API, the dashboard): its certificate names its
/// host for browsers and curl; with a CA, a client may show a certificate of
/// it (verified, and then a credential), without one none is asked for.
enum class TlsUse { kLink, kHttpsServer };

/// A part's TLS settings, reloadable: connections made after reload() use the
/// new files, open ones keep theirs. Thread-safe.
class TlsContext {
 public:
  /// Loads the files; throws std::runtime_error naming the file and OpenSSL's
  /// reason (a daemon refuses to start with it).
  explicit TlsContext(TlsFiles files, TlsUse use = TlsUse::kLink);
  ~TlsContext();

  /// Loads the files again (SIGHUP). On failure keeps the current ones and
  /// returns the reason; empty on success.
  std::string reload();

  /// The context new connections use; a connection holds it for its life.
  std::shared_ptr<boost::asio::ssl::context> current() const;
  /// Who this part's own certificate says it is (as loaded last; kLink).
  PeerIdentity own_identity() const;
  const TlsFiles& files() const noexcept { return files_; }
  TlsUse use() const noexcept { return use_; }

 private:
  const TlsFiles files_;
  const TlsUse use_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  PeerIdentity own_;
};

/// The part's TLS context, or null for plain TCP; throws (to refuse to start)
/// when the files do not load or are not a certificate of `role`.
std::shared_ptr<TlsContext> make_tls(const TlsFiles& files, wire::Role role);

/// An HTTP server's TLS (TlsUse::kHttpsServer), or null when `cert` and `key`
/// are both empty (plain HTTP); throws when only one is set or they do not
/// load. `client_ca` may be empty: no client certificates asked for.
std::shared_ptr<TlsContext> make_https_server(const std::string& cert, const std::string& key,
                                              const std::string& client_ca);

/// One connection's TLS, in memory: ciphertext in from the socket with
/// feed(), plaintext out with read(); plaintext in with seal(), ciphertext
/// out to the socket. The caller moves the bytes (in as large reads and
/// writes as it likes: a record per system call would cost a third of a
/// proxy's throughput). Single-threaded, like the connection.
class TlsSession {
 public:
  TlsSession(boost::asio::ssl::context& context, bool accepting);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Step { kDone, kWantInput, kFailed };
  /// Advances the handshake; after each call send take_output(), and on
  /// kWantInput feed() what the peer sends next.
  Step handshake();
  /// Bytes received from the peer.
  void feed(const char* data, size_t size);
  /// Plaintext decrypted so far, up to `capacity` bytes: > 0 bytes, 0 when it
  /// needs more input, -1 when the peer closed or the stream failed (error()).
  ptrdiff_t read(char* out, size_t capacity);
  /// Encrypts `plain`, appending the records to `out` (after any protocol
  /// bytes waiting to go out, so the order on the wire is the session's).
  bool seal(std::string_view plain, std::string& out);
  /// Appends bytes the session has to send (handshake, alerts, replies).
  void take_output(std::string& out);
  bool output_pending() const;
  /// The verified peer certificate's identity, after the handshake.
  std::optional<PeerIdentity> peer_identity() const;
  /// Why the last step failed, in OpenSSL's words.
  const std::string& error() const noexcept { return error_; }

 private:
  void fail(int result);
  ssl_st* ssl_ = nullptr;
  bio_st* input_ = nullptr;   // owned by ssl_
  bio_st* output_ = nullptr;  // owned by ssl_
  std::string error_;
};

/// Reloads each of `contexts` on every SIGHUP delivered while `io` runs (a
/// renewed certificate takes effect for new connections), logging what
/// happened; null ones (plain TCP or HTTP) are skipped, and a SIGHUP with
/// none is only logged, never fatal.
void reload_on_sighup(boost::asio::io_context& io, std::vector<std::shared_ptr<TlsContext>> contexts);

}  // namespace monitor::net
