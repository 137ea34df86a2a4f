// W5's AsyncClient half (w5_async_client.cpp): the embedding API's pipelined push path.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "blindsync/core/bytes.h"

namespace blindsync::bench {

// Pushes `data` through a fresh AsyncClient (home: an empty directory it may fill) to
// config.relay_url for config.duration_s; JSON figures, "ok" false with "error" on failure.
nlohmann::json async_client_figures(const BenchConfig& config, const std::filesystem::path& home, ByteView data);

}  // namespace blindsync::bench
