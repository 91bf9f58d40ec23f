// Who feeds this judger, and how far each has sent: decides when a minute's
// data is in (docs/judger.md, "When a minute is final").
//
// A feeder is a batch connection's peer (an agent sending directly, or a
// proxy). One that sends WATERMARK frames says "every second before S is
// sent ahead of this frame"; the judger handles a connection's frames in
// order, so by then those seconds are in the roll-up. A minute is complete
// when every live feeder's watermark has passed its end. Feeders that say
// nothing (an older version, a proxy replaying its spool) and feeders that
// went away (silent) are given the fixed grace instead, as before watermarks;
// a live feeder whose watermark lags holds minutes at most `wait_s`.
//
// Feeders are remembered in a small file beside the store, so a judger that
// starts again knows whom to wait for: until each remembered feeder is back
// and has sent a watermark (or the catch-up bound passes), the minutes that
// ended while it was down are not complete.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace monitor::judger {

class Feeders {
 public:
  struct Options {
    int grace_s = 7;   // for feeders that send no watermark, or went away
    int wait_s = 30;   // the longest a live feeder's lagging watermark holds a minute
    int fresh_s = 5;   // a watermark older than this no longer counts: the feeder is unmarked
    int forget_s = 300;  // a feeder gone this long is not waited for any more
  };
  /// Why complete_before() stopped where it did (for logs and health).
  enum class Bound {
    kWatermarks,  // every feeder there is says how far it has sent
    kGrace,       // a feeder says nothing or went away: the fixed grace
    kWaitOver,    // a live feeder's watermark lags past wait_s: not waited for any more
    kCatchingUp,  // after a start, a remembered feeder is not back or not marked: nothing advances
  };
  struct Verdict {
    int64_t complete_before = 0;  // every second before it is in (0 while catching up)
    Bound bound = Bound::kGrace;
    uint64_t slowest_sender = 0;  // the marked feeder furthest behind, if any
  };

  /// Reads the remembered feeders from `file` (none if it does not exist; a
  /// line that does not parse is skipped and logged). Those seen within
  /// forget_s of the last one seen are awaited.
  Feeders(std::filesystem::path file, Options options, int64_t now_s);

  /// Whether the file existed at the start: a store with a past but no file
  /// (an earlier version) does not know whom to wait for.
  bool knew_feeders() const noexcept { return knew_feeders_; }

  /// A connection's peer said HELLO. `session` identifies the connection.
  void connected(const void* session, uint64_t sender_id, const std::string& peer_name, int64_t now_s);
  /// Returns whether the watermark passed a minute's end.
  bool marked(const void* session, int64_t complete_before, int64_t now_s);
  void disconnected(const void* session, int64_t now_s);

  /// Remembered feeders not connected again since the start (the catch-up waits for them).
  size_t awaited() const noexcept;
  /// The point before which every second is in, for the roll-up and the
  /// alarms. `catching_up`: after a start, feeders that are not back, or
  /// back but unmarked, hold everything (the caller bounds how long).
  Verdict complete_before(int64_t now_s, bool catching_up) const;

  /// Writes the remembered feeders if they changed or a minute passed; a
  /// failure is logged and tried again at the next call.
  void save(int64_t now_s);

  size_t live() const noexcept { return live_.size(); }
  size_t marked_live(int64_t now_s) const;

 private:
  struct Live {
    uint64_t sender_id = 0;
    std::string name;
    int64_t watermark = 0;  // 0: none yet
    int64_t marked_at_s = 0;
  };
  struct Remembered {
    std::string name;
    int64_t last_seen_s = 0;
    bool awaited = false;  // remembered at the start, not connected since
  };

  const std::filesystem::path file_;
  const Options options_;
  bool knew_feeders_ = false;
  std::map<const void*, Live> live_;
  std::map<uint64_t, Remembered> remembered_;
  bool dirty_ = false;
  int64_t saved_at_s_ = 0;
};

}  // namespace monitor::judger
