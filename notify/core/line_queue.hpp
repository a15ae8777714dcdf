// SPDX-License-Identifier: GPL-2.0-or-later
// The hand-over between the FIFO reading thread and the dispatching thread:
// the reader never waits for the dispatcher, the dispatcher takes everything
// queued at once (one batch, one durable commit).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iterator>
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
    // Blocks until lines are queued or the queue is closed, then takes up
    // to `limit` of them, oldest first; an empty result means closed and
    // drained. The limit bounds what one batch holds in memory at once.
    std::vector<ReceivedLine> take(std::size_t limit) {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return head_ < queue_.size() || closed_; });
        return take_locked(limit);
    }
    // As take(), but gives up at `deadline` (CLOCK_MONOTONIC) with an empty
    // batch; finished() tells that apart from a closed, drained queue. A
    // deadline already past takes what is queued without waiting.
    std::vector<ReceivedLine> take_until(std::size_t limit, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        ready_.wait_until(lock, deadline, [this] { return head_ < queue_.size() || closed_; });
        return take_locked(limit);
    }
    bool finished() {
        std::lock_guard lock(mutex_);
        return closed_ && head_ == queue_.size();
    }

  private:
    std::vector<ReceivedLine> take_locked(std::size_t limit) {
        auto count = std::min(limit, queue_.size() - head_);
        std::vector<ReceivedLine> out(std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(head_)),
                                      std::make_move_iterator(queue_.begin() +
                                                              static_cast<std::ptrdiff_t>(head_ + count)));
        head_ += count;
        if (head_ == queue_.size()) {
            queue_.clear();
            head_ = 0;
        } else if (head_ > queue_.size() / 2) {
            // A reader that keeps the queue non-empty must not keep the
            // taken lines alive: drop them now and then.
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        return out;
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::vector<ReceivedLine> queue_;
    std::size_t head_ = 0;  // lines before it were taken already
    bool closed_ = false;
};

}  // namespace kanotify
