// The judger's one way to SQLite: opening a database (flags, busy timeout),
// running a schema, a transaction, a prepared statement, and SQLite's result
// codes as errors. The minute store, its readers, the WAL checkpointer, the
// notifier's outbox and the exporter's positions use it.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace monitor::judger {

/// SQLite's result codes as error codes; the message is SQLite's own.
class SqliteCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int ev) const override { return sqlite3_errstr(ev); }
};
inline const SqliteCategory kSqliteCategory;

inline boost::system::error_code sqlite_error(int rc) { return {rc, kSqliteCategory}; }

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

enum class OpenMode { kReadOnly, kReadWrite, kCreate };
// kOneThread: the connection is used by one thread at a time (no mutex of
// SQLite's own); kShared: by several (SQLite serializes them).
enum class Threading { kOneThread, kShared };

/// Opens `file` with a busy timeout of 5 s: the judger's threads share its
/// files in WAL mode, and a reader waits only while the writer checkpoints or
/// recovers the log. Throws std::runtime_error("open <file>: <SQLite's message>").
Db open_db(const std::filesystem::path& file, OpenMode mode, Threading threading = Threading::kOneThread);
/// The same, the failure as SQLite's result code (for the store and its
/// readers, which report rather than throw).
boost::system::result<Db> try_open_db(const std::filesystem::path& file, OpenMode mode,
                                      Threading threading = Threading::kOneThread);

/// Runs `sql` (statements without results: a schema, pragmas). Throws
/// std::runtime_error("<what>: <SQLite's message>").
void exec_or_throw(sqlite3* db, const char* sql, std::string_view what);

/// BEGIN IMMEDIATE; rolled back unless commit() ran.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { rc_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  int begin_rc() const { return rc_; }
  int commit() {
    done_ = true;
    return sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
  int rc_;
  bool done_ = false;
};

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  int prepare_rc() const { return rc_; }
  Statement& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string_view blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

}  // namespace monitor::judger
