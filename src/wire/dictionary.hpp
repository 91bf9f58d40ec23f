// The per-connection name dictionary (docs/protocol.md, "Dictionary").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wire/messages.hpp"

namespace monitor::wire {

/// Sender side: gives each (service, attr) an id on this connection and
/// collects the entries the peer has not been sent yet. Not thread-safe.
class SendDictionary {
 public:
  /// The pair's id; a new pair is queued for the next DICT frame.
  uint32_t id_for(std::string_view service, std::string_view attr);

  /// Appends a DICT frame with the queued entries to `out`, if there are any.
  /// Must be sent before any BATCH that uses them.
  void flush(std::string& out);

  size_t size() const noexcept { return ids_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;  // "service attr" -> id
  std::vector<DictEntry> pending_;
  std::string key_;
};

/// Names one connection may define at most; each costs its receiver ~200
/// bytes for the connection's life. Past it the DICT is kTooLarge.
inline constexpr size_t kMaxNamesPerConnection = size_t{1} << 18;

/// Receiver side: what the peer defined. Not thread-safe.
class ReceiveDictionary {
 public:
  /// Adds a DICT's entries; redefining an id on one connection is kBadPayload,
  /// more than kMaxNamesPerConnection in all is kTooLarge.
  WireError define(const std::vector<DictEntry>& entries);

  /// The names of `id`, or false if this connection never defined it.
  bool lookup(uint32_t id, std::string_view& service, std::string_view& attr) const noexcept;

  /// kUnknownNameId if any record of the batch uses an undefined id.
  WireError check(const Batch& batch) const noexcept;

  /// What a receiver does with a DICT frame: decode its payload and define
  /// the entries (also returned, for the receiver's own use of the names).
  WireError define(std::string_view payload, std::vector<DictEntry>& entries);
  /// What a receiver does with a BATCH frame: decode it and check its ids.
  WireError decode_batch(std::string_view payload, Batch& batch) const;

  size_t size() const noexcept { return names_.size(); }

 private:
  std::unordered_map<uint32_t, std::pair<std::string, std::string>> names_;
};

}  // namespace monitor::wire
