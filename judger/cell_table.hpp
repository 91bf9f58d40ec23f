// The cells of one minute: an open-addressing hash table of keys pointing into
// a dense vector of cells. With 100 000 live series a node-based map spent
// most of the judger's ingest on allocation and pointer chasing.
#pragma once

#include <cstdint>
#include <vector>

namespace monitor::judger {

/// Key: equality-comparable; Hash: a good 64-bit mix (the low bits pick the slot).
template <class Key, class Hash, class Cell>
class CellTable {
 public:
  /// The cell of `key`, default-constructed if new. References stay valid
  /// until the next call that adds a key.
  Cell& operator[](const Key& key) {
    if ((cells_.size() + 1) * 2 > slots_.size()) grow();
    size_t i = Hash{}(key) & mask_;
    while (true) {
      Slot& slot = slots_[i];
      if (slot.cell == 0) {
        keys_.push_back(key);
        cells_.emplace_back();
        slot.key = key;
        slot.cell = static_cast<uint32_t>(cells_.size());
        return cells_.back();
      }
      if (slot.key == key) return cells_[slot.cell - 1];
      i = (i + 1) & mask_;
    }
  }

  /// Calls f(key, cell) for every cell, in the order they were added.
  template <class F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < cells_.size(); ++i) f(keys_[i], cells_[i]);
  }

 private:
  struct Slot {
    Key key{};
    uint32_t cell = 0;  // index + 1 into cells_; 0: empty
  };

  void grow() {
    const size_t capacity = slots_.empty() ? 64 : slots_.size() * 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (size_t c = 0; c < keys_.size(); ++c) {
      size_t i = Hash{}(keys_[c]) & mask_;
      while (slots_[i].cell != 0) i = (i + 1) & mask_;
      slots_[i] = Slot{keys_[c], static_cast<uint32_t>(c + 1)};
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<Key> keys_;
  std::vector<Cell> cells_;
};

}  // namespace monitor::judger
