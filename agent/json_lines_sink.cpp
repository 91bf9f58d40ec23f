#include "agent/json_lines_sink.hpp"

#include <cerrno>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/clock.hpp"
#include "model/op.hpp"

namespace monitor::agent {

JsonLinesSink::JsonLinesSink(const std::string& path, const NameRegistry& names)
    : names_(names), file_(stdout), owns_file_(false) {
  if (path != "-") {
    file_ = std::fopen(path.c_str(), "a");
    if (file_ == nullptr) {
      throw std::runtime_error(fmt::format("open output {}: {}", path, std::strerror(errno)));
    }
    owns_file_ = true;
  }
  // We buffer in chunks ourselves; without stdio's buffer every fwrite reaches
  // write(2), so its result says whether the chunk was really written (a
  // buffered fwrite "succeeds" and the loss surfaces unreported in fflush).
  std::setvbuf(file_, nullptr, _IONBF, 0);
}

JsonLinesSink::~JsonLinesSink() {
  if (owns_file_) std::fclose(file_);
}

void JsonLinesSink::write(const AggregateRecord& r) {
  // Names are validated [A-Za-z0-9.] only, so they need no JSON escaping.
  auto out = std::back_inserter(buffer_);
  fmt::format_to(out, R"({{"ts":{},"service":"{}","attr":"{}","server_id":{},"op":"{}",)", r.second,
                 names_.service(r.name_id), names_.attr(r.name_id), r.server_id, model::op_name(r.op));
  const model::Stats& s = *r.stats;
  switch (r.op) {
    case 1: fmt::format_to(out, R"("value":{}}})", s.sum); break;
    case 2: fmt::format_to(out, R"("value":{}}})", s.max); break;
    case 4: fmt::format_to(out, R"("value":{}}})", s.min); break;
    case 8: fmt::format_to(out, R"("value":{},"sum":{},"count":{}}})", s.average(), s.sum, s.count); break;
    case 16: fmt::format_to(out, R"("value":{},"time_ns":{}}})", s.first, s.first_time); break;
    case 32: fmt::format_to(out, R"("value":{},"time_ns":{}}})", s.last, s.last_time); break;
    case 64: fmt::format_to(out, R"("value":{}}})", s.count); break;
    case 128: {
      const model::LogHistogram& h = *r.hist;
      fmt::format_to(out, R"("count":{},"min":{},"max":{},"p50":{},"p90":{},"p99":{},"p999":{},"buckets":[)",
                     s.count, s.min, s.max, h.quantile(0.5, s.min, s.max), h.quantile(0.9, s.min, s.max),
                     h.quantile(0.99, s.min, s.max), h.quantile(0.999, s.min, s.max));
      bool first = true;
      h.for_each([&](int32_t key, uint64_t count) {
        fmt::format_to(out, "{}[{},{}]", first ? "" : ",", key, count);
        first = false;
      });
      fmt::format_to(out, "]}}");
      break;
    }
    default: fmt::format_to(out, R"("value":null}})"); break;
  }
  buffer_.push_back('\n');
  ++pending_;
  if (buffer_.size() >= kFlushBytes) write_out();
}

void JsonLinesSink::end_second(int64_t) { write_out(); }

void JsonLinesSink::write_out() {
  if (buffer_.size() != 0) {
    const size_t written = std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    if (written != buffer_.size()) {
      const int err = errno;
      records_failed_ += pending_;
      std::clearerr(file_);
      uint64_t suppressed = 0;
      if (write_log_.allow(realtime_ns(), suppressed)) {
        spdlog::error("writing aggregates failed: {}; {} records lost so far", std::strerror(err), records_failed_);
      }
    } else {
      records_written_ += pending_;
    }
  }
  buffer_.clear();
  pending_ = 0;
}

}  // namespace monitor::agent
