#pragma once

// The collections end-to-end suite runs its scenarios against each provider simulator in place of
// the sandbox. A ProviderDriver hides how one simulator is started and keyed, the providers[] entry
// the daemon needs for it, and its control API (complete a payment or refund, fault rules, stats),
// whose messages differ per provider. It also states, as data the scenarios branch on, where the
// provider's real semantics differ from the sandbox's (adapters/*/PROTOCOL.md, SIMULATOR.md):
//   - Alipay creates a trade only when the payer opens the cashier: paygate makes no call at create;
//   - UnionPay answers "no such transaction" for an unpaid order, keeps a failed order payable
//     until its payTimeout, and cannot close an order before that;
//   - WeChat Pay notifies only successful payments: a failed one is learnt by inquiry;
//   - Alipay refunds synchronously.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gateway/api/v1/payments.pb.h"
#include "tests/e2e/collections/harness.h"

namespace paygate::testing::e2e {

struct DriverContext {
  // A private directory for the simulator's keys, token and log.
  std::filesystem::path dir;
  // The dev PKI (MakeDevPki): ca.crt, server.crt, server.key. The simulator serves with the server
  // certificate and trusts ca.crt for the daemon's callback listener.
  std::filesystem::path pki;
};

// Where a call fault is injected. kCallback: the provider's callbacks about a payment.
enum class FaultOp { kCreatePayment, kQueryPayment, kCreateRefund, kCallback };

struct FaultSpec {
  // The fault kind's suffix, common to the four simulators: "TIMEOUT_BEFORE", "HTTP_5XX", ...
  std::string kind = {};
  FaultOp op = FaultOp::kCreatePayment;
  // The payment the fault is about, by amount (known before it exists) and by its attempt
  // reference "<payment id>_1" (empty before it exists). Call faults apply once, to the next
  // matching call; callback faults to every callback about the payment (with no reference: to
  // every callback, where the simulator matches callbacks by reference).
  std::int64_t amount = 0;
  std::string reference = {};
  std::uint32_t delay_ms = 0;
  std::uint32_t copies = 0;
};

class ProviderDriver {
 public:
  virtual ~ProviderDriver();

  // The test-suite prefix and providers[].provider; every driver configures account "m1".
  virtual std::string provider() const = 0;
  // The payment method scenarios pay with, and the next_action type its create answers with.
  virtual std::string method() const = 0;
  virtual std::string next_action_type() const = 0;
  // Another method of the provider whose payer path differs (a browser form instead of an app),
  // paid once in the fault scenario; empty: none.
  virtual std::string second_method() const { return {}; }

  // Starts the simulator (throws when it does not start).
  virtual void Start(const DriverContext& context) = 0;
  // The providers[] entry for account m1 (a YAML list item indented by two spaces) and the
  // routes of its methods. Its secrets are key ids of the keyring entries KeyringYaml() lists
  // (keys.entries items, indented by four spaces).
  virtual std::string ProviderYaml() const = 0;
  virtual std::string KeyringYaml() const = 0;
  std::string RoutesYaml() const;
  // payments.order_ttl_s for this provider's daemon.
  virtual std::uint32_t order_ttl_s() const { return 600; }

  // False where paygate makes no call when it creates a payment (Alipay): create faults cannot
  // happen, and the call faults are injected into the first call paygate makes, the inquiry.
  virtual bool create_calls_provider() const { return true; }
  // How a payment the provider has not seen paid reads after an inquiry: "pending", or
  // "processing" where the provider answers "no such transaction" until it is paid (UnionPay):
  // that proves nothing, so paygate keeps not knowing.
  virtual std::string unpaid_after_inquiry() const { return "pending"; }
  // Whether a failed payment is called back (WeChat Pay notifies successes only).
  virtual bool failure_is_notified() const { return true; }
  // Whether a failed payment, and closing an unpaid one, become final only once the order can no
  // longer be paid (UnionPay: its payTimeout plus close_grace_s()).
  virtual bool final_only_when_unpayable() const { return false; }
  virtual std::uint32_t close_grace_s() const { return 0; }
  // Whether a refund's create answer is already final (Alipay).
  virtual bool refunds_synchronous() const { return false; }
  // Whether the provider can refuse a refund it accepted (Alipay refuses only before executing).
  virtual bool refund_can_fail() const { return true; }

  // The payer follows the create answer's next action (opens the cashier URL, posts the form,
  // hands the order string to the app); a no-op where the provider knows the payment already.
  virtual void Open(const api::v1::Payment& payment);
  // The payer pays (or fails to). `reference` is the attempt's, "<payment id>_1". The HTTP
  // status of the control call is returned (200: done).
  virtual unsigned Pay(const std::string& reference, bool succeed) = 0;
  virtual unsigned CompleteRefund(const std::string& refund_id, bool succeed) = 0;
  virtual void Fault(const FaultSpec& fault) = 0;
  // Removes every fault rule.
  void ClearFaults() { Control("faults/clear", "{}"); }
  // Stats: payments (trades, orders) the provider knows, refunds it executed, and callback
  // deliveries that were refused.
  virtual std::uint64_t Payments() = 0;
  virtual std::uint64_t Refunds() = 0;
  virtual std::uint64_t CallbacksFailed() = 0;

 protected:
  // POST /control/v1/<path> with the control token; a status other than `expect` fails the test.
  Exchange Control(const std::string& path, const std::string& body, unsigned expect = 200);
  // Starts `binary` (relative to PAYGATE_BINARY_DIR) and reads its port from the
  // "... listening on ADDRESS:PORT" line it prints.
  void Launch(const std::string& binary, std::vector<std::string> args);
  // Writes the control token file (0600) and returns its path.
  std::filesystem::path TokenFile();

  DriverContext context_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
  std::string token_ = "collections-e2e-control-token";
};

// "sandbox", "wechatpay", "alipay" or "unionpay".
std::unique_ptr<ProviderDriver> MakeDriver(const std::string& provider);

// The daemon's payment timeout, below the simulators' hold of a timed-out call (kHoldMs), so the
// daemon gives up first and the outcome is unknown.
inline constexpr int kProviderTimeoutMs = 2500;
inline constexpr int kHoldMs = 4000;

std::string SourceDir();
std::string BinaryDir();

}  // namespace paygate::testing::e2e
