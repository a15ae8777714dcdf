// SPDX-License-Identifier: GPL-2.0-or-later
// The hand-over between the FIFO reading thread and the dispatching thread:
// the reader never waits for the dispatcher, the dispatcher takes everything
// queued at once (one batch, one durable commit).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kanotify {

struct ReceivedLine {
    std::string text;
    std::uint64_t sequence = 0;
    std::int64_t time_usec = 0;
    bool overlong = false;
};

class LineQueue {
  public:
    void push(std::vector<ReceivedLine>&& lines) {
        if (lines.empty())
            return;
        {
            std::lock_guard lock(mutex_);
            for (auto& line : lines)
                queue_.push_back(std::move(line));
        }
        ready_.notify_one();
    }
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        ready_.notify_one();
    }
    // Blocks until lines are queued or the queue is closed; an empty result
    // means closed and drained.
    std::vector<ReceivedLine> take_all() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty() || closed_; });
        std::vector<ReceivedLine> out;
        out.swap(queue_);
        return out;
    }

  private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::vector<ReceivedLine> queue_;
    bool closed_ = false;
};

}  // namespace kanotify
