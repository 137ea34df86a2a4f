// The relay's HTTP answers, decided and built without sockets: net/ws_session.cpp reads a request
// header from the connection and writes what this unit returns; relay/fuzz/http_fuzz.cpp feeds it
// arbitrary bytes through the same Beast parser. Nothing here does I/O.
//
// One request, read with http::read_header (the relay reads no request bodies):
//   answer_read_error  the header could not be read: 413 (Content-Length over the body limit),
//                      431 (header over its limit), 400 (anything else); nothing when the client
//                      closed between requests. Every refusal closes the connection.
//   answer_request     the header was read:
//     a body announced (chunked, or Content-Length > 0)  -> 413, close
//     route_request (routes.h), then what this listener serves:
//       GET /health       -> 200 JSON (503 when the store cannot answer), health.h
//       GET /metrics      -> 200 Prometheus text, metrics_text.h; 404 where it is not served
//                            (no Metrics, or on the main port while a metrics port exists)
//       GET /v1/sync + Upgrade -> upgrade = true with the Sec-WebSocket-Accept value (net/ writes
//                            build_upgrade_response and speaks WebSocket from then on); 503 while
//                            draining; 426 (Sec-WebSocket-Version: 13) for another version; 400 for
//                            a Sec-WebSocket-Key that is not 16 bytes of base64; 404 on the
//                            metrics port
//       GET /v1/sync      -> 426 (Upgrade: websocket)
//       other methods on those paths -> 405 (Allow: GET); anything else 404
//     Keep-alive follows the request, and is off while the relay drains.
//   build_response     the answer as a Beast response, with the relay's headers (Server,
//                      Content-Type, Cache-Control: no-store, Allow for 405, Upgrade and
//                      Sec-WebSocket-Version for 426, Content-Length, Connection).
//   build_upgrade_response  the 101 Switching Protocols for upgrade = true. No extension and no
//                      subprotocol is ever agreed (the relay's frames carry no compression).
//
// Beast's HTTP message and parser types are header-only and carry no sockets; no Asio I/O object is
// included here (Beast's fields pull in Asio's buffer types only). Thread-safety: pure functions;
// HttpSite::read_status is called on the caller's thread.
#pragma once

#include <utility>  // first: Boost 1.74 uses std::exchange without including it (see net/asio.h)

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "http/routes.h"
#include "metrics/metrics.h"
#include "store/store.h"

namespace blindsync::relay {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpUpgradeResponse = boost::beast::http::response<boost::beast::http::empty_body>;

inline constexpr std::string_view kServerHeader = "blindsync-relay";
inline constexpr std::string_view kPlainTextContentType = "text/plain; charset=utf-8";

// What /health and /metrics report, read from the hub and the store when one of them is served.
struct RelayStatus {
  std::string relay_id_hex;
  std::uint64_t uptime_seconds = 0;
  std::uint64_t connections = 0;
  std::uint64_t sessions = 0;
  std::uint64_t groups = 0;
  std::optional<StoreStats> store;  // nullopt when the store could not answer
};

enum class HttpPort {
  kMain,     // /v1/sync, /health, and /metrics unless a metrics port exists
  kMetrics,  // /metrics and /health only
};

// The listener a request arrived on and the relay's state at that moment.
struct HttpSite {
  HttpPort port = HttpPort::kMain;
  const Metrics* metrics = nullptr;  // not owned; null: /metrics is served nowhere
  bool metrics_port = false;         // a separate metrics port exists: /metrics is 404 on the main port
  bool stopping = false;             // draining: no keep-alive, no new WebSocket sessions (503)
  // Called only for a request served at /health or /metrics, with that route.
  std::function<RelayStatus(Route)> read_status;
};

struct HttpAnswer {
  // The route served (after what the port serves: kNotFound for the rest); nullopt for a refused
  // request (unreadable, or with a body).
  std::optional<Route> route;
  // true: accept the WebSocket upgrade with the request (route kSync): write
  // build_upgrade_response; the fields below but websocket_accept and version are unused.
  bool upgrade = false;
  std::string websocket_accept;  // upgrade only: the Sec-WebSocket-Accept value
  boost::beast::http::status status = boost::beast::http::status::ok;
  unsigned version = 11;  // HTTP version of the response: the request's, 1.1 for refusals
  std::string content_type{kPlainTextContentType};
  std::string body;
  bool keep_alive = false;  // false: close the connection after the response
};

// The refusal for a request header that could not be read, or nullopt when there is nothing to
// answer (http::error::end_of_stream: the client closed between requests). The caller handles its
// own transport errors (timeouts, resets) before calling this.
std::optional<HttpAnswer> answer_read_error(const boost::system::error_code& ec);

// The answer to a request whose header the parser has read.
// REQUIRES: parser.is_header_done().
HttpAnswer answer_request(const HttpRequestParser& parser, const HttpSite& site);

// The response to write for an answer (not for upgrade = true).
HttpResponse build_response(HttpAnswer answer);

// The 101 that opens the WebSocket, for an answer with upgrade = true.
HttpUpgradeResponse build_upgrade_response(const HttpAnswer& answer);

}  // namespace blindsync::relay
