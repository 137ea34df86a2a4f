// The relay's HTTP handler (http/http_handler.h) without sockets: request bytes go through Beast's
// parser with the relay's limits, the answer and the response built from it are checked.
// ops_process_test.cpp checks the same answers over a real socket against a relay process.
#include "http/http_handler.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "metrics/metrics_text.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
namespace http = boost::beast::http;
using boost::system::error_code;

constexpr std::size_t kHeaderLimit = 8 * 1024;  // ServerOptions defaults (net/server.h)
constexpr std::size_t kBodyLimit = 1024;

// What net/ws_session.cpp does with http::async_read_header: a fresh parser with the relay's
// limits, fed the bytes the client sent, stopping at the end of the header.
struct Parsed {
  error_code ec;
  std::unique_ptr<HttpRequestParser> parser;
};

Parsed parse(std::string_view bytes) {
  Parsed out;
  out.parser = std::make_unique<HttpRequestParser>();
  out.parser->header_limit(static_cast<std::uint32_t>(kHeaderLimit));
  out.parser->body_limit(kBodyLimit);
  out.parser->eager(false);
  out.parser->put(boost::asio::const_buffer(bytes.data(), bytes.size()), out.ec);
  if (out.ec == http::error::need_more) out.parser->put_eof(out.ec);
  return out;
}

struct Site {
  Metrics metrics;
  std::optional<StoreStats> store = StoreStats{2, 10, 5120};
  std::vector<Route> status_reads;

  HttpSite site(HttpPort port = HttpPort::kMain, bool with_metrics = true, bool metrics_port = false,
                bool stopping = false) {
    HttpSite s;
    s.port = port;
    s.metrics = with_metrics ? &metrics : nullptr;
    s.metrics_port = metrics_port;
    s.stopping = stopping;
    s.read_status = [this](Route route) {
      status_reads.push_back(route);
      RelayStatus status;
      status.relay_id_hex = std::string(64, 'a');
      status.uptime_seconds = 5;
      status.connections = 3;
      status.sessions = 2;
      status.groups = 1;
      status.store = store;
      return status;
    };
    return s;
  }
};

HttpAnswer answer(std::string_view bytes, const HttpSite& site) {
  Parsed parsed = parse(bytes);
  INFO(parsed.ec.message());
  REQUIRE_FALSE(parsed.ec);
  REQUIRE(parsed.parser->is_header_done());
  return answer_request(*parsed.parser, site);
}

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: relay\r\n" + std::string(extra_headers) + "\r\n";
}

const std::string kUpgradeHeaders =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

std::string field(const HttpResponse& response, http::field name) {
  const auto value = response[name];
  return std::string(value.data(), value.size());
}

}  // namespace

TEST_CASE("http handler: GET /health answers 200 JSON from the relay's status, keep-alive", "[http]") {
  Site s;
  const HttpAnswer a = answer(get("/health?verbose=1"), s.site());
  CHECK(a.route == Route::kHealth);
  CHECK_FALSE(a.upgrade);
  CHECK(a.status == http::status::ok);
  CHECK(a.content_type == "application/json");
  CHECK(a.keep_alive);
  CHECK(a.version == 11);
  CHECK(s.status_reads == std::vector<Route>{Route::kHealth});
  REQUIRE(!a.body.empty());
  CHECK(a.body.back() == '\n');
  const auto json = nlohmann::json::parse(a.body);
  CHECK(json["status"] == "ok");
  CHECK(json["relay_id"] == std::string(64, 'a'));
  CHECK(json["sessions"] == 2);
  CHECK(json["blobs_buffered"] == 10);
  CHECK(json["bytes_buffered"] == 5120);

  const HttpResponse r = build_response(a);
  CHECK(r.result() == http::status::ok);
  CHECK(r.version() == 11);
  CHECK(field(r, http::field::server) == "blindsync-relay");
  CHECK(field(r, http::field::content_type) == "application/json");
  CHECK(field(r, http::field::cache_control) == "no-store");
  CHECK(field(r, http::field::content_length) == std::to_string(a.body.size()));
  CHECK(r.keep_alive());
  CHECK(r.body() == a.body);
}

TEST_CASE("http handler: /health is 503 'unavailable' when the store cannot answer", "[http]") {
  Site s;
  s.store.reset();
  const HttpAnswer a = answer(get("/health"), s.site());
  CHECK(a.status == http::status::service_unavailable);
  const auto json = nlohmann::json::parse(a.body);
  CHECK(json["status"] == "unavailable");
  CHECK(json["blobs_buffered"].is_null());
}

TEST_CASE("http handler: GET /metrics answers the Prometheus text of the relay's Metrics", "[http][metrics]") {
  Site s;
  s.metrics.pushes = 42;
  const HttpAnswer a = answer(get("/metrics"), s.site());
  CHECK(a.route == Route::kMetrics);
  CHECK(a.status == http::status::ok);
  CHECK(a.content_type == kMetricsContentType);
  CHECK(s.status_reads == std::vector<Route>{Route::kMetrics});
  CHECK(a.body.find("\nblindsync_pushes_total 42\n") != std::string::npos);
  CHECK(a.body.find("\nblindsync_sessions_active 2\n") != std::string::npos);
  CHECK(a.body.find("\nblindsync_store_up 1\n") != std::string::npos);
  CHECK(a.body.find("\nblindsync_blobs_buffered 10\n") != std::string::npos);
  CHECK(field(build_response(a), http::field::content_type) == kMetricsContentType);

  s.store.reset();
  CHECK(answer(get("/metrics"), s.site()).body.find("\nblindsync_store_up 0\n") != std::string::npos);
}

TEST_CASE("http handler: /metrics is 404 without Metrics and on the main port when a metrics port exists",
          "[http][metrics]") {
  Site s;
  const HttpAnswer none = answer(get("/metrics"), s.site(HttpPort::kMain, /*with_metrics=*/false));
  CHECK(none.route == Route::kNotFound);
  CHECK(none.status == http::status::not_found);
  CHECK(none.body == "not found\n");
  const HttpAnswer main = answer(get("/metrics"), s.site(HttpPort::kMain, true, /*metrics_port=*/true));
  CHECK(main.status == http::status::not_found);
  const HttpAnswer own = answer(get("/metrics"), s.site(HttpPort::kMetrics, true, true));
  CHECK(own.status == http::status::ok);
  CHECK(s.status_reads == std::vector<Route>{Route::kMetrics});  // only the served one read the status
}

TEST_CASE("http handler: the metrics port serves /health and /metrics only", "[http][metrics]") {
  Site s;
  const HttpSite site = s.site(HttpPort::kMetrics, true, true);
  CHECK(answer(get("/health"), site).status == http::status::ok);
  CHECK(answer(get("/v1/sync", kUpgradeHeaders), site).status == http::status::not_found);
  CHECK_FALSE(answer(get("/v1/sync", kUpgradeHeaders), site).upgrade);
  CHECK(answer(get("/v1/sync"), site).status == http::status::not_found);
  CHECK(answer(get("/"), site).status == http::status::not_found);
  CHECK(answer("POST /health HTTP/1.1\r\nHost: relay\r\n\r\n", site).status == http::status::method_not_allowed);
}

TEST_CASE("http handler: a WebSocket upgrade at /v1/sync is handed over, without Upgrade it is 426", "[http]") {
  Site s;
  const HttpAnswer up = answer(get("/v1/sync", kUpgradeHeaders), s.site());
  CHECK(up.route == Route::kSync);
  CHECK(up.upgrade);
  CHECK(s.status_reads.empty());

  const HttpAnswer plain = answer(get("/v1/sync"), s.site());
  CHECK(plain.route == Route::kUpgradeRequired);
  CHECK_FALSE(plain.upgrade);
  CHECK(plain.status == http::status::upgrade_required);
  CHECK(plain.body == "use a WebSocket upgrade here\n");
  const HttpResponse r = build_response(plain);
  CHECK(field(r, http::field::upgrade) == "websocket");
  CHECK(field(r, http::field::content_type) == "text/plain; charset=utf-8");
}

TEST_CASE("http handler: the upgrade's 101 carries the RFC 6455 accept value, another version gets 426, a bad key 400",
          "[http][websocket]") {
  Site s;
  const HttpAnswer up = answer(get("/v1/sync", kUpgradeHeaders), s.site());
  REQUIRE(up.upgrade);
  CHECK(up.websocket_accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 1.3's example
  const HttpUpgradeResponse switching = build_upgrade_response(up);
  CHECK(switching.result() == http::status::switching_protocols);
  CHECK(std::string(switching[http::field::upgrade]) == "websocket");
  CHECK(std::string(switching[http::field::connection]) == "Upgrade");
  CHECK(std::string(switching[http::field::sec_websocket_accept]) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(std::string(switching[http::field::sec_websocket_extensions]).empty());  // no compression agreed

  const std::string version_12 =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 12\r\n";
  const HttpAnswer old = answer(get("/v1/sync", version_12), s.site());
  CHECK_FALSE(old.upgrade);
  CHECK(old.status == http::status::upgrade_required);
  CHECK_FALSE(old.keep_alive);
  CHECK(field(build_response(old), http::field::sec_websocket_version) == "13");

  for (const char* key : {"", "short==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25j*Q=="}) {
    INFO("key " << key);
    const std::string headers = std::string("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ") + key +
                                "\r\nSec-WebSocket-Version: 13\r\n";
    const HttpAnswer bad = answer(get("/v1/sync", headers), s.site());
    CHECK_FALSE(bad.upgrade);
    CHECK(bad.status == http::status::bad_request);
    CHECK(bad.body == "bad Sec-WebSocket-Key\n");
  }
}

TEST_CASE("http handler: other methods get 405 with Allow: GET, other paths 404", "[http]") {
  Site s;
  for (const char* request : {"POST /v1/sync HTTP/1.1\r\nHost: relay\r\n\r\n",
                              "HEAD /health HTTP/1.1\r\nHost: relay\r\n\r\n",
                              "DELETE /metrics HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n"}) {
    INFO(request);
    const HttpAnswer a = answer(request, s.site());
    CHECK(a.route == Route::kMethodNotAllowed);
    CHECK(a.status == http::status::method_not_allowed);
    CHECK(a.body == "method not allowed\n");
    CHECK(field(build_response(a), http::field::allow) == "GET");
  }
  for (const char* target : {"/", "/v1/sync/extra", "/healthz", "http://relay/health"}) {
    INFO(target);
    const HttpAnswer a = answer(get(target), s.site());
    CHECK(a.route == Route::kNotFound);
    CHECK(a.status == http::status::not_found);
    CHECK(field(build_response(a), http::field::allow).empty());
  }
  CHECK(s.status_reads.empty());
}

TEST_CASE("http handler: keep-alive follows the request and is off while the relay drains", "[http]") {
  Site s;
  CHECK_FALSE(answer(get("/health", "Connection: close\r\n"), s.site()).keep_alive);
  const HttpAnswer old = answer("GET /health HTTP/1.0\r\n\r\n", s.site());
  CHECK(old.version == 10);
  CHECK_FALSE(old.keep_alive);
  CHECK_FALSE(build_response(old).keep_alive());
  CHECK(answer("GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", s.site()).keep_alive);

  const HttpSite draining = s.site(HttpPort::kMain, true, false, /*stopping=*/true);
  const HttpAnswer health = answer(get("/health"), draining);
  CHECK(health.status == http::status::ok);
  CHECK_FALSE(health.keep_alive);
  CHECK(field(build_response(health), http::field::connection) == "close");
  const HttpAnswer sync = answer(get("/v1/sync", kUpgradeHeaders), draining);
  CHECK_FALSE(sync.upgrade);
  CHECK(sync.status == http::status::service_unavailable);
  CHECK(sync.body == "relay shutting down\n");
  CHECK_FALSE(sync.keep_alive);
}

TEST_CASE("http handler: a request that announces a body is refused unread with 413 and close", "[http]") {
  Site s;
  for (const char* request : {"POST /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 5\r\n\r\n",
                              "GET /health HTTP/1.0\r\nContent-Length: 1024\r\n\r\n",
                              "POST /v1/sync HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    INFO(request);
    const HttpAnswer a = answer(request, s.site());
    CHECK_FALSE(a.route.has_value());
    CHECK_FALSE(a.upgrade);
    CHECK(a.status == http::status::payload_too_large);
    CHECK(a.body == "request bodies are not accepted\n");
    CHECK(a.version == 11);
    CHECK_FALSE(a.keep_alive);
  }
  CHECK(s.status_reads.empty());
  // An empty body is no body.
  CHECK(answer("GET /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", s.site()).status == http::status::ok);
}

TEST_CASE("http handler: unreadable requests get 413, 431 or 400 and close, EOF gets nothing", "[http]") {
  const Parsed too_long = parse("POST /health HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
  CHECK(too_long.ec == http::error::body_limit);
  const Parsed huge_header = parse(get("/health", "Cookie: " + std::string(kHeaderLimit, 'c') + "\r\n"));
  CHECK(huge_header.ec == http::error::header_limit);
  const Parsed garbage = parse("\x16\x03\x01\x02\xfc\x03\x03\r\n\r\n");  // a TLS hello on the plain port
  CHECK(garbage.ec);

  const auto body = answer_read_error(too_long.ec);
  REQUIRE(body.has_value());
  CHECK(body->status == http::status::payload_too_large);
  CHECK(body->body == "request body too large\n");
  const auto header = answer_read_error(huge_header.ec);
  REQUIRE(header.has_value());
  CHECK(header->status == http::status::request_header_fields_too_large);
  CHECK(header->body == "request header too large\n");
  const auto bad = answer_read_error(garbage.ec);
  REQUIRE(bad.has_value());
  CHECK(bad->status == http::status::bad_request);
  CHECK(bad->body == "bad request\n");
  for (const auto& refusal : {*body, *header, *bad}) {
    CHECK_FALSE(refusal.route.has_value());
    CHECK_FALSE(refusal.keep_alive);
    CHECK(refusal.version == 11);
    CHECK(field(build_response(refusal), http::field::connection) == "close");
  }
  CHECK_FALSE(answer_read_error(http::error::end_of_stream).has_value());
}
