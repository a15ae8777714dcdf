// SPDX-License-Identifier: GPL-2.0-or-later
#include "pending.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kanotify {

std::string pending_file_name(Kind kind, const std::string& name) {
    return fmt::format("{}:{}", kind == Kind::group ? "group" : "instance", name);
}

namespace {

// Spares live in a subdirectory: listing the sink's directory, which every
// invocation does to find what is owed, then reads only live entries.
constexpr char spare_directory[] = ".spare";

std::string spare_path(const std::string& file) { return fmt::format("{}/{}", spare_directory, file); }

// The kind as pending_file_name() spells it.
std::optional<Kind> parse_kind_prefix(std::string_view word) {
    if (word == "instance")
        return Kind::instance;
    if (word == "group")
        return Kind::group;
    return std::nullopt;
}

}  // namespace

Result<PendingStore> PendingStore::open(const StateStore& store, const std::string& sink) {
    auto top = open_subdirectory(store.dir_fd(), "pending", 0700, store.path() + "/pending");
    if (!top)
        return tl::unexpected(top.error());
    auto dir = open_subdirectory(top->get(), sink, 0700, store.path() + "/pending/" + sink);
    if (!dir)
        return tl::unexpected(dir.error());
    return PendingStore(store, std::move(*dir));
}

Result<void> PendingStore::put(const Delivery& delivery) const {
    auto name = pending_file_name(delivery.event.kind, delivery.event.name);
    auto text = delivery_json(delivery);
    // The entry delivered last for this instance was moved to its spare
    // (remove()): rewritten and renamed back, no inode is allocated or freed.
    auto spare = spare_path(name);
    if (auto reused = open_spare(dir_.get(), spare)) {
        if (auto written = write_spare(reused, text, fmt::format("pending delivery {}", quote(name))); !written)
            return written;
        if (::renameat(dir_.get(), spare.c_str(), dir_.get(), name.c_str()) != 0)
            return system_error(fmt::format("cannot record pending delivery {}", quote(name)), errno);
        return {};
    }
    // O_CREAT|O_EXCL never follows a symlink planted at the temporary name
    // (it fails with EEXIST) and the name is random: a taken name costs one
    // more attempt, as for state files.
    std::string temp;
    UniqueFd fd;
    for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
        temp = fmt::format(".{}.tmp-{}", name, store_->temp_suffix());
        fd.reset(::openat(dir_.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd && errno != EEXIST)
            return system_error(fmt::format("cannot create pending delivery {}", quote(name)), errno);
    }
    if (!fd)
        return system_error(fmt::format("cannot find a free temporary name for pending delivery {}", quote(name)),
                            EEXIST);
    // No fsync: the entry must survive the process being killed, which the
    // page cache ensures; after a power loss consumers read the state files.
    // rename() replaces a symlink or a hard link planted at the entry's
    // name; it never writes through it.
    errno = 0;
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir_.get(), temp.c_str(), dir_.get(), name.c_str()) != 0) {
        int err = errno == 0 ? EIO : errno;  // a short write sets none
        (void)::unlinkat(dir_.get(), temp.c_str(), 0);
        return system_error(fmt::format("cannot record pending delivery {}", quote(name)), err);
    }
    return {};
}

Result<void> PendingStore::remove(Kind kind, const std::string& name) const {
    auto file = pending_file_name(kind, name);
    // Kept as the instance's spare for its next entry (put()) when there is
    // none yet; RENAME_NOREPLACE never replaces one (or what is planted there).
    auto spare = spare_path(file);
    auto keep = [&] { return ::renameat2(dir_.get(), file.c_str(), dir_.get(), spare.c_str(), RENAME_NOREPLACE); };
    int kept = keep();
    if (kept != 0 && errno == ENOENT && ::faccessat(dir_.get(), file.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        return {};  // nothing to remove
    // The first spare of this sink: its directory is made with the mode
    // it needs whatever keepalived's umask (open_subdirectory).
    if (kept != 0 && errno == ENOENT &&
        open_subdirectory(dir_.get(), spare_directory, 0700, fmt::format("pending/.../{}", spare_directory)))
        kept = keep();
    if (kept == 0)
        return {};
    if (::unlinkat(dir_.get(), file.c_str(), 0) != 0 && errno != ENOENT)
        return system_error(fmt::format("cannot remove pending delivery {}", quote(file)), errno);
    return {};
}

Result<std::vector<PendingEntry>> PendingStore::list(std::size_t* unreadable, const Wanted& wanted) const {
    std::vector<PendingEntry> out;
    int fd = ::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return system_error("cannot list pending deliveries", errno);
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return system_error("cannot list pending deliveries", errno);
    }
    std::size_t bad = 0;
    while (auto* entry = ::readdir(dir)) {
        std::string file = entry->d_name;
        if (file.front() == '.')
            continue;
        if (wanted) {
            auto colon = file.find(':');
            auto kind = colon == std::string::npos ? std::nullopt : parse_kind_prefix(file.substr(0, colon));
            auto name = colon == std::string::npos ? std::string() : file.substr(colon + 1);
            if (!kind || !validate_name(name)) {
                ++bad;
                continue;
            }
            if (!wanted(*kind, name))
                continue;
        }
        auto text = read_small_file(dir_.get(), file, 8192);
        if (!text || !*text) {
            ++bad;
            continue;
        }
        auto delivery = parse_delivery_json(**text);
        if (!delivery || pending_file_name(delivery->event.kind, delivery->event.name) != file) {
            ++bad;
            continue;
        }
        out.push_back(PendingEntry{file, std::move(*delivery)});
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end(), [](const PendingEntry& a, const PendingEntry& b) {
        return std::tie(a.delivery.event.time_usec, a.delivery.event.sequence, a.file) <
               std::tie(b.delivery.event.time_usec, b.delivery.event.sequence, b.file);
    });
    if (unreadable)
        *unreadable = bad;
    return out;
}

Result<std::size_t> PendingStore::remove_stale_temporaries() const {
    int fd = ::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return system_error("cannot list pending deliveries", errno);
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        int err = errno;
        ::close(fd);
        return system_error("cannot list pending deliveries", err);
    }
    std::vector<std::string> stale;
    while (auto* entry = ::readdir(dir)) {
        // ".instance:NAME.tmp-SUFFIX": the lock file is "instance:NAME".
        std::string_view file = entry->d_name;
        auto marker = file.rfind(".tmp-");
        if (file.front() != '.' || marker == std::string_view::npos || marker < 2)
            continue;
        std::string lock(file.substr(1, marker - 1));
        if (lock.find('/') != std::string::npos)
            continue;
        UniqueFd lock_fd(::openat(store_->locks_fd(), lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (lock_fd && ::flock(lock_fd.get(), LOCK_EX | LOCK_NB) == 0)
            stale.emplace_back(file);
    }
    ::closedir(dir);
    std::size_t removed = 0;
    for (const auto& file : stale)
        if (::unlinkat(dir_.get(), file.c_str(), 0) == 0)
            ++removed;
    return removed;
}

Result<Delivery> parse_delivery_json(std::string_view text) {
    auto json = nlohmann::json::parse(text, nullptr, false);
    auto bad = [](std::string what) { return make_error(ErrorKind::invalid, "pending delivery: " + what); };
    if (!json.is_object())
        return bad("not a JSON object");
    auto string_field = [&](const char* key) -> std::optional<std::string> {
        auto it = json.find(key);
        if (it == json.end() || !it->is_string())
            return std::nullopt;
        return it->get<std::string>();
    };
    Delivery d;
    auto kind = string_field("kind");
    auto name = string_field("name");
    auto state = string_field("state");
    auto source = string_field("source");
    if (!kind || !parse_kind(*kind) || !name || !state || !parse_state(*state))
        return bad("kind, name or state missing or invalid");
    if (auto ok = validate_name(*name); !ok)
        return tl::unexpected(ok.error());
    d.event.kind = *parse_kind(*kind);
    d.event.name = *name;
    d.event.state = *parse_state(*state);
    if (auto previous = string_field("previous"); previous) {
        if (!parse_state(*previous))
            return bad("previous state invalid");
        d.previous = parse_state(*previous);
    }
    if (auto it = json.find("priority"); it != json.end() && it->is_number_unsigned() && *it <= 255)
        d.event.priority = static_cast<std::uint8_t>(it->get<unsigned>());
    if (auto it = json.find("sequence"); it != json.end() && it->is_number_unsigned())
        d.event.sequence = it->get<std::uint64_t>();
    if (auto it = json.find("time_usec"); it != json.end() && it->is_number_integer())
        d.event.time_usec = it->get<std::int64_t>();
    for (auto s : {Source::argv, Source::fifo, Source::preload, Source::monitor})
        if (source && *source == to_string(s))
            d.event.source = s;
    if (auto router = string_field("router_id"); router) {
        if (auto ok = validate_name(*router); !ok)
            return bad("router_id invalid");
        d.router_id = *router;
    }
    return d;
}

}  // namespace kanotify
