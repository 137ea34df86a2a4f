// fuzz_replay: runs a libFuzzer target's entry point without libFuzzer, so that the regular test
// build (GCC, ASan + UBSan) and CI exercise every fuzz target on every change:
//   1. every seed of the target's corpus (fuzz/corpus/<target>/, real frames, links and requests);
//   2. then deterministic mutations of those seeds (bit flips, byte changes, inserts, deletes,
//      truncations, duplicated chunks, splices of two seeds), from a fixed PRNG seed, until
//      --mutations inputs or --seconds have run, whichever comes first.
// This is not a fuzzer (no coverage feedback): it is a regression net for the seeds and their near
// neighbours. scripts/fuzz does the real, coverage-guided fuzzing with clang and libFuzzer.
//
// A property the target checks fails with abort() (as under libFuzzer), a sanitizer report stops
// the process, and CTest sees a failure. The input that failed is written to --crash-dir first, so
// it can be replayed with the libFuzzer binary or this one.
//
//   fuzz_replay_<target> CORPUS_DIR [--mutations N] [--seconds S] [--max-len BYTES] [--crash-dir DIR]
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;
using Input = std::vector<std::uint8_t>;

struct Options {
  fs::path corpus;
  std::uint64_t mutations = 20000;
  double seconds = 20.0;
  std::size_t max_len = 64 * 1024;
  fs::path crash_dir = ".";
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fuzz_replay: %s\nusage: fuzz_replay CORPUS_DIR [--mutations N] [--seconds S] [--max-len BYTES] "
               "[--crash-dir DIR]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  bool have_corpus = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("a flag is missing its value");
      return argv[++i];
    };
    try {
      if (arg == "--mutations") {
        options.mutations = std::stoull(value());
      } else if (arg == "--seconds") {
        options.seconds = std::stod(value());
      } else if (arg == "--max-len") {
        options.max_len = std::max<std::size_t>(1, std::stoull(value()));
      } else if (arg == "--crash-dir") {
        options.crash_dir = value();
      } else if (!arg.empty() && arg[0] != '-' && !have_corpus) {
        options.corpus = arg;
        have_corpus = true;
      } else {
        usage("unknown argument");
      }
    } catch (const std::exception&) {
      usage("a numeric flag has a bad value");
    }
  }
  if (!have_corpus) usage("no corpus directory");
  return options;
}

std::vector<Input> read_corpus(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // the same order on every machine: reproducible runs
  std::vector<Input> inputs;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return inputs;
}

// Keeps the input that is about to run, so a crash leaves it on disk.
class CrashKeeper {
 public:
  // One file per target: the targets run in parallel under ctest -j and share the crash dir.
  CrashKeeper(fs::path dir, const std::string& target)
      : path_(std::move(dir) / ("fuzz-replay-last-input-" + target)) {}
  void keep(const Input& input) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
  }
  void clear() {
    std::error_code ec;
    fs::remove(path_, ec);
  }

 private:
  fs::path path_;
};

class Mutator {
 public:
  Mutator(const std::vector<Input>& seeds, std::size_t max_len) : seeds_(seeds), max_len_(max_len) {}

  Input next() {
    Input input = seeds_.empty() ? Input{} : seeds_[pick(seeds_.size())];
    const std::size_t rounds = 1 + pick(4);
    for (std::size_t r = 0; r < rounds; ++r) mutate(input);
    if (input.size() > max_len_) input.resize(max_len_);
    return input;
  }

 private:
  std::size_t pick(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng_() % n); }

  void mutate(Input& input) {
    static constexpr std::uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xc0, 0xc1, 0xcc, 0xcd, 0xce, 0xcf,
                                                    0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, '\r', '\n', ':'};
    switch (pick(8)) {
      case 0:  // flip one bit
        if (!input.empty()) input[pick(input.size())] ^= static_cast<std::uint8_t>(1u << pick(8));
        break;
      case 1:  // a random byte
        if (!input.empty()) input[pick(input.size())] = static_cast<std::uint8_t>(rng_());
        break;
      case 2:  // a byte that means something to msgpack or HTTP
        if (!input.empty()) input[pick(input.size())] = kInteresting[pick(std::size(kInteresting))];
        break;
      case 3:  // insert a byte
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(pick(input.size() + 1)),
                     static_cast<std::uint8_t>(rng_()));
        break;
      case 4: {  // delete a range
        if (input.empty()) break;
        const std::size_t at = pick(input.size());
        const std::size_t n = 1 + pick(std::min<std::size_t>(16, input.size() - at));
        input.erase(input.begin() + static_cast<std::ptrdiff_t>(at), input.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 5:  // truncate
        input.resize(pick(input.size() + 1));
        break;
      case 6: {  // duplicate a chunk in place
        if (input.empty()) break;
        const std::size_t at = pick(input.size());
        const std::size_t n = 1 + pick(std::min<std::size_t>(64, input.size() - at));
        const Input chunk(input.begin() + static_cast<std::ptrdiff_t>(at),
                          input.begin() + static_cast<std::ptrdiff_t>(at + n));
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), chunk.begin(), chunk.end());
        break;
      }
      default: {  // splice: this input's head, another seed's tail
        if (seeds_.empty()) break;
        const Input& other = seeds_[pick(seeds_.size())];
        input.resize(pick(input.size() + 1));
        const std::size_t from = pick(other.size() + 1);
        input.insert(input.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        break;
      }
    }
  }

  const std::vector<Input>& seeds_;
  const std::size_t max_len_;
  std::mt19937_64 rng_{0x626c696e6473796eULL};  // fixed: every run tries the same inputs
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  std::vector<Input> seeds;
  try {
    seeds = read_corpus(options.corpus);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_replay: cannot read corpus %s: %s\n", options.corpus.c_str(), e.what());
    return 2;
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "fuzz_replay: corpus %s has no seeds\n", options.corpus.c_str());
    return 2;
  }
  CrashKeeper keeper(options.crash_dir, options.corpus.filename().string());
  for (const Input& seed : seeds) {
    keeper.keep(seed);
    LLVMFuzzerTestOneInput(seed.data(), seed.size());
  }

  Mutator mutator(seeds, options.max_len);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.seconds);
  std::uint64_t runs = 0;
  while (runs < options.mutations && std::chrono::steady_clock::now() < deadline) {
    const Input input = mutator.next();
    keeper.keep(input);
    LLVMFuzzerTestOneInput(input.data(), input.size());
    ++runs;
  }
  keeper.clear();
  std::printf("fuzz_replay: %zu seeds and %llu mutations ran clean\n", seeds.size(),
              static_cast<unsigned long long>(runs));
  return 0;
}
