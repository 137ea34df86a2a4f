// TLS helpers for the operations tests: a self-signed certificate made with the openssl command
// line tool, and an HTTPS GET over OpenSSL that does not verify the certificate (the tests check
// that the relay speaks TLS; certificate checking is tests/client/wss_test.cpp's job).
// Thread-safety: free functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace blindsync::test {

struct SelfSignedCert {
  std::filesystem::path cert;  // PEM, CN=localhost, subjectAltName IP:127.0.0.1 and DNS:localhost
  std::filesystem::path key;   // PEM (P-256), mode 0600
  std::string sha256_hex;      // fingerprint of the DER certificate, lower-case hex without colons
};

// Creates cert.pem and key.pem (prefixed with name) in dir. REQUIREs success.
SelfSignedCert make_self_signed_cert(const std::filesystem::path& dir, const std::string& name = "relay");

struct TlsHttpResponse {
  int status = 0;
  std::string body;
};

// GET path over TLS from 127.0.0.1:port; nullopt if the handshake or the request fails.
std::optional<TlsHttpResponse> https_get(std::uint16_t port, const std::string& path,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace blindsync::test
