#include "ops_tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include <catch2/catch.hpp>

#include "process.h"

namespace blindsync::test {

SelfSignedCert make_self_signed_cert(const std::filesystem::path& dir, const std::string& name) {
  SelfSignedCert out;
  out.cert = dir / (name + "-cert.pem");
  out.key = dir / (name + "-key.pem");
  const RunResult made = run_process(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       out.key.string(), "-out", out.cert.string(), "-days", "2", "-subj", "/CN=localhost", "-addext",
       "subjectAltName=IP:127.0.0.1,DNS:localhost"},
      "", std::chrono::seconds(60));
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  ::chmod(out.key.c_str(), 0600);
  const RunResult fingerprint = run_process(
      "/usr/bin/openssl", {"x509", "-noout", "-fingerprint", "-sha256", "-in", out.cert.string()}, "",
      std::chrono::seconds(30));
  REQUIRE(fingerprint.exit_code == 0);
  // "sha256 Fingerprint=AB:CD:..." (the prefix's case differs between OpenSSL versions)
  const auto equals = fingerprint.out.find('=');
  REQUIRE(equals != std::string::npos);
  for (char c : fingerprint.out.substr(equals + 1)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      out.sha256_hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  REQUIRE(out.sha256_hex.size() == 64);
  return out;
}

std::optional<TlsHttpResponse> https_get(std::uint16_t port, const std::string& path,
                                         std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  std::optional<TlsHttpResponse> result;
  do {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) break;
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) break;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    ssl = SSL_new(ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) break;
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) != static_cast<int>(request.size())) break;
    std::string response;
    char buffer[4096];
    for (int rounds = 0; rounds < 1024; ++rounds) {  // at most 4 MiB
      const int n = SSL_read(ssl, buffer, sizeof buffer);
      if (n <= 0) break;
      response.append(buffer, static_cast<std::size_t>(n));
    }
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) break;
    const auto head_end = response.find("\r\n\r\n");
    if (head_end == std::string::npos) break;
    TlsHttpResponse parsed;
    parsed.status = std::atoi(response.substr(9, 3).c_str());
    parsed.body = response.substr(head_end + 4);
    result = parsed;
  } while (false);
  if (ssl != nullptr) SSL_free(ssl);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  ::close(fd);
  ERR_clear_error();
  return result;
}

}  // namespace blindsync::test
