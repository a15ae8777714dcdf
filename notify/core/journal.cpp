// SPDX-License-Identifier: GPL-2.0-or-later
#include "journal.hpp"

#include "fault_point.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <utility>

#include <fmt/format.h>

namespace kanotify {

namespace {

// Holds the journal lock until released or destroyed. The lock file's
// descriptor is the Journal's, opened once: a storm's processes append
// twice per transition.
class JournalLock {
  public:
    explicit JournalLock(int fd) : fd_(fd) {}
    JournalLock(JournalLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    JournalLock& operator=(JournalLock&&) = delete;
    ~JournalLock() { release(); }
    void release() noexcept {
        if (fd_ >= 0)
            (void)::flock(std::exchange(fd_, -1), LOCK_UN);
    }

  private:
    int fd_;
};

Result<JournalLock> lock_journal(const StateStore& store, UniqueFd& lock_fd) {
    if (!lock_fd) {
        lock_fd.reset(::openat(store.locks_fd(), "journal", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!lock_fd)
            return system_error(fmt::format("cannot open the journal lock in {}", quote(store.path())), errno);
    }
    while (::flock(lock_fd.get(), LOCK_EX) != 0)
        if (errno != EINTR)
            return system_error("cannot lock the journal", errno);
    return JournalLock(lock_fd.get());
}

std::string rotated_name(std::int64_t index) {
    return fmt::format("{}.{}", Journal::file_name, index);
}

}  // namespace

Result<void> Journal::append(const std::vector<std::string>& lines, Durability durability) const {
    if (lines.empty())
        return {};
    auto lock = lock_journal(store_, lock_fd_);
    if (!lock)
        return tl::unexpected(lock.error());
    UniqueFd fd(::openat(store_.dir_fd(), file_name, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!fd)
        return system_error(fmt::format("cannot open {}/{}", store_.path(), file_name), errno);
    std::string data;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return system_error("cannot stat the journal", errno);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorKind::system, fmt::format("{}/{} is not a regular file", store_.path(), file_name));
    // The journal is the one file written in place: a hard link planted at
    // its name would have us append to whatever file it shares.
    if (st.st_nlink != 1)
        return make_error(ErrorKind::system, fmt::format("refusing {}/{}: it has {} links (a planted hard link?)",
                                                         store_.path(), file_name, st.st_nlink));
    if (st.st_size > 0) {
        char last = '\n';
        if (::pread(fd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') {
            // A crash tore the last line: end it (readers skip it as torn)
            // and say so, rather than glue the next record to it.
            data += '\n';
            data += fmt::format(R"({{"type":"repair","time_usec":{},"pid":{},"detail":"the journal's last line was )"
                                R"(torn (a crash mid-write); it was ended and is skipped when read"}})",
                                realtime_usec(), ::getpid());
            data += '\n';
        }
    }
    for (const auto& line : lines) {
        data += line;
        data += '\n';
    }
    crash_point("journal:before-write");
    std::string_view rest = data;
    while (!rest.empty()) {
        auto n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            // Never leave half a line: cut back to where this append started.
            // If even that fails, the torn tail is repaired by the next append.
            if (::ftruncate(fd.get(), st.st_size) != 0)
                return system_error(fmt::format("cannot append to {}/{} (and the partial line stays until the "
                                                "next append repairs it)",
                                                store_.path(), file_name),
                                    err);
            return system_error(fmt::format("cannot append to {}/{}", store_.path(), file_name), err);
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    crash_point("journal:written");
    // The lines are in place and in order: unless this append rotates the
    // journal, the lock goes before the sync, so that other processes
    // append while these lines are made durable and their syncs overlap
    // ours (the filesystem can commit them together) instead of queueing
    // one fdatasync() behind another: 500 argv or preload STOPs all append
    // at once, and keepalived SIGKILLs them 1.1 s after its STOP notifies.
    // Durability is unchanged: this call returns once these lines are on
    // disk, whoever else's come with them.
    bool rotating = st.st_size + static_cast<off_t>(data.size()) >= settings_.max_bytes;
    if (!rotating)
        lock->release();
    // A rotation renames the file: what it holds is synced first, whatever
    // was asked, so that no line is left behind unsynced in a rotated file.
    if (durability == Durability::with_next_sync && !rotating)
        return {};
    if (::fdatasync(fd.get()) != 0)
        return system_error(fmt::format("cannot sync {}/{}", store_.path(), file_name), errno);
    crash_point("journal:synced");
    if (rotating)
        return rotate();
    return {};
}

// Called with the journal lock held: no appender can be between its open()
// and its write(), so every line is in exactly one file when we rename.
Result<void> Journal::rotate() const {
    int dir = store_.dir_fd();
    for (auto i = settings_.keep; i >= 1; --i) {
        auto from = i == 1 ? std::string(file_name) : rotated_name(i - 1);
        if (::renameat(dir, from.c_str(), dir, rotated_name(i).c_str()) != 0 && errno != ENOENT)
            return system_error(fmt::format("cannot rotate {}/{}", store_.path(), from), errno);
    }
    if (::fsync(dir) != 0)
        return system_error(fmt::format("cannot sync {}", quote(store_.path())), errno);
    return {};
}

Result<JournalRead> Journal::tail(std::size_t count) const {
    JournalRead out;
    std::deque<std::string> kept;
    for (auto i = settings_.keep; i >= 0; --i) {
        auto name = i == 0 ? std::string(file_name) : rotated_name(i);
        auto content = read_small_file(store_.dir_fd(), name, static_cast<std::size_t>(settings_.max_bytes) * 2 + 65536);
        if (!content)
            return tl::unexpected(content.error());
        if (!*content)
            continue;
        std::string_view text = **content;
        while (!text.empty()) {
            auto nl = text.find('\n');
            auto line = text.substr(0, nl);
            text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
            if (line.empty())
                continue;
            // A complete record is a JSON object on one line; a torn write
            // leaves a prefix without its closing brace.
            if (nl == std::string_view::npos || line.front() != '{' || line.back() != '}') {
                ++out.torn;
                continue;
            }
            kept.emplace_back(line);
            if (count != 0 && kept.size() > count)
                kept.pop_front();
        }
    }
    out.lines.assign(kept.begin(), kept.end());
    return out;
}

}  // namespace kanotify
