// SPDX-License-Identifier: GPL-2.0-or-later
// Cuts a byte stream (the notify FIFO) into lines with a hard length limit:
// a line longer than the limit is reported once as overlong and skipped up
// to its newline, so a writer can never make us buffer without bound.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kanotify {

class LineSplitter {
  public:
    using Sink = std::function<void(std::string_view line, bool overlong)>;

    explicit LineSplitter(std::size_t limit) : limit_(limit) {}

    void feed(std::string_view bytes, const Sink& sink);
    // Bytes after the last newline (a writer that died mid-line).
    [[nodiscard]] std::string_view pending() const noexcept { return partial_; }
    [[nodiscard]] bool discarding() const noexcept { return discarding_; }

  private:
    std::size_t limit_;
    std::string partial_;
    bool discarding_ = false;
};

}  // namespace kanotify
