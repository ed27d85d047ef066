#pragma once

// The one place that includes Asio for the gateway's edge. GCC 12 with Boost 1.74 needs <utility> before
// boost/asio/awaitable.hpp (std::exchange), so every Asio user includes this header instead of Asio itself.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace paygate::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

}  // namespace paygate::edge
