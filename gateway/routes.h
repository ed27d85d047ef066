#pragma once

// The route tables of paygate's two listeners: the one visible list of what each serves.
#include <atomic>
#include <memory>
#include <string>

#include "gateway/edge/metrics.h"
#include "gateway/edge/router.h"
#include "ledger/ledger/ledger.h"

namespace paygate::gateway {

// What /readyz reports: updated by the daemon's database probe, read by the route.
struct Readiness {
  std::atomic<bool> database_ok{false};
  std::atomic<bool> draining{false};
};

// Admin listener: /healthz (the process answers), /readyz (the database answers and the daemon is
// not draining; 503 otherwise), /metrics (Prometheus text). These three are public: probes and
// scrapers call them without client certificates, and the admin listener is bound to an operations
// network.
std::shared_ptr<edge::Router> BuildAdminRouter(std::shared_ptr<const edge::EdgeMetrics> metrics,
                                               std::shared_ptr<const Readiness> readiness);

// API listener: every route requires an authenticated principal. The ledger's read routes are
// served when a ledger is given (the daemon always gives one; edge tests run without a database).
std::shared_ptr<edge::Router> BuildApiRouter(std::shared_ptr<ledger::Ledger> ledger = nullptr);

}  // namespace paygate::gateway
