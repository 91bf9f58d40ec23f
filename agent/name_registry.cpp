#include "agent/name_registry.hpp"

namespace monitor::agent {

uint32_t NameRegistry::intern_slow(std::string_view service, std::string_view attr, NameSource source) {
  scratch_.assign(service);
  scratch_ += ' ';  // cannot occur in a valid name
  scratch_ += attr;
  if (auto it = ids_.find(scratch_); it != ids_.end()) return it->second;
  if (names_.size() >= max_names_ || (source == NameSource::kLines && line_names_ >= max_line_names_)) {
    ++refused_;
    return 0;
  }
  if (source == NameSource::kLines) ++line_names_;
  names_.emplace_back(std::string(service), std::string(attr));
  const auto id = static_cast<uint32_t>(names_.size());
  ids_.emplace(scratch_, id);
  const auto service_id = service_ids_.try_emplace(std::string(service), static_cast<uint32_t>(service_ids_.size() + 1));
  service_of_.push_back(service_id.first->second);
  if (on_new_) on_new_(service, attr);
  return id;
}

}  // namespace monitor::agent
