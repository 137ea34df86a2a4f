#include "http/http_handler.h"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>  // websocket::is_upgrade: header checks only

#include <string_view>

#include "http/health.h"
#include "metrics/metrics_text.h"
#include "websocket/ws_handshake.h"

namespace blindsync::relay {
namespace {

namespace http = boost::beast::http;

std::string_view to_std(boost::beast::string_view s) { return {s.data(), s.size()}; }
boost::beast::string_view to_beast(std::string_view s) { return {s.data(), s.size()}; }

HttpAnswer refusal(http::status status, std::string body) {
  HttpAnswer answer;
  answer.status = status;
  answer.version = 11;
  answer.body = std::move(body);
  answer.keep_alive = false;
  return answer;
}

// The WebSocket opening handshake's own checks (RFC 6455 4.2.1), after is_upgrade: version 13,
// and a key of 16 bytes; sets either upgrade and the accept value or the refusal.
void accept_or_refuse_websocket(HttpAnswer& answer, const HttpRequest& request) {
  if (to_std(request[http::field::sec_websocket_version]) != ws::kWebSocketVersion) {
    answer.status = http::status::upgrade_required;
    answer.body = "WebSocket version 13 only\n";
    answer.keep_alive = false;
    return;
  }
  std::optional<std::string> accept = ws::accept_key(to_std(request[http::field::sec_websocket_key]));
  if (!accept) {
    answer.status = http::status::bad_request;
    answer.body = "bad Sec-WebSocket-Key\n";
    answer.keep_alive = false;
    return;
  }
  answer.upgrade = true;
  answer.websocket_accept = std::move(*accept);
}

// The metrics port serves /metrics and /health only; the main port serves /metrics only when no
// metrics port exists (an operator who set one wants metrics off the public port).
bool served_here(Route route, const HttpSite& site) {
  if (route == Route::kMetrics) {
    return site.metrics != nullptr && (site.port == HttpPort::kMetrics || !site.metrics_port);
  }
  if (site.port == HttpPort::kMetrics) return route == Route::kHealth || route == Route::kMethodNotAllowed;
  return true;
}

void set_health(HttpAnswer& answer, const RelayStatus& status) {
  HealthReport report;
  report.relay_id_hex = status.relay_id_hex;
  report.uptime_seconds = status.uptime_seconds;
  report.connections = status.connections;
  report.sessions = status.sessions;
  report.groups = status.groups;
  if (status.store) {
    report.blobs_buffered = status.store->blobs;
    report.bytes_buffered = status.store->bytes;
  }
  answer.status = health_ok(report) ? http::status::ok : http::status::service_unavailable;
  answer.content_type = "application/json";
  answer.body = render_health_json(report) + "\n";
}

void set_metrics(HttpAnswer& answer, const Metrics& metrics, const RelayStatus& status) {
  MetricsGauges gauges;
  gauges.uptime_seconds = status.uptime_seconds;
  gauges.connections = status.connections;
  gauges.sessions = status.sessions;
  gauges.groups = status.groups;
  gauges.store = status.store;
  answer.status = http::status::ok;
  answer.content_type = std::string(kMetricsContentType);
  answer.body = render_metrics_text(metrics, gauges);
}

}  // namespace

std::optional<HttpAnswer> answer_read_error(const boost::system::error_code& ec) {
  if (ec == http::error::end_of_stream) return std::nullopt;
  if (ec == http::error::body_limit) return refusal(http::status::payload_too_large, "request body too large\n");
  if (ec == http::error::header_limit) {
    return refusal(http::status::request_header_fields_too_large, "request header too large\n");
  }
  return refusal(http::status::bad_request, "bad request\n");
}

HttpAnswer answer_request(const HttpRequestParser& parser, const HttpSite& site) {
  // Only the header is read: nothing the relay serves takes a body. Refusing bodies before
  // reading them also keeps requests away from Boost 1.74 Beast's chunk parser, whose assert
  // (fixed upstream, boostorg/beast#2861) a client could trip in debug builds.
  if (parser.chunked() || parser.content_length().value_or(0) > 0) {
    return refusal(http::status::payload_too_large, "request bodies are not accepted\n");
  }
  const HttpRequest& request = parser.get();
  Route route = route_request(to_std(request.method_string()), to_std(request.target()),
                              boost::beast::websocket::is_upgrade(request));
  if (!served_here(route, site)) route = Route::kNotFound;

  HttpAnswer answer;
  answer.route = route;
  answer.version = request.version();
  answer.keep_alive = request.keep_alive() && !site.stopping;
  switch (route) {
    case Route::kSync:
      if (site.stopping) {
        answer.status = http::status::service_unavailable;
        answer.body = "relay shutting down\n";
        answer.keep_alive = false;
      } else {
        accept_or_refuse_websocket(answer, request);
      }
      break;
    case Route::kHealth:
      set_health(answer, site.read_status(route));
      break;
    case Route::kMetrics:
      set_metrics(answer, *site.metrics, site.read_status(route));  // served_here: metrics != nullptr
      break;
    case Route::kUpgradeRequired:
      answer.status = http::status::upgrade_required;
      answer.body = "use a WebSocket upgrade here\n";
      break;
    case Route::kMethodNotAllowed:
      answer.status = http::status::method_not_allowed;
      answer.body = "method not allowed\n";
      break;
    case Route::kNotFound:
      answer.status = http::status::not_found;
      answer.body = "not found\n";
      break;
  }
  return answer;
}

HttpResponse build_response(HttpAnswer answer) {
  HttpResponse response{answer.status, answer.version};
  response.set(http::field::server, to_beast(kServerHeader));
  response.set(http::field::content_type, to_beast(answer.content_type));
  response.set(http::field::cache_control, "no-store");
  if (answer.status == http::status::method_not_allowed) response.set(http::field::allow, "GET");
  if (answer.status == http::status::upgrade_required) {
    response.set(http::field::upgrade, "websocket");
    response.set(http::field::connection, "Upgrade");
    response.set(http::field::sec_websocket_version, to_beast(ws::kWebSocketVersion));
  }
  response.keep_alive(answer.keep_alive);
  response.body() = std::move(answer.body);
  response.prepare_payload();
  return response;
}

HttpUpgradeResponse build_upgrade_response(const HttpAnswer& answer) {
  HttpUpgradeResponse response{http::status::switching_protocols, answer.version};
  response.set(http::field::server, to_beast(kServerHeader));
  response.set(http::field::upgrade, "websocket");
  response.set(http::field::connection, "Upgrade");
  response.set(http::field::sec_websocket_accept, to_beast(answer.websocket_accept));
  return response;
}

}  // namespace blindsync::relay
