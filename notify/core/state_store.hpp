// SPDX-License-Identifier: GPL-2.0-or-later
// The state directory: one state file per instance, replaced atomically, and
// a per-instance lock file that also holds the highest applied sequence.
//
//   <dir>/<name>.state          MASTER|BACKUP|FAULT|STOP|DELETED and "\n"
//   <dir>/group/<name>.state    the same for sync groups
//   <dir>/.locks/               0700: instance:<name>, group:<name>, journal
//
// Every file is opened with openat() under the directory's descriptor, with
// O_NOFOLLOW, from a validated name; temporary files have unpredictable
// names and are created with O_EXCL, so a planted symlink is never followed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/error.hpp"
#include "kanotify/event.hpp"
#include "fault_point.hpp"
#include "unique_fd.hpp"

namespace kanotify {

// Test seams: a fault point called at each step of a write, and the source
// of temporary-name suffixes. Production code leaves both empty.
struct StoreHooks {
    std::function<void(std::string_view step)> fault_point;
    std::function<std::string()> temp_suffix;
};

// What the lock file of an instance records besides being a lock.
struct InstanceRecord {
    std::uint64_t sequence = 0;       // the highest applied, 0 when none was recorded
    std::uint64_t transitions = 0;    // transitions and events handled (for metrics)
    std::int64_t last_change_usec = 0;
    // When the last applied event was received, on CLOCK_BOOTTIME of boot
    // `boot` (boot_id()): orders an argv STOP, which has no sequence,
    // against what a restarted keepalived reported meanwhile. 0: unknown.
    std::int64_t last_change_boottime_usec = 0;
    std::uint64_t boot = 0;
};

class InstanceLock {
  public:
    InstanceLock() = default;
    explicit InstanceLock(UniqueFd fd) : fd_(std::move(fd)) {}
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    // A damaged or absent record reads as zeros: it must never make every
    // later transition look stale.
    [[nodiscard]] InstanceRecord record() const;
    // One fixed-width pwrite, without fsync: the caller makes it durable
    // with the state.
    [[nodiscard]] Result<void> set_record(const InstanceRecord& record) const;

  private:
    UniqueFd fd_;  // flock(LOCK_EX) held for as long as this object lives
};

// A state file written to its temporary name, not yet renamed into place.
struct StagedState {
    Kind kind = Kind::instance;
    std::string name;
    std::string temp_name;
    UniqueFd fd;
    bool spare = false;  // temp_name is the instance's spare, exchanged into place
};

struct StoredState {
    Kind kind = Kind::instance;
    std::string name;
    std::optional<State> state;  // nullopt: unreadable or unrecognised content
    std::int64_t mtime_usec = 0;
};

class StateStore {
  public:
    // Opens (creating it and its subdirectories when missing) the state directory.
    [[nodiscard]] static Result<StateStore> open(const std::string& path, StoreHooks hooks = {});

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] int dir_fd() const noexcept { return dir_.get(); }
    [[nodiscard]] int locks_fd() const noexcept { return locks_.get(); }

    [[nodiscard]] Result<InstanceLock> lock(Kind kind, const std::string& name) const;
    // nullopt when another process holds the lock right now.
    [[nodiscard]] Result<std::optional<InstanceLock>> try_lock(Kind kind, const std::string& name) const;

    // nullopt when there is no state file yet (or it is not a regular file).
    [[nodiscard]] Result<std::optional<State>> read(Kind kind, const std::string& name) const;

    // Durable atomic replace: temp file, fsync, rename, fsync of the directory.
    [[nodiscard]] Result<void> write(Kind kind, const std::string& name, State state) const;

    // The same in steps, so a batch pays for one sync: stage each file,
    // sync_filesystem() once, commit each, then sync_directories().
    [[nodiscard]] Result<StagedState> stage(Kind kind, const std::string& name, State state) const;
    [[nodiscard]] Result<void> sync_filesystem() const;
    [[nodiscard]] Result<void> commit(StagedState& staged) const;
    [[nodiscard]] Result<void> sync_directories(bool instances, bool groups) const;
    void discard(StagedState& staged) const noexcept;

    [[nodiscard]] Result<std::vector<StoredState>> list() const;

    // Removes temporary files a crash left behind (never a state file).
    [[nodiscard]] Result<std::size_t> remove_stale_temporaries() const;

    [[nodiscard]] std::string file_name(Kind kind, const std::string& name) const;

    // The suffix of a new temporary name: random, or the test seam's.
    // Every file kanotify creates in this directory tree takes it.
    [[nodiscard]] std::string temp_suffix() const;

  private:
    StateStore(std::string path, UniqueFd dir, UniqueFd group, UniqueFd locks, StoreHooks hooks)
        : path_(std::move(path)), dir_(std::move(dir)), group_(std::move(group)), locks_(std::move(locks)),
          hooks_(std::move(hooks)) {}
    [[nodiscard]] Result<std::optional<InstanceLock>> acquire(Kind kind, const std::string& name, bool wait) const;
    [[nodiscard]] int dir_for(Kind kind) const noexcept { return kind == Kind::group ? group_.get() : dir_.get(); }
    void fault(std::string_view step) const {
        if (hooks_.fault_point)
            hooks_.fault_point(step);
        crash_point(step);
    }

    std::string path_;
    UniqueFd dir_;
    UniqueFd group_;
    UniqueFd locks_;
    StoreHooks hooks_;
};

// Opens (creating when missing, mode 0755) a directory below `parent_fd`
// without following a symlink at `name`.
[[nodiscard]] Result<UniqueFd> open_subdirectory(int parent_fd, const std::string& name, mode_t mode,
                                                 const std::string& display);

// For a file written in place (a lock's record, a counter): it must be a
// regular file with one link. A hard link planted at its name would have us
// overwrite the file it shares.
[[nodiscard]] Result<void> check_written_in_place(int fd, const std::string& display);

// A spare below `dir_fd`: a file kept to be rewritten and renamed or
// exchanged into place instead of a new one, so that a write neither
// allocates nor frees an inode. Open for writing, content as found (see
// write_spare()); an invalid descriptor when there is none, or when what is
// there is not our own single-link regular file (a planted link or FIFO is
// never written to).
struct Spare {
    UniqueFd fd;
    off_t size = 0;   // the old content's length
    mode_t mode = 0;  // permission bits
    explicit operator bool() const noexcept { return static_cast<bool>(fd); }
};
[[nodiscard]] Spare open_spare(int dir_fd, const std::string& name);

// Replaces a spare's content by `text`: written over the old bytes from the
// start, then cut to its length if the old content was longer. Never
// emptied first: ext4 frees the blocks of a file truncated to zero, and
// forces the allocation of a file truncated to zero and rewritten when it
// is closed (auto_da_alloc); rewriting the same block costs neither, and a
// state file of unchanged length needs no inode write when it is synced.
[[nodiscard]] Result<void> write_spare(const Spare& spare, std::string_view text, const std::string& what);

// Reads a whole small file below `dir_fd` without following symlinks.
[[nodiscard]] Result<std::optional<std::string>> read_small_file(int dir_fd, const std::string& name,
                                                                 std::size_t limit);

}  // namespace kanotify
