#pragma once

// The edge's metrics, declared in one place (STYLE.md "Logging and metrics") and exposed by the
// admin listener's /metrics in the Prometheus text format. Thread-safe: prometheus-cpp metrics are
// atomic and families take their own locks.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace paygate::edge {

// Why the edge refused or cut off a request or connection (label "reason" of
// paygate_http_rejections_total).
enum class Rejection {
  kHeaderTooLarge,
  kBodyTooLarge,
  kHeaderTimeout,
  kBodyTimeout,
  kBadRequest,
  kPlainHttp,
  kConnectionsMax,
  kConnectionsPerIpMax,
};

class EdgeMetrics {
 public:
  EdgeMetrics();

  // Creates the listener's series at zero, so scrapers see them before the first event.
  void DeclareListener(std::string_view listener);
  void ObserveRequest(std::string_view listener, std::string_view route, std::string_view method,
                      unsigned status, double seconds);
  void ConnectionOpened(std::string_view listener);
  void ConnectionClosed(std::string_view listener);
  void HandshakeFailed(std::string_view listener);
  void Rejected(std::string_view listener, Rejection reason);

  // Adds families computed at scrape time by another module (the database pool's state).
  using Collector = std::function<std::vector<prometheus::MetricFamily>()>;
  void AddCollector(Collector collector);

  // The Prometheus text exposition of every metric.
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Gauge>& open_connections_;
  prometheus::Family<prometheus::Counter>& handshake_failures_;
  prometheus::Family<prometheus::Counter>& rejections_;
  // Series already created, by "listener|route|method|status": a lookup here is far cheaper than
  // building label maps for the families on every request.
  struct RequestSeries {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const {
      return std::hash<std::string_view>{}(key);
    }
  };
  std::mutex series_mu_;
  std::unordered_map<std::string, RequestSeries, KeyHash, std::equal_to<>> series_;
  mutable std::mutex collectors_mu_;
  std::vector<Collector> collectors_;
};

}  // namespace paygate::edge
