#include "judger/sqlite_db.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace monitor::judger {
namespace {

int flags_of(OpenMode mode, Threading threading) {
  int flags = threading == Threading::kShared ? SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case OpenMode::kReadOnly: return flags | SQLITE_OPEN_READONLY;
    case OpenMode::kReadWrite: return flags | SQLITE_OPEN_READWRITE;
    case OpenMode::kCreate: return flags | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }
  return flags;
}

// Opens; on failure `rc` and `message` say why and the result is null.
Db open(const std::filesystem::path& file, OpenMode mode, Threading threading, int& rc, std::string& message) {
  sqlite3* raw = nullptr;
  rc = sqlite3_open_v2(file.c_str(), &raw, flags_of(mode, threading), nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    message = raw != nullptr ? sqlite3_errmsg(raw) : "out of memory";
    return nullptr;
  }
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

}  // namespace

Db open_db(const std::filesystem::path& file, OpenMode mode, Threading threading) {
  int rc = SQLITE_OK;
  std::string message;
  Db db = open(file, mode, threading, rc, message);
  if (!db) throw std::runtime_error(fmt::format("open {}: {}", file.string(), message));
  return db;
}

boost::system::result<Db> try_open_db(const std::filesystem::path& file, OpenMode mode, Threading threading) {
  int rc = SQLITE_OK;
  std::string message;
  Db db = open(file, mode, threading, rc, message);
  if (!db) return sqlite_error(rc);
  return db;
}

void exec_or_throw(sqlite3* db, const char* sql, std::string_view what) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw std::runtime_error(fmt::format("{}: {}", what, message));
  }
}

}  // namespace monitor::judger
