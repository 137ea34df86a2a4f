// libFuzzer target: the relay's HTTP front (one TCP port: GET /health, GET /metrics, GET /v1/sync
// upgrade; a metrics port with /health and /metrics), through the relay's own handler.
//
// The relay reads requests inside a Beast coroutine (net/ws_session.cpp, WsSession::serve_http),
// which cannot run without sockets; everything it decides and every response it writes comes from
// http/http_handler.{h,cpp}, which this target calls in the same order, synchronously, over Beast's
// in-memory test stream:
//   - boost::beast::http::read_header into a flat_buffer with a fresh request_parser<string_body>
//     per request, header_limit/body_limit from the relay's ServerOptions defaults (net/server.h);
//   - answer_read_error when the header cannot be read, answer_request when it can (route, body
//     refusal, /health JSON, /metrics Prometheus text, 404/405/426/503, keep-alive);
//   - build_response, serialised by http::write;
//   - for an upgrade, websocket::stream::accept(request), which validates the upgrade headers and
//     writes the 101 (or 400) exactly as ws_.async_accept does;
//   - keep-alive: requests are served one after another until an error, a refusal or a close.
// Every input is served on the main port of a relay with metrics, once delivered in one piece and
// once in small reads (both runs must give the same sequence of outcomes), and once on another
// site picked by its size: the metrics port, the main port while a metrics port exists, or a
// draining relay without metrics.
// Properties: no crash, sanitizer report, Beast assertion or exception; an upgrade only for a GET
// with Upgrade at /v1/sync on a main port that is not draining; /health renders JSON that parses
// back with the status that decides 200 or 503; /metrics only where metrics are served, as
// Prometheus text; the relay's status is read only for those two; refusals close the connection;
// keep-alive never outlives the request's or a draining relay's; Content-Length matches the body.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <nlohmann/json.hpp>

#include "blindsync/core/limits.h"
#include "http/http_handler.h"
#include "http/routes.h"
#include "metrics/metrics.h"
#include "metrics/metrics_text.h"
#include "net/server.h"  // ServerOptions only: the relay's HTTP limits
#include "fuzz_check.h"

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using namespace blindsync::relay;
using error_code = boost::system::error_code;

std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

const ServerOptions& relay_options() {
  static const ServerOptions options;
  return options;
}

// Where a request arrives (HttpSite without the status reader).
struct SiteConfig {
  HttpPort port = HttpPort::kMain;
  bool with_metrics = true;
  bool metrics_port = false;
  bool stopping = false;
};

constexpr SiteConfig kDefaultSite{};
constexpr SiteConfig kOtherSites[] = {
    {HttpPort::kMetrics, true, true, false},  // the metrics port
    {HttpPort::kMain, true, true, false},     // the main port while a metrics port exists
    {HttpPort::kMain, false, false, true},    // a draining relay without metrics
};

bool serves_metrics(const SiteConfig& c) {
  return c.with_metrics && (c.port == HttpPort::kMetrics || !c.metrics_port);
}

// What one connection did, comparable between the two deliveries of the same bytes.
struct Outcome {
  std::vector<int> events;  // route per request, then the answer to a failed read (negated) or the accept result
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

constexpr int kEventAcceptOk = 1000;
constexpr int kEventAcceptFailed = 1001;
constexpr int kEventDraining = 1002;          // upgrade refused with 503 while draining
constexpr int kEventRefused = -1;             // 400 or 413, then close
constexpr int kEventClosed = -2;              // EOF between requests: no answer
constexpr int kEventRefusedHeaderLimit = -3;  // 431, then close

// Figures for /health and /metrics, derived from the request (the relay reads them from the hub
// and the store), so that inputs reach both the ok and the unavailable renderings.
RelayStatus status_for(const HttpRequest& request) {
  RelayStatus status;
  status.relay_id_hex = std::string(64, 'a');
  status.uptime_seconds = request.target().size();
  status.connections = request.version();
  status.sessions = request.method_string().size();
  status.groups = static_cast<std::uint64_t>(std::distance(request.begin(), request.end()));
  if (request.target().size() % 2 == 0) {
    status.store = blindsync::relay::StoreStats{request.target().size(), request.target().size() * 1000003u,
                                                ~std::uint64_t{0}};
  }
  return status;
}

void check_health(const HttpAnswer& answer) {
  const auto parsed = nlohmann::json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!parsed.is_discarded());
  FUZZ_CHECK(answer.content_type == "application/json");
  const bool ok = answer.status == http::status::ok;
  FUZZ_CHECK(ok || answer.status == http::status::service_unavailable);
  FUZZ_CHECK(parsed.at("status") == (ok ? "ok" : "unavailable"));
}

void check_metrics(const HttpAnswer& answer) {
  FUZZ_CHECK(answer.status == http::status::ok);
  FUZZ_CHECK(answer.content_type == kMetricsContentType);
  FUZZ_CHECK(answer.body.rfind("# HELP blindsync_", 0) == 0);
  FUZZ_CHECK(answer.body.back() == '\n');
  FUZZ_CHECK(answer.body.find("\nblindsync_build_info{version=\"") != std::string::npos);
}

// Checks an answer against its request and site; returns the Outcome event for it.
int check_answer(const HttpAnswer& answer, const HttpRequest& request, const SiteConfig& config,
                 const std::vector<Route>& status_reads) {
  if (!answer.route) {  // a request with a body, refused unread
    FUZZ_CHECK(answer.status == http::status::payload_too_large && !answer.keep_alive && !answer.upgrade);
    FUZZ_CHECK(status_reads.empty());
    return kEventRefused;
  }
  const Route route = *answer.route;
  const std::string_view target = to_std(request.target());
  const std::string_view path = target.substr(0, target.find('?'));
  FUZZ_CHECK(!answer.keep_alive || (request.keep_alive() && !config.stopping));
  FUZZ_CHECK(answer.version == request.version());
  if (route == Route::kHealth || route == Route::kMetrics) {
    FUZZ_CHECK(status_reads.size() == 1 && status_reads[0] == route);
  } else {
    FUZZ_CHECK(status_reads.empty());
  }
  switch (route) {
    case Route::kSync:
      FUZZ_CHECK(request.method() == http::verb::get && websocket::is_upgrade(request) && path == kSyncPath);
      FUZZ_CHECK(config.port == HttpPort::kMain);
      if (config.stopping) {
        FUZZ_CHECK(!answer.upgrade && answer.status == http::status::service_unavailable && !answer.keep_alive);
      } else if (answer.upgrade) {  // version 13 and a 16-byte key: the accept value is 20 bytes in base64
        FUZZ_CHECK(to_std(request[http::field::sec_websocket_version]) == "13");
        FUZZ_CHECK(answer.websocket_accept.size() == 28);
      } else {
        FUZZ_CHECK((answer.status == http::status::upgrade_required || answer.status == http::status::bad_request) &&
                   !answer.keep_alive);
      }
      break;
    case Route::kHealth:
      FUZZ_CHECK(request.method() == http::verb::get && path == kHealthPath);
      check_health(answer);
      break;
    case Route::kMetrics:
      FUZZ_CHECK(request.method() == http::verb::get && path == kMetricsPath && serves_metrics(config));
      check_metrics(answer);
      break;
    case Route::kUpgradeRequired:
      FUZZ_CHECK(answer.status == http::status::upgrade_required && path == kSyncPath);
      break;
    case Route::kMethodNotAllowed:
      FUZZ_CHECK(answer.status == http::status::method_not_allowed && request.method_string() != "GET");
      break;
    case Route::kNotFound:
      FUZZ_CHECK(answer.status == http::status::not_found);
      FUZZ_CHECK(path != kHealthPath);  // served on both ports, to every method (405)
      FUZZ_CHECK(path != kMetricsPath || !serves_metrics(config));
      break;
  }
  if (route != Route::kSync) FUZZ_CHECK(!answer.upgrade);
  return static_cast<int>(route);
}

// Serialises the handler's response like WsSession::respond.
bool write_response(beast::test::stream& stream, HttpAnswer answer) {
  const std::size_t body_size = answer.body.size();
  const bool keep_alive = answer.keep_alive;
  HttpResponse response = build_response(std::move(answer));
  FUZZ_CHECK(to_std(response[http::field::content_length]) == std::to_string(body_size));
  FUZZ_CHECK(to_std(response[http::field::server]) == kServerHeader);
  FUZZ_CHECK(response.keep_alive() == keep_alive);
  error_code ec;
  http::write(stream, response, ec);
  return !ec;
}

// Mirrors the WebSocket part of WsSession::serve_websocket up to the accepted handshake.
int accept_websocket(beast::test::stream&& stream, const HttpRequest& request) {
  websocket::stream<beast::test::stream> ws(std::move(stream));
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(http::field::server, beast::string_view(kServerHeader.data(), kServerHeader.size()));
  }));
  ws.read_message_max(blindsync::kDefaultMaxFrameBytes);  // the hub's max_frame_bytes by default
  ws.binary(true);
  error_code ec;
  ws.accept(request, ec);
  return ec ? kEventAcceptFailed : kEventAcceptOk;
}

Outcome serve(std::string_view input, std::size_t read_size, const SiteConfig& config) {
  const ServerOptions& options = relay_options();
  // Never run: everything here is synchronous. One per process, as making one costs more than
  // parsing a request.
  static boost::asio::io_context ioc;
  beast::test::stream server(ioc, beast::string_view(input.data(), input.size()));
  beast::test::stream client(ioc);
  server.connect(client);
  server.close_remote();  // the client sends its bytes, then EOF
  if (read_size != 0) server.read_size(read_size);

  Metrics metrics;  // per input: the rendering stays deterministic
  metrics.pushes = input.size();
  metrics.bytes_in = input.size() * 3;
  metrics.count_error(blindsync::Code::kNotBlobOwner);
  metrics.push_commit_latency.observe(static_cast<double>(input.size()) / 1e6);

  const HttpRequest* current = nullptr;
  std::vector<Route> status_reads;
  HttpSite site;
  site.port = config.port;
  site.metrics = config.with_metrics ? &metrics : nullptr;
  site.metrics_port = config.metrics_port;
  site.stopping = config.stopping;
  site.read_status = [&](Route route) {
    status_reads.push_back(route);
    return status_for(*current);
  };

  Outcome outcome;
  beast::flat_buffer buffer;
  // Every served request consumes at least one input byte: at most input.size() + 1 rounds.
  for (std::size_t round = 0; round <= input.size(); ++round) {
    HttpRequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(options.http_header_limit));
    parser.body_limit(options.http_body_limit);
    error_code ec;
    http::read_header(server, buffer, parser, ec);
    if (ec) {
      // Recorded as "refused" or "closed", not as Beast's error: which fault of a bad request is
      // noticed first depends on how its bytes arrived (a bad line ending split across two reads
      // surfaces as a truncated message at EOF), but the relay refuses and closes either way.
      // header_limit is kept apart: see equivalent().
      std::optional<HttpAnswer> refusal = answer_read_error(ec);
      if (!refusal) {
        FUZZ_CHECK(ec == http::error::end_of_stream);
        outcome.events.push_back(kEventClosed);  // the client closed between requests: no answer
        return outcome;
      }
      FUZZ_CHECK(!refusal->keep_alive && !refusal->route && !refusal->upgrade);
      const bool header_limit = refusal->status == http::status::request_header_fields_too_large;
      FUZZ_CHECK(header_limit == (ec == http::error::header_limit));
      write_response(server, std::move(*refusal));
      outcome.events.push_back(header_limit ? kEventRefusedHeaderLimit : kEventRefused);
      return outcome;
    }
    FUZZ_CHECK(parser.is_header_done());
    current = &parser.get();
    status_reads.clear();
    HttpAnswer answer = answer_request(parser, site);
    outcome.events.push_back(check_answer(answer, parser.get(), config, status_reads));
    if (answer.upgrade) {
      outcome.events.push_back(accept_websocket(std::move(server), parser.release()));
      return outcome;
    }
    if (answer.route == Route::kSync) outcome.events.push_back(kEventDraining);
    const bool keep_alive = answer.keep_alive;
    const bool ok = write_response(server, std::move(answer));
    if (!ok || !keep_alive) return outcome;
  }
  FUZZ_FAIL("a request was served without consuming input");
}

// The outcomes of one input delivered whole and in small reads agree, with one exception: Beast
// applies header_limit to the request line and to the fields separately when the whole header is
// in the buffer, but to the header as a whole while it is still arriving (basic_parser::put and
// maybe_need_more). So a header between 1x and 2x the limit that arrives in one read is accepted
// (or refused for another fault) while the same bytes in small reads hit header_limit.
bool equivalent(const Outcome& whole, const Outcome& pieces) {
  if (whole == pieces) return true;
  std::size_t i = 0;
  while (i < whole.events.size() && i < pieces.events.size() && whole.events[i] == pieces.events[i]) ++i;
  return i < pieces.events.size() && pieces.events[i] == kEventRefusedHeaderLimit;
}

void print_outcome(const char* label, const Outcome& outcome) {
  std::fprintf(stderr, "%s:", label);
  for (int e : outcome.events) std::fprintf(stderr, " %d", e);
  std::fprintf(stderr, "\n");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Outcome whole = serve(input, 0, kDefaultSite);
  // Small reads split the request line and headers at every possible place over time.
  const Outcome pieces = serve(input, 1 + size % 7, kDefaultSite);
  const Outcome other = serve(input, 0, kOtherSites[size % std::size(kOtherSites)]);
  static const bool verbose = std::getenv("BLINDSYNC_FUZZ_VERBOSE") != nullptr;
  const bool same = equivalent(whole, pieces);
  if (verbose || !same) {
    print_outcome("outcome in one read   ", whole);
    print_outcome("outcome in small reads", pieces);
    print_outcome("outcome on another site", other);
  }
  if (!same) FUZZ_FAIL("the outcome does not depend on how the bytes arrive");
  return 0;
}
