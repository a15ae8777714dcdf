// SPDX-License-Identifier: GPL-2.0-or-later
// The FIFO reader's hold on keepalived's notify FIFO, from opening it to
// leaving it when keepalived stops or reloads.
//
// What keepalived does (2.2.7 and current, lib/notify.c or core/notify.c and
// vrrp/vrrp_daemon.c): it opens the FIFO read-write and non-blocking after
// starting the reader. On a reload it SIGTERMs the reader and closes its end
// at once (unlinking the FIFO only when it created it), then makes the FIFO
// again and starts a new reader; when the path was already there it reuses
// the same FIFO. On a shutdown it SIGTERMs the reader, removes every master
// instance's addresses, writes every STOP line, and closes its end only
// after its SIGKILL timer has run: one second after the SIGTERM, but never
// before the STOP lines are written (the timer runs in keepalived's event
// loop), so when removing the addresses took longer than a second the kill
// comes right after the last STOP line.
#pragma once

#include <string>

#include "kanotify/error.hpp"
#include "unique_fd.hpp"

namespace kanotify::cli {

class FifoEnd {
  public:
    // Opens the FIFO read-write (never blocking on keepalived, never EOF
    // while keepalived merely reopens it) and takes it exclusively. A reader
    // still leaving the same FIFO is waited for (at most about 2 s); a
    // reader still reading it is refused: two would split the lines.
    [[nodiscard]] static Result<FifoEnd> claim(const std::string& path);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] bool leaving() const noexcept { return leaving_; }

    // SIGTERM: drops our own write end, so read() returns 0 once the last
    // writer (keepalived) has closed the FIFO, and holds the FIFO shared
    // from then on, which tells a new reader on the same FIFO to wait for
    // us. False when a new reader took the FIFO in between: it reads from
    // now on and we must not read any more.
    [[nodiscard]] bool leave();

    // Done reading: a reader waiting for this FIFO may start.
    void release() noexcept { fd_.reset(); }

  private:
    explicit FifoEnd(UniqueFd fd) noexcept : fd_(std::move(fd)) {}
    UniqueFd fd_;
    bool leaving_ = false;
};

}  // namespace kanotify::cli
