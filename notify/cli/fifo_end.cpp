// SPDX-License-Identifier: GPL-2.0-or-later
#include "fifo_end.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "kanotify/event.hpp"
#include "log.hpp"

namespace kanotify::cli {

namespace {

// A leaving reader stops reading at its deadline (at most 900 ms after its
// SIGTERM) and keepalived SIGKILLs it a second after that SIGTERM: past
// this, whoever holds the FIFO is not leaving.
constexpr int successor_wait_ms = 2000;
constexpr int successor_poll_ms = 5;
constexpr int active_reader_probe_ms = 200;

void pause_ms(int ms) {
    struct timespec pause {0, ms * 1000000L};
    ::nanosleep(&pause, nullptr);
}

bool same_file(int a, int b) {
    struct stat sa {}, sb {};
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Result<void> wait_for_leaving_reader(int fd, const std::string& path) {
    logger().log(Level::info, fmt::format("the previous reader of FIFO {} is leaving (keepalived reuses a FIFO it "
                                          "did not create across reloads): waiting for it",
                                          quote(path)));
    for (int waited = 0; waited < successor_wait_ms; waited += successor_poll_ms) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
            return {};
        if (errno != EWOULDBLOCK)
            return system_error(fmt::format("cannot lock FIFO {}", quote(path)), errno);
        pause_ms(successor_poll_ms);
    }
    return make_error(ErrorKind::usage, fmt::format("the previous reader of FIFO {} still holds it after {} ms",
                                                    quote(path), successor_wait_ms));
}

}  // namespace

Result<FifoEnd> FifoEnd::claim(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd)
        return system_error(fmt::format("cannot open FIFO {}", quote(path)), errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return system_error(fmt::format("cannot stat FIFO {}", quote(path)), errno);
    if (!S_ISFIFO(st.st_mode))
        return make_error(ErrorKind::usage, fmt::format("{} is not a FIFO", quote(path)));
    // Whoever can write the FIFO decides which transitions (and hooks) run.
    // keepalived creates it 0644 and gives it to the script's user; one that
    // already existed (planted in /tmp, say) is used as it is.
    if ((st.st_uid != ::geteuid() && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return make_error(ErrorKind::usage,
                          fmt::format("refusing FIFO {}: it must belong to uid {} or root and be writable by no "
                                      "one else (owner uid {}, mode {:04o})",
                                      quote(path), ::geteuid(), st.st_uid, st.st_mode & 07777));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0)
        return FifoEnd(std::move(fd));
    if (errno != EWOULDBLOCK)
        return system_error(fmt::format("cannot lock FIFO {}", quote(path)), errno);
    // Held exclusively: another reader is reading it. Held shared: a reader
    // got SIGTERM and is leaving (a reload that reuses the FIFO). keepalived
    // starts us right after that SIGTERM, so the old reader is given a
    // moment to take it in before we call it a second reader.
    int probed = 0;
    while (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK)
            return system_error(fmt::format("cannot lock FIFO {}", quote(path)), errno);
        if (probed >= active_reader_probe_ms)
            return make_error(ErrorKind::usage, fmt::format("another process already reads the FIFO {}: a second "
                                                            "reader would take lines from it and break their order",
                                                            quote(path)));
        pause_ms(successor_poll_ms);
        probed += successor_poll_ms;
    }
    (void)::flock(fd.get(), LOCK_UN);
    if (auto waited = wait_for_leaving_reader(fd.get(), path); !waited)
        return tl::unexpected(waited.error());
    return FifoEnd(std::move(fd));
}

bool FifoEnd::leave() {
    if (leaving_)
        return true;
    leaving_ = true;
    // The magic link opens the very FIFO we hold, even when keepalived has
    // already unlinked the path or made a new FIFO there.
    auto link = fmt::format("/proc/self/fd/{}", fd_.get());
    UniqueFd read_only(::open(link.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (read_only && !same_file(read_only.get(), fd_.get()))
        read_only.reset();
    if (read_only) {
        fd_ = std::move(read_only);  // our write end goes, and the exclusive lock with it
    } else {
        logger().log(Level::warning, fmt::format("cannot reopen the FIFO read-only ({}): keepalived closing it "
                                                 "will go unnoticed, reading until the deadline",
                                                 std::strerror(errno)));
    }
    // Not atomic either way: a new reader may take the FIFO exclusively in
    // the moment without a lock. Then it reads, and we must not.
    if (::flock(fd_.get(), LOCK_SH | LOCK_NB) == 0)
        return true;
    if (errno == EWOULDBLOCK)
        return false;
    logger().log(Level::warning, fmt::format("cannot lock the FIFO shared: {}", std::strerror(errno)));
    return true;
}

}  // namespace kanotify::cli
