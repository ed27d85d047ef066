#include "gateway/edge/metrics.h"

#include <fmt/format.h>
#include <prometheus/text_serializer.h>

namespace paygate::edge {
namespace {

// Latency buckets in seconds: from sub-millisecond edge answers to provider calls near their
// timeouts.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

std::string_view RejectionLabel(Rejection reason) {
  switch (reason) {
    case Rejection::kHeaderTooLarge:
      return "header_too_large";
    case Rejection::kBodyTooLarge:
      return "body_too_large";
    case Rejection::kHeaderTimeout:
      return "header_timeout";
    case Rejection::kBodyTimeout:
      return "body_timeout";
    case Rejection::kBadRequest:
      return "bad_request";
    case Rejection::kPlainHttp:
      return "plain_http";
    case Rejection::kConnectionsMax:
      return "connections_max";
    case Rejection::kConnectionsPerIpMax:
      return "connections_per_ip_max";
  }
  return "unknown";
}

}  // namespace

EdgeMetrics::EdgeMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("paygate_http_requests_total")
                    .Help("HTTP requests answered, by listener, route pattern, method and status.")
                    .Register(*registry_)),
      latency_(
          prometheus::BuildHistogram()
              .Name("paygate_http_request_duration_seconds")
              .Help("Time from the end of the request headers to the end of the response write.")
              .Register(*registry_)),
      open_connections_(prometheus::BuildGauge()
                            .Name("paygate_http_open_connections")
                            .Help("Connections currently open, by listener.")
                            .Register(*registry_)),
      handshake_failures_(prometheus::BuildCounter()
                              .Name("paygate_tls_handshake_failures_total")
                              .Help("TLS handshakes that failed (old protocol, bad client "
                                    "certificate, timeout, not TLS).")
                              .Register(*registry_)),
      rejections_(prometheus::BuildCounter()
                      .Name("paygate_http_rejections_total")
                      .Help("Requests or connections refused by an edge limit, by reason.")
                      .Register(*registry_)) {}

void EdgeMetrics::DeclareListener(std::string_view listener) {
  open_connections_.Add({{"listener", std::string(listener)}});
  handshake_failures_.Add({{"listener", std::string(listener)}});
}

void EdgeMetrics::ObserveRequest(std::string_view listener, std::string_view route,
                                 std::string_view method, unsigned status, double seconds) {
  // The key is built on the stack: most requests find their series without allocating.
  fmt::memory_buffer key;
  fmt::format_to(std::back_inserter(key), "{}|{}|{}|{}", listener, route, method, status);
  const std::string_view key_view(key.data(), key.size());
  RequestSeries series;
  {
    std::lock_guard lock(series_mu_);
    auto it = series_.find(key_view);
    if (it == series_.end()) {
      prometheus::Labels labels{{"listener", std::string(listener)},
                                {"route", std::string(route)},
                                {"method", std::string(method)},
                                {"status", std::to_string(status)}};
      prometheus::Counter* count = &requests_.Add(labels);
      labels.erase("method");
      prometheus::Histogram* latency = &latency_.Add(labels, kLatencyBuckets);
      it = series_.emplace(std::string(key_view), RequestSeries{count, latency}).first;
    }
    series = it->second;
  }
  series.count->Increment();
  series.latency->Observe(seconds);
}

void EdgeMetrics::ConnectionOpened(std::string_view listener) {
  open_connections_.Add({{"listener", std::string(listener)}}).Increment();
}

void EdgeMetrics::ConnectionClosed(std::string_view listener) {
  open_connections_.Add({{"listener", std::string(listener)}}).Decrement();
}

void EdgeMetrics::HandshakeFailed(std::string_view listener) {
  handshake_failures_.Add({{"listener", std::string(listener)}}).Increment();
}

void EdgeMetrics::Rejected(std::string_view listener, Rejection reason) {
  rejections_
      .Add({{"listener", std::string(listener)}, {"reason", std::string(RejectionLabel(reason))}})
      .Increment();
}

void EdgeMetrics::AddCollector(Collector collector) {
  std::lock_guard lock(collectors_mu_);
  collectors_.push_back(std::move(collector));
}

std::string EdgeMetrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    std::lock_guard lock(collectors_mu_);
    for (const auto& collector : collectors_) {
      auto more = collector();
      families.insert(families.end(), std::make_move_iterator(more.begin()),
                      std::make_move_iterator(more.end()));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace paygate::edge
