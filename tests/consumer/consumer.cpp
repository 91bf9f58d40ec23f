#include <cstdio>

#include <monitor/monitor.hpp>

int main() {
  const monitor::Attr orders("Shop.Api", "Orders.Placed");
  const monitor::Errc rc = orders.report(1, 1, monitor::kSum | monitor::kCount);
  std::printf("monitor::Attr from C++: %s\n", monitor_strerror(static_cast<int>(rc)));
  return rc == monitor::Errc::kOk && monitor::report("Shop.Api", "Orders.Placed", 1, 1, monitor::kSum) ==
                                         monitor::Errc::kOk
             ? 0
             : 1;
}
