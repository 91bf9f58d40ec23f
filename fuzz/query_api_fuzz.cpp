// libFuzzer target: a GET to the judger's query API, over a store holding a
// few minutes of two services. The input is the request target ("/api/…?…").
// Nothing may crash, hang or allocate without bound; every answer is a
// status the API documents, and a JSON answer parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <unistd.h>

#include <boost/json.hpp>

#include "judger/minute_store.hpp"
#include "judger/query_api.hpp"
#include "model/op.hpp"
#include "model/stats.hpp"

namespace {

using namespace monitor::judger;
constexpr int64_t kBase = 1'732'176'000;

MinuteStore& store() {
  static std::unique_ptr<MinuteStore> opened = [] {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("query-api-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto s = MinuteStore::open(dir / "judger.db");
    if (!s) std::abort();
    monitor::model::Stats five;
    for (int i = 0; i < 5; ++i) five.add(i, kBase * 1'000'000'000);
    for (int m = 0; m < 4; ++m) {
      const int64_t minute = kBase + 60 * m;
      if (!(*s)->finish_minute(minute,
                               {MinutePoint{"Shop.Api", "Orders.Placed", 1, 4, minute, 10.0 + m},
                                MinutePoint{"Shop.Api", "Orders.Placed", 1, -1, minute, 20.0 + m},
                                MinutePoint{"Pay.Api", "Latency.Us", monitor::model::kOpHistP99, -1, minute, 250}},
                               {MinuteCell{"Shop.Api", "Orders.Placed", 1, 4, five, {}}})) {
        std::abort();
      }
    }
    return std::move(*s);
  }();
  return *opened;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static QueryApi api([] { return std::string(R"({"ok":true})"); });
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  const QueryResponse response = api.handle(target, kBase + 400, store().reader());
  switch (response.status) {
    case 200: case 400: case 404: case 413: case 503: break;
    default: std::abort();
  }
  if (response.content_type == "application/json") {
    boost::system::error_code ec;
    (void)boost::json::parse(response.whole_body(), ec);
    if (ec) std::abort();
  }
  return 0;
}
