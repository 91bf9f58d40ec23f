// The daemons' /metrics names: Prometheus conventions from Monitor.* attrs.
#include <catch2/catch.hpp>

#include "health/metrics.hpp"

using monitor::health::Metrics;
using monitor::health::prometheus_name;

TEST_CASE("Monitor.* attrs become conventional Prometheus names and units", "[metrics]") {
  double scale = 0;
  CHECK(prometheus_name("proxy", "Reports.In", true, scale) == "monitor_proxy_reports_in_total");
  CHECK(scale == 1);
  CHECK(prometheus_name("agent", "Ring.NamesFull", true, scale) == "monitor_agent_ring_names_full_total");
  CHECK(prometheus_name("agent", "Forward.Waiting", false, scale) == "monitor_agent_forward_waiting");
  CHECK(prometheus_name("agent", "Flush.Millis", false, scale) == "monitor_agent_flush_seconds");
  CHECK(scale == 0.001);
  CHECK(prometheus_name("judger", "Process.RssBytes", false, scale) == "process_resident_memory_bytes");
  CHECK(prometheus_name("judger", "Minutes.Stored", true, scale) == "monitor_judger_rollups_stored_total");
  CHECK(prometheus_name("registry", "Parts.Gone", false, scale) == "monitor_registry_parts_gone");
}

TEST_CASE("the text format: HELP, TYPE and the value, sorted by name, the last value set", "[metrics]") {
  Metrics m("proxy");
  m.counter("Reports.In", 5);
  m.gauge("Spool.Batches", 3);
  m.counter("Reports.In", 7);
  CHECK(m.text() ==
        "# HELP monitor_proxy_reports_in_total Monitor.Proxy Reports.In, counted since the process started\n"
        "# TYPE monitor_proxy_reports_in_total counter\n"
        "monitor_proxy_reports_in_total 7\n"
        "# HELP monitor_proxy_spool_batches Monitor.Proxy Spool.Batches\n"
        "# TYPE monitor_proxy_spool_batches gauge\n"
        "monitor_proxy_spool_batches 3\n");
  Metrics agent("agent");
  agent.gauge("Flush.Millis", 250);
  CHECK_THAT(agent.text(), Catch::Contains("monitor_agent_flush_seconds 0.25\n"));
}
