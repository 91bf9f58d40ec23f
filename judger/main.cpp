// monitor-judger: stores batches, rolls them up to minutes.
#include "common/daemon_main.hpp"
#include "judger/judger.hpp"

int main(int argc, char** argv) {
  using monitor::judger::JudgerConfig;
  const monitor::Daemon<JudgerConfig> daemon{
      "monitor-judger",
      "Judger: receives per-second batches (docs/protocol.md), stores each before\n"
      "acknowledging it, and rolls them up to minutes per server and in total.",
      "docs/judger.md", monitor::judger::judger_settings()};
  return monitor::daemon_main(argc, argv, daemon, [](JudgerConfig config, const cxxopts::ParseResult&) {
    monitor::judger::Judger judger(std::move(config));
    return judger.run();
  });
}
