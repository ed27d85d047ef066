#pragma once

// The one place adapters include Asio and Beast (kept out of public headers: they dominate compile
// time). GCC 12 with Boost 1.74 needs <utility> before boost/asio/awaitable.hpp.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace paygate::adapters::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;  // "http" is paygate::adapters::http.
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

}  // namespace paygate::adapters::net
