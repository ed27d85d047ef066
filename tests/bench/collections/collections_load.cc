// collections_load: the load driver of the collections benchmark (tests/bench/collections/run.sh,
// DESIGN.md §8). Creates premium payments (POST /v1/payments) through paygated's public API over
// mutual TLS, on --concurrency keep-alive connections that each carry one request at a time, and
// prints on stdout one line
//   requests=<n> rps=<created per second> p50_ms=<...> p99_ms=<...> gateway_p50_us=<...>
//     gateway_p99_us=<...> [rate=<offered per second>]
// Every request has its own Idempotency-Key, so every one creates a payment (no replays).
// gateway_*_us come from the Paygate-Gateway-Time-Us header: the handler's time minus the time
// spent waiting for the provider.
//
// Two modes:
//   closed loop (default): each connection sends its next request as soon as the previous answered;
//     this finds the peak rate.
//   open loop (--rate R): requests are due at fixed intervals of 1/R s and the connections take
//     them in order; latency is measured from the moment a request was due, not from when a
//     connection became free, so a stalled server is not hidden by the driver waiting for it
//     (coordinated omission). The --concurrency connections bound the requests in flight.
// Only requests that finish inside the measurement window (after --warmup-seconds) are counted.
//
// Usage: collections_load --port P --ca FILE --cert FILE --key FILE [--host H] [--concurrency N]
//                         [--seconds S] [--warmup-seconds S] [--rate R] [--tag TAG]
// Exits non-zero when any request fails or is answered with anything but 201.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string ca, cert, key;
  int concurrency = 64;
  double seconds = 20;
  double warmup_seconds = 2;
  double rate = 0;  // 0: closed loop.
  std::string tag = "b";
};

[[noreturn]] void Usage(std::string_view problem) {
  std::fprintf(stderr,
               "collections_load: %.*s\nusage: collections_load --port P --ca FILE --cert FILE "
               "--key FILE [--host H] [--concurrency N] [--seconds S] [--warmup-seconds S] "
               "[--rate R] [--tag TAG]\n",
               static_cast<int>(problem.size()), problem.data());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(std::string(arg) + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--host") {
        o.host = value();
      } else if (arg == "--port") {
        o.port = value();
      } else if (arg == "--ca") {
        o.ca = value();
      } else if (arg == "--cert") {
        o.cert = value();
      } else if (arg == "--key") {
        o.key = value();
      } else if (arg == "--concurrency") {
        o.concurrency = std::stoi(value());
      } else if (arg == "--seconds") {
        o.seconds = std::stod(value());
      } else if (arg == "--warmup-seconds") {
        o.warmup_seconds = std::stod(value());
      } else if (arg == "--rate") {
        o.rate = std::stod(value());
      } else if (arg == "--tag") {
        o.tag = value();
      } else {
        Usage("unknown argument " + std::string(arg));
      }
    } catch (const std::exception&) {
      Usage("bad value for " + std::string(arg));
    }
  }
  if (o.port.empty() || o.ca.empty() || o.cert.empty() || o.key.empty()) {
    Usage("--port, --ca, --cert and --key are required");
  }
  if (o.concurrency < 1 || o.seconds <= 0 || o.warmup_seconds < 0 || o.rate < 0) {
    Usage("concurrency and seconds must be positive, warm-up and rate not negative");
  }
  return o;
}

// Shared by every connection; the driver runs on one thread, so no locking.
struct Run {
  const Options& options;
  ssl::context& tls;
  tcp::resolver::results_type endpoints;
  Clock::time_point start, measure_from, stop_at;
  std::int64_t next_ticket = 0;  // Open loop: the next due request.
  std::vector<double> latencies_ms;
  std::vector<double> gateway_us;
  std::int64_t failures = 0;
  std::string first_failure;
};

void Fail(Run& run, std::string what) {
  if (run.failures++ == 0) run.first_failure = std::move(what);
}

// When the next request may start, or nullopt when the run is over. Closed loop: now. Open loop:
// the due time of the next ticket, which the caller waits for.
std::optional<Clock::time_point> NextRequest(Run& run) {
  if (run.options.rate <= 0) {
    const auto now = Clock::now();
    if (now >= run.stop_at) return std::nullopt;
    return now;
  }
  const auto due =
      run.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                      static_cast<double>(run.next_ticket) / run.options.rate));
  // A driver fallen behind stops at the end of the window too, instead of working off its backlog.
  if (due >= run.stop_at || Clock::now() >= run.stop_at) return std::nullopt;
  ++run.next_ticket;
  return due;
}

using Stream = beast::ssl_stream<beast::tcp_stream>;

asio::awaitable<bool> Connect(Run& run, std::optional<Stream>& stream) {
  beast::error_code ec;
  stream.emplace(co_await asio::this_coro::executor, run.tls);
  stream->set_verify_callback(ssl::host_name_verification(run.options.host));
  co_await beast::get_lowest_layer(*stream).async_connect(
      run.endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Fail(run, "connect: " + ec.message());
    co_return false;
  }
  beast::get_lowest_layer(*stream).socket().set_option(tcp::no_delay(true));
  co_await stream->async_handshake(ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Fail(run, "TLS handshake: " + ec.message());
    co_return false;
  }
  co_return true;
}

// One keep-alive connection sending one request at a time until the run is over.
asio::awaitable<void> Connection(Run& run, int index) {
  std::optional<Stream> stream;
  beast::flat_buffer buffer;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const std::string host_header = run.options.host + ":" + run.options.port;
  for (std::int64_t seq = 0; run.failures == 0; ++seq) {
    const auto due = NextRequest(run);
    if (!due) break;
    if (*due > Clock::now()) {
      timer.expires_at(*due);
      beast::error_code wait_ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    }
    if (!stream) {
      const bool connected = co_await Connect(run, stream);
      if (!connected) break;
    }
    const std::string id =
        run.options.tag + "-" + std::to_string(index) + "-" + std::to_string(seq);
    http::request<http::string_body> request{http::verb::post, "/v1/payments", 11};
    request.set(http::field::host, host_header);
    request.set(http::field::content_type, "application/json");
    request.set("Idempotency-Key", id);
    request.body() = R"({"policy_number":"POL-)" + id +
                     R"(","amount_minor":"12345","currency":"CNY","method":"sandbox"})";
    request.prepare_payload();
    request.keep_alive(true);

    beast::error_code ec;
    const auto sent_at = run.options.rate > 0 ? *due : Clock::now();
    co_await http::async_write(*stream, request, asio::redirect_error(asio::use_awaitable, ec));
    http::response<http::string_body> response;
    if (!ec) {
      co_await http::async_read(*stream, buffer, response,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    const auto done = Clock::now();
    if (ec) {
      Fail(run, "request " + id + ": " + ec.message());
      break;
    }
    if (response.result() != http::status::created) {
      Fail(run, "request " + id + ": HTTP " + std::to_string(response.result_int()) + " " +
                    response.body());
      break;
    }
    if (done >= run.measure_from && done < run.stop_at) {
      run.latencies_ms.push_back(std::chrono::duration<double, std::milli>(done - sent_at).count());
      const auto header = response.find("Paygate-Gateway-Time-Us");
      if (header == response.end()) {
        Fail(run, "response without Paygate-Gateway-Time-Us");
        break;
      }
      try {
        run.gateway_us.push_back(std::stod(std::string(header->value())));
      } catch (const std::exception&) {
        Fail(run, "bad Paygate-Gateway-Time-Us: " + std::string(header->value()));
        break;
      }
    }
    if (!response.keep_alive()) {  // The server's keep-alive bound: open a new connection.
      beast::error_code ignored;
      beast::get_lowest_layer(*stream).socket().close(ignored);
      stream.reset();
    }
  }
  if (stream) {
    beast::error_code ignored;
    beast::get_lowest_layer(*stream).socket().close(ignored);
  }
}

// The q-quantile (nearest rank) of sorted values.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()));
  if (rank >= sorted.size()) rank = sorted.size() - 1;
  return sorted[rank];
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseArgs(argc, argv);
  try {
    ssl::context tls(ssl::context::tls_client);
    tls.set_verify_mode(ssl::verify_peer);
    tls.load_verify_file(options.ca);
    tls.use_certificate_chain_file(options.cert);
    tls.use_private_key_file(options.key, ssl::context::pem);

    asio::io_context io(1);
    tcp::resolver resolver(io);
    Run run{options, tls, resolver.resolve(options.host, options.port), {}, {}, {}, 0, {}, {},
            0,       {}};
    run.start = Clock::now();
    run.measure_from = run.start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(options.warmup_seconds));
    run.stop_at = run.measure_from + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.seconds));
    for (int i = 0; i < options.concurrency; ++i) {
      asio::co_spawn(io, Connection(run, i), asio::detached);
    }
    io.run();

    if (run.failures > 0) {
      std::fprintf(stderr, "collections_load: %lld failed requests; first: %s\n",
                   static_cast<long long>(run.failures), run.first_failure.c_str());
      return 1;
    }
    if (run.latencies_ms.empty()) {
      std::fprintf(stderr, "collections_load: no request completed in the measurement window\n");
      return 1;
    }
    std::sort(run.latencies_ms.begin(), run.latencies_ms.end());
    std::sort(run.gateway_us.begin(), run.gateway_us.end());
    std::printf(
        "requests=%zu rps=%.1f p50_ms=%.3f p99_ms=%.3f gateway_p50_us=%.0f gateway_p99_us=%.0f",
        run.latencies_ms.size(), static_cast<double>(run.latencies_ms.size()) / options.seconds,
        Quantile(run.latencies_ms, 0.50), Quantile(run.latencies_ms, 0.99),
        Quantile(run.gateway_us, 0.50), Quantile(run.gateway_us, 0.99));
    if (options.rate > 0) std::printf(" rate=%.1f", options.rate);
    std::printf("\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "collections_load: %s\n", e.what());
    return 1;
  }
}
