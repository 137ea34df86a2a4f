// W5's catch-up half (w5_client_pull.cpp): a new device pulling a group through the Client.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>


namespace blindsync::bench {

// Joins the group of invite_link as a fresh device (home: an empty directory it may fill) and
// pulls it from cursor 0 with Client::pull, which decrypts and verifies every blob and persists
// the cursor after each page. expected: how many blobs the group holds. JSON figures, "ok" false
// with "error" on failure.
nlohmann::json client_pull_figures(const std::filesystem::path& home, const std::string& invite_link,
                                   std::uint64_t expected);

}  // namespace blindsync::bench
