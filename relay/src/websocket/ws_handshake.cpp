#include "websocket/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>

namespace blindsync::relay::ws {
namespace {

// RFC 6455 1.3: appended to the client's key before hashing.
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// 16 bytes in base64: 22 characters (the last carries 2 bits, its low 4 bits zero) and "==".
bool is_sixteen_byte_key(std::string_view key) noexcept {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  if (!std::all_of(key.begin(), key.begin() + 22, is_base64_char)) return false;
  constexpr std::string_view kLastChars = "AQgw";  // values 0, 16, 32, 48
  return kLastChars.find(key[21]) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> accept_key(std::string_view client_key) {
  if (!is_sixteen_byte_key(client_key)) return std::nullopt;
  std::string input(client_key);
  input.append(kAcceptGuid);
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> encoded{};
  const int length = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(length));
}

}  // namespace blindsync::relay::ws
