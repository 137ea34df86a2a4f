// The shape of the bench's output: the fields every workload line starts with, failure lines, and
// the one-line human summary printed on stderr beside each JSON line on stdout.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "bench_config.h"

namespace blindsync::bench {

nlohmann::json workload_header(const BenchConfig& config, const char* id, const char* name);
nlohmann::json workload_failure(const BenchConfig& config, const char* id, const char* name, const std::string& message);
// A nested part of a workload line (W5's async and pull) that failed before measuring.
nlohmann::json part_failure(const std::string& message);
std::string human_summary(const nlohmann::json& line);
// How many fields workload_header() writes (a line with no more than these and "error" has no figures).
std::size_t workload_header_field_count();

}  // namespace blindsync::bench
