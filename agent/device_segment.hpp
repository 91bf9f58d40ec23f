// A device's, mount's, plugin's or check's name as one part of an attr name
// (docs/host-metrics.md): apart from the host collector, so what checks names
// (the agent's config) needs nothing of it.
#pragma once

#include <string>
#include <string_view>

namespace monitor::agent {

/// The attr segment for a device or mount point: letters and digits kept,
/// every other run of bytes dropped with the next letter upper-cased, the
/// first letter upper-cased, "N" put before a leading digit, at most 24
/// bytes; "/" is "Root". ("/var/lib" -> "VarLib", "eth0" -> "Eth0",
/// "nvme0n1" -> "Nvme0n1", "veth-a" -> "VethA".) Empty if nothing is left.
std::string device_segment(std::string_view name);

}  // namespace monitor::agent
