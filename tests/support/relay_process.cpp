#include "relay_process.h"

#include <signal.h>

#include <regex>
#include <stdexcept>

namespace blindsync::test {

std::unique_ptr<RelayProcess> RelayProcess::start(const std::string& data_dir, std::uint16_t port,
                                                  const std::vector<std::string>& extra_args,
                                                  std::chrono::milliseconds timeout) {
#ifdef BLINDSYNC_RELAY_BIN
  return start_binary(BLINDSYNC_RELAY_BIN, data_dir, port, extra_args, timeout);
#else
  (void)data_dir, (void)port, (void)extra_args, (void)timeout;
  throw std::runtime_error("no blindsync-relay is built in this tree: use RelayProcess::start_binary");
#endif
}

std::unique_ptr<RelayProcess> RelayProcess::start_binary(const std::string& binary, const std::string& data_dir,
                                                         std::uint16_t port, const std::vector<std::string>& extra_args,
                                                         std::chrono::milliseconds timeout) {
  std::vector<std::string> args{"--listen", "127.0.0.1:" + std::to_string(port), "--data", data_dir};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::unique_ptr<RelayProcess> relay(new RelayProcess());
  relay->process_ = Process::start(binary, args);

  static const std::regex kListening(R"(listening on (ws://([^:/\s]+):(\d+)/v1/sync) relay_id=([0-9a-f]{64}))");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = relay->process_->read_stdout_line(left);
    if (!line) break;  // timeout or the relay closed stdout (exited)
    std::smatch match;
    if (std::regex_search(*line, match, kListening)) {
      relay->url_ = match[1];
      relay->host_ = match[2];
      relay->port_ = static_cast<std::uint16_t>(std::stoul(match[3]));
      relay->relay_id_hex_ = match[4];
      return relay;
    }
  }
  relay->process_->kill();
  relay->process_->wait(std::chrono::seconds(5));
  throw std::runtime_error("blindsync-relay did not report 'listening on ws://...' in time\nstdout:\n" +
                           relay->process_->stdout_text() + "\nstderr:\n" + relay->process_->stderr_text());
}

void RelayProcess::kill() {
  process_->kill();
  (void)process_->wait(std::chrono::seconds(5));
}

int RelayProcess::stop(std::chrono::milliseconds timeout) {
  process_->send_signal(SIGTERM);
  if (auto code = process_->wait(timeout)) return *code;
  process_->kill();
  process_->wait(std::chrono::seconds(5));
  return -1;
}

}  // namespace blindsync::test
