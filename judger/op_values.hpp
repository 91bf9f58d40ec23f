// The value of each op of a merged cell: one rule for the minutes the
// roll-up stores and the per-second points the exporter sends.
#pragma once

#include <cstdint>

#include "model/log_histogram.hpp"
#include "model/op.hpp"
#include "model/stats.hpp"

namespace monitor::judger {

/// Calls emit(code, value) for one op bit: once with the bit as the code, or
/// for HIST four times with the quantile codes (kOpHistP50 …).
template <class Emit>
void for_each_op_value(uint32_t op, const model::Stats& s, const model::LogHistogram& hist, Emit&& emit) {
  switch (op) {
    case 1: emit(op, static_cast<double>(s.sum)); break;
    case 2: emit(op, static_cast<double>(s.max)); break;
    case 4: emit(op, static_cast<double>(s.min)); break;
    case 8: emit(op, s.average()); break;
    case 16: emit(op, static_cast<double>(s.first)); break;
    case 32: emit(op, static_cast<double>(s.last)); break;
    case 64: emit(op, static_cast<double>(s.count)); break;
    case 128:
      emit(model::kOpHistP50, static_cast<double>(hist.quantile(0.5, s.min, s.max)));
      emit(model::kOpHistP90, static_cast<double>(hist.quantile(0.9, s.min, s.max)));
      emit(model::kOpHistP99, static_cast<double>(hist.quantile(0.99, s.min, s.max)));
      emit(model::kOpHistP999, static_cast<double>(hist.quantile(0.999, s.min, s.max)));
      break;
    default: break;
  }
}

}  // namespace monitor::judger
