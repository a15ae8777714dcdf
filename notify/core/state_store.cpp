// SPDX-License-Identifier: GPL-2.0-or-later
#include "state_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <algorithm>
#include <cstring>
#include <tuple>

#include <fmt/format.h>

namespace kanotify {

namespace {

constexpr std::string_view state_suffix = ".state";
constexpr std::string_view temp_marker = ".state.tmp-";
constexpr std::string_view spare_suffix = ".state.spare";
// Five 20-digit fields, four spaces, a newline. Records written before the
// last two fields existed (63 bytes) read with those two as 0.
constexpr std::size_t record_bytes = 105;

std::string random_suffix() {
    unsigned char bytes[8];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    if (got < sizeof bytes) {
        // getrandom() cannot fail after early boot; O_EXCL keeps us safe anyway.
        auto mix = static_cast<std::uint64_t>(realtime_usec()) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
        std::memcpy(bytes, &mix, sizeof bytes);
    }
    std::string out;
    for (auto b : bytes)
        out += fmt::format("{:02x}", b);
    return out;
}

Result<void> write_all(int fd, std::string_view data, const std::string& what) {
    while (!data.empty()) {
        auto n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(fmt::format("cannot write {}", what), errno);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

std::string lock_name(Kind kind, const std::string& name) {
    return fmt::format("{}:{}", kind == Kind::group ? "group" : "instance", name);
}

}  // namespace

// The mode of a directory kanotify owns, whatever the umask it was started
// with: keepalived runs notify scripts with a umask that clears the execute
// bits, and a directory without its search bit is usable only through
// CAP_DAC_OVERRIDE, which kanotify does not keep. One made that way by an
// earlier version is repaired too.
static Result<void> settle_directory_mode(int fd, mode_t mode, bool created, const std::string& display) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return system_error(fmt::format("cannot stat directory {}", quote(display)), errno);
    bool unusable = st.st_uid == ::geteuid() && (st.st_mode & S_IRWXU) != S_IRWXU;
    if ((created || unusable) && (st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0)
        return system_error(fmt::format("cannot set the mode of directory {}", quote(display)), errno);
    return {};
}

Result<UniqueFd> open_subdirectory(int parent_fd, const std::string& name, mode_t mode, const std::string& display) {
    // Opened first: the directory is there on every call but the first.
    UniqueFd fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    bool created = false;
    if (!fd && errno == ENOENT) {
        created = ::mkdirat(parent_fd, name.c_str(), mode) == 0;
        if (!created && errno != EEXIST)
            return system_error(fmt::format("cannot create directory {}", quote(display)), errno);
        fd.reset(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd)
        return system_error(fmt::format("cannot open directory {} (a symlink is refused)", quote(display)), errno);
    if (auto ok = settle_directory_mode(fd.get(), mode, created, display); !ok)
        return tl::unexpected(ok.error());
    return fd;
}

Result<void> check_written_in_place(int fd, const std::string& display) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return system_error(fmt::format("cannot stat {}", display), errno);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorKind::system, fmt::format("refusing {}: not a regular file", display));
    if (st.st_nlink != 1)
        return make_error(ErrorKind::system,
                          fmt::format("refusing {}: it has {} links (a planted hard link?)", display, st.st_nlink));
    return {};
}

// Why spares: on ext4 without a journal every inode allocation scans past
// the inodes freed in the last seconds; in a 500-instance storm, creating
// a file per state and per pending delivery (and freeing the one replaced)
// made that scan over 80 % of the FIFO reader's CPU.
Spare open_spare(int dir_fd, const std::string& name) {
    Spare spare;
    spare.fd.reset(::openat(dir_fd, name.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!spare.fd)
        return spare;
    struct stat st {};
    if (::fstat(spare.fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != ::geteuid()) {
        spare.fd.reset();
        return spare;
    }
    spare.size = st.st_size;
    spare.mode = st.st_mode & 07777;
    return spare;
}

Result<void> write_spare(const Spare& spare, std::string_view text, const std::string& what) {
    for (std::size_t done = 0; done < text.size();) {
        auto n = ::pwrite(spare.fd.get(), text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(fmt::format("cannot write {}", what), errno);
        done += static_cast<std::size_t>(n);
    }
    if (spare.size > static_cast<off_t>(text.size()) && ::ftruncate(spare.fd.get(), static_cast<off_t>(text.size())) != 0)
        return system_error(fmt::format("cannot write {}", what), errno);
    return {};
}

Result<std::optional<std::string>> read_small_file(int dir_fd, const std::string& name, std::size_t limit) {
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT || errno == ELOOP)
            return std::optional<std::string>{};
        return system_error(fmt::format("cannot open {}", quote(name)), errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return system_error(fmt::format("cannot stat {}", quote(name)), errno);
    if (!S_ISREG(st.st_mode))
        return std::optional<std::string>{};
    std::string buffer(limit, '\0');
    std::size_t done = 0;
    while (done < limit) {
        auto n = ::read(fd.get(), buffer.data() + done, limit - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(fmt::format("cannot read {}", quote(name)), errno);
        if (n == 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    buffer.resize(done);
    return std::optional<std::string>{std::move(buffer)};
}

InstanceRecord InstanceLock::record() const {
    InstanceRecord out;
    char buffer[record_bytes + 1] = {};
    auto n = ::pread(fd_.get(), buffer, record_bytes, 0);
    if (n <= 0)
        return out;
    std::string_view text(buffer, static_cast<std::size_t>(n));
    std::uint64_t fields[5] = {0, 0, 0, 0, 0};
    for (auto& field : fields) {
        while (!text.empty() && text.front() == ' ')
            text.remove_prefix(1);
        auto end = text.find_first_of(" \n");
        auto word = text.substr(0, end);
        if (word.empty())
            break;
        auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), field);
        if (ec != std::errc() || ptr != word.data() + word.size())
            return InstanceRecord{};
        text.remove_prefix(word.size());
    }
    out.sequence = fields[0];
    out.transitions = fields[1];
    out.last_change_usec = static_cast<std::int64_t>(fields[2]);
    out.last_change_boottime_usec = static_cast<std::int64_t>(fields[3]);
    out.boot = fields[4];
    return out;
}

Result<void> InstanceLock::set_record(const InstanceRecord& record) const {
    auto text = fmt::format("{:>20} {:>20} {:>20} {:>20} {:>20}\n", record.sequence, record.transitions,
                            static_cast<std::uint64_t>(std::max<std::int64_t>(record.last_change_usec, 0)),
                            static_cast<std::uint64_t>(std::max<std::int64_t>(record.last_change_boottime_usec, 0)),
                            record.boot);
    if (::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        return system_error("cannot write the instance record", errno);
    return {};
}

Result<StateStore> StateStore::open(const std::string& path, StoreHooks hooks) {
    if (path.empty() || path.front() != '/')
        return make_error(ErrorKind::config, fmt::format("state directory {} is not an absolute path", quote(path)));
    // The last component is opened without following a symlink. Only when
    // it is missing are it and its parents made (like mkdir -p); parents
    // made here get 0755 whatever the umask (see settle_directory_mode).
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    bool created = false;
    if (!dir && errno == ENOENT) {
        for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
            auto parent = path.substr(0, slash);
            if (::mkdir(parent.c_str(), 0755) == 0)
                (void)::chmod(parent.c_str(), 0755);
        }
        created = ::mkdir(path.c_str(), 0755) == 0;
        if (!created && errno != EEXIST)
            return system_error(fmt::format("cannot create state directory {}", quote(path)), errno);
        dir.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!dir)
        return system_error(fmt::format("cannot open state directory {} (a symlink is refused)", quote(path)), errno);
    if (auto ok = settle_directory_mode(dir.get(), 0755, created, path); !ok)
        return tl::unexpected(ok.error());
    struct stat st {};
    if (::fstat(dir.get(), &st) != 0)
        return system_error(fmt::format("cannot stat state directory {}", quote(path)), errno);
    // Someone else able to add or rename entries could swap our files.
    if (st.st_uid != ::geteuid() || (st.st_mode & S_IWOTH) != 0)
        return make_error(ErrorKind::config,
                          fmt::format("refusing state directory {}: it must be owned by uid {} and not "
                                      "world-writable (owner uid {}, mode {:04o})",
                                      quote(path), ::geteuid(), st.st_uid, st.st_mode & 07777));
    auto group = open_subdirectory(dir.get(), "group", 0755, path + "/group");
    if (!group)
        return tl::unexpected(group.error());
    auto locks = open_subdirectory(dir.get(), ".locks", 0700, path + "/.locks");
    if (!locks)
        return tl::unexpected(locks.error());
    return StateStore(path, std::move(dir), std::move(*group), std::move(*locks), std::move(hooks));
}

std::string StateStore::temp_suffix() const {
    return hooks_.temp_suffix ? hooks_.temp_suffix() : random_suffix();
}

std::string StateStore::file_name(Kind kind, const std::string& name) const {
    return fmt::format("{}/{}{}{}", path_, kind == Kind::group ? "group/" : "", name, state_suffix);
}

Result<std::optional<InstanceLock>> StateStore::acquire(Kind kind, const std::string& name, bool wait) const {
    if (auto ok = validate_name(name); !ok)
        return tl::unexpected(ok.error());
    auto file = lock_name(kind, name);
    UniqueFd fd(::openat(locks_.get(), file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return system_error(fmt::format("cannot open lock {}/.locks/{}", path_, file), errno);
    // Its record is written in place (set_record).
    if (auto ok = check_written_in_place(fd.get(), fmt::format("lock {}/.locks/{}", path_, file)); !ok)
        return tl::unexpected(ok.error());
    while (::flock(fd.get(), wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK && !wait)
            return std::optional<InstanceLock>{};
        if (errno != EINTR)
            return system_error(fmt::format("cannot lock {}/.locks/{}", path_, file), errno);
    }
    return std::optional<InstanceLock>{InstanceLock(std::move(fd))};
}

Result<InstanceLock> StateStore::lock(Kind kind, const std::string& name) const {
    auto lock = acquire(kind, name, true);
    if (!lock)
        return tl::unexpected(lock.error());
    return std::move(**lock);
}

Result<std::optional<InstanceLock>> StateStore::try_lock(Kind kind, const std::string& name) const {
    return acquire(kind, name, false);
}

Result<std::optional<State>> StateStore::read(Kind kind, const std::string& name) const {
    if (auto ok = validate_name(name); !ok)
        return tl::unexpected(ok.error());
    auto content = read_small_file(dir_for(kind), name + std::string(state_suffix), 64);
    if (!content)
        return tl::unexpected(content.error());
    if (!*content)
        return std::optional<State>{};
    std::string_view text = **content;
    if (text.ends_with('\n'))
        text.remove_suffix(1);
    auto state = parse_state(text);
    if (!state || !is_recorded_state(*state))
        return std::optional<State>{};
    return state;
}

Result<StagedState> StateStore::stage(Kind kind, const std::string& name, State state) const {
    if (auto ok = validate_name(name); !ok)
        return tl::unexpected(ok.error());
    if (!is_recorded_state(state))
        return make_error(ErrorKind::invalid, fmt::format("{} is an event, not a state to record", to_string(state)));
    StagedState staged;
    staged.kind = kind;
    staged.name = name;
    // The instance's spare: the state file the last commit replaced, rewritten
    // and exchanged into place (renameat2 RENAME_EXCHANGE).
    auto spare = fmt::format(".{}{}", name, spare_suffix);
    auto text = fmt::format("{}\n", to_string(state));
    if (auto reused = open_spare(dir_for(kind), spare)) {
        staged.temp_name = spare;
        staged.spare = true;
        // Readable by every consumer whatever the umask keepalived gave us.
        Result<void> written;
        if (reused.mode != 0644 && ::fchmod(reused.fd.get(), 0644) != 0) {
            int err = errno;
            written = system_error(fmt::format("cannot set the mode of {}", quote(spare)), err);
        } else {
            written = write_spare(reused, text, file_name(kind, name));
        }
        staged.fd = std::move(reused.fd);
        if (!written) {
            discard(staged);
            return tl::unexpected(written.error());
        }
        fault("state:written");
        return staged;
    }
    // None yet: this one becomes the spare after its first exchange.
    staged.fd.reset(
        ::openat(dir_for(kind), spare.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (staged.fd) {
        staged.temp_name = spare;
        staged.spare = true;
    }
    // O_CREAT|O_EXCL never follows a symlink (it fails with EEXIST), and
    // the name is random, so a planted name costs us one more attempt.
    for (int attempt = 0; attempt < 16 && !staged.fd; ++attempt) {
        staged.temp_name = fmt::format(".{}{}{}", name, temp_marker, temp_suffix());
        staged.fd.reset(::openat(dir_for(kind), staged.temp_name.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!staged.fd && errno != EEXIST)
            return system_error(fmt::format("cannot create a temporary file in {}", quote(path_)), errno);
    }
    if (!staged.fd)
        return system_error(fmt::format("cannot find a free temporary name in {}", quote(path_)), EEXIST);
    // Readable by every consumer whatever the umask keepalived gave us.
    if (::fchmod(staged.fd.get(), 0644) != 0) {
        int err = errno;
        (void)::unlinkat(dir_for(kind), staged.temp_name.c_str(), 0);
        return system_error(fmt::format("cannot set the mode of a temporary file in {}", quote(path_)), err);
    }
    if (auto ok = write_all(staged.fd.get(), text, file_name(kind, name)); !ok) {
        discard(staged);
        return tl::unexpected(ok.error());
    }
    fault("state:written");
    return staged;
}

Result<void> StateStore::sync_filesystem() const {
    if (::syncfs(dir_.get()) != 0)
        return system_error(fmt::format("cannot sync the file system of {}", quote(path_)), errno);
    return {};
}

Result<void> StateStore::commit(StagedState& staged) const {
    fault("state:before-rename");
    auto target = staged.name + std::string(state_suffix);
    int dir = dir_for(staged.kind);
    // The replaced file becomes the spare, when it is a plain file of ours
    // (a link planted there is replaced, as rename() does, not kept). No
    // state file yet, or a file system without the exchange: a plain rename.
    struct stat current {};
    bool exchange = staged.spare && ::fstatat(dir, target.c_str(), &current, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(current.st_mode) && current.st_nlink == 1;
    bool exchanged = exchange && ::renameat2(dir, staged.temp_name.c_str(), dir, target.c_str(), RENAME_EXCHANGE) == 0;
    if (exchange && !exchanged && errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
        int err = errno;
        discard(staged);
        return system_error(fmt::format("cannot exchange into {}", quote(file_name(staged.kind, staged.name))), err);
    }
    // rename() replaces a symlink planted at the target; it never follows it.
    if (!exchanged && ::renameat(dir, staged.temp_name.c_str(), dir, target.c_str()) != 0) {
        int err = errno;
        discard(staged);
        return system_error(fmt::format("cannot rename into {}", quote(file_name(staged.kind, staged.name))), err);
    }
    // The instance's first state (or a spare used up by a plain rename):
    // its next spare is made now, not during the failover that writes next.
    if (!exchanged)
        UniqueFd(::openat(dir, fmt::format(".{}{}", staged.name, spare_suffix).c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    staged.fd.reset();
    staged.temp_name.clear();
    staged.spare = false;
    fault("state:renamed");
    return {};
}

Result<void> StateStore::sync_directories(bool instances, bool groups) const {
    if ((instances && ::fsync(dir_.get()) != 0) || (groups && ::fsync(group_.get()) != 0))
        return system_error(fmt::format("cannot sync directory {}", quote(path_)), errno);
    fault("state:dir-synced");
    return {};
}

void StateStore::discard(StagedState& staged) const noexcept {
    if (!staged.temp_name.empty())
        (void)::unlinkat(dir_for(staged.kind), staged.temp_name.c_str(), 0);
    staged.temp_name.clear();
    staged.spare = false;
    staged.fd.reset();
}

Result<void> StateStore::write(Kind kind, const std::string& name, State state) const {
    auto staged = stage(kind, name, state);
    if (!staged)
        return tl::unexpected(staged.error());
    if (::fdatasync(staged->fd.get()) != 0) {
        int err = errno;
        discard(*staged);
        return system_error(fmt::format("cannot sync {}", quote(file_name(kind, name))), err);
    }
    fault("state:synced");
    if (auto ok = commit(*staged); !ok)
        return ok;
    if (::fsync(dir_for(kind)) != 0)
        return system_error(fmt::format("cannot sync directory of {}", quote(file_name(kind, name))), errno);
    fault("state:dir-synced");
    return {};
}

Result<std::vector<StoredState>> StateStore::list() const {
    std::vector<StoredState> out;
    for (Kind kind : {Kind::instance, Kind::group}) {
        int fd = ::openat(dir_for(kind), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return system_error(fmt::format("cannot list {}", quote(path_)), errno);
        DIR* dir = ::fdopendir(fd);
        if (!dir) {
            int err = errno;
            ::close(fd);
            return system_error(fmt::format("cannot list {}", quote(path_)), err);
        }
        while (auto* entry = ::readdir(dir)) {
            std::string_view file = entry->d_name;
            if (file.front() == '.' || !file.ends_with(state_suffix))
                continue;
            std::string name(file.substr(0, file.size() - state_suffix.size()));
            if (!validate_name(name))
                continue;
            StoredState item;
            item.kind = kind;
            item.name = name;
            auto state = read(kind, name);
            if (state)
                item.state = *state;
            struct stat st {};
            if (::fstatat(dir_for(kind), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                item.mtime_usec = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
            out.push_back(std::move(item));
        }
        ::closedir(dir);
    }
    std::sort(out.begin(), out.end(), [](const StoredState& a, const StoredState& b) {
        return std::tie(a.kind, a.name) < std::tie(b.kind, b.name);
    });
    return out;
}

Result<std::size_t> StateStore::remove_stale_temporaries() const {
    std::size_t removed = 0;
    for (Kind kind : {Kind::instance, Kind::group}) {
        int fd = ::openat(dir_for(kind), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return system_error(fmt::format("cannot list {}", quote(path_)), errno);
        DIR* dir = ::fdopendir(fd);
        if (!dir) {
            int err = errno;
            ::close(fd);
            return system_error(fmt::format("cannot list {}", quote(path_)), err);
        }
        std::vector<std::string> stale;
        while (auto* entry = ::readdir(dir)) {
            std::string_view file = entry->d_name;
            auto marker = file.find(temp_marker);
            if (file.front() != '.' || marker == std::string_view::npos)
                continue;
            // Only a temporary whose instance lock is free is abandoned: a
            // writer holding the lock may be about to rename it.
            std::string name(file.substr(1, marker - 1));
            if (!validate_name(name))
                continue;
            auto lock_fd = ::openat(locks_.get(), lock_name(kind, name).c_str(),
                                    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (lock_fd < 0)
                continue;
            if (::flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
                stale.emplace_back(file);
            ::close(lock_fd);
        }
        ::closedir(dir);
        for (const auto& file : stale)
            if (::unlinkat(dir_for(kind), file.c_str(), 0) == 0)
                ++removed;
    }
    return removed;
}

}  // namespace kanotify
