// SPDX-License-Identifier: GPL-2.0-or-later
#include "metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include <fmt/format.h>

#include "effective_capability.hpp"

namespace kanotify {

namespace {

std::string kind_label(Kind kind) {
    return kind == Kind::group ? "group" : "instance";
}

std::uint64_t read_counter(int fd) {
    char buffer[32] = {};
    auto n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    std::uint64_t value = 0;
    if (n <= 0)
        return 0;
    std::string_view text(buffer, static_cast<std::size_t>(n));
    while (!text.empty() && (text.front() == ' '))
        text.remove_prefix(1);
    auto end = text.find('\n');
    text = text.substr(0, end);
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && ptr == text.data() + text.size() ? value : 0;
}

}  // namespace

Result<void> count_delivery_failure(const StateStore& store, std::string_view sink) {
    return increment_counter(store, fmt::format("failures:{}", sink));
}

Result<void> increment_counter(const StateStore& store, const std::string& name) {
    return add_to_counter(store, name, 1);
}

Result<void> add_to_counter(const StateStore& store, const std::string& name, std::uint64_t n) {
    UniqueFd fd(::openat(store.locks_fd(), name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return system_error(fmt::format("cannot open the counter {}", name), errno);
    if (auto ok = check_written_in_place(fd.get(), fmt::format("the counter {}", name)); !ok)
        return ok;
    while (::flock(fd.get(), LOCK_EX) != 0)
        if (errno != EINTR)
            return system_error(fmt::format("cannot lock the counter {}", name), errno);
    auto text = fmt::format("{:>20}\n", read_counter(fd.get()) + n);
    if (::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        return system_error(fmt::format("cannot write the counter {}", name), errno);
    return {};
}

Result<MetricsSnapshot> collect_metrics(const StateStore& store,
                                        const std::map<std::string, std::vector<std::string>>& pending,
                                        const std::vector<std::string>& sinks) {
    MetricsSnapshot snapshot;
    auto states = store.list();
    if (!states)
        return tl::unexpected(states.error());
    for (const auto& s : *states) {
        MetricsSnapshot::Instance item{s.kind, s.name, s.state, {}};
        auto lock_name = fmt::format("{}:{}", kind_label(s.kind), s.name);
        UniqueFd fd(::openat(store.locks_fd(), lock_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (fd)
            item.record = InstanceLock(std::move(fd)).record();  // read only, never locked
        snapshot.instances.push_back(std::move(item));
    }
    for (const auto& sink : sinks) {
        snapshot.pending[sink] = 0;
        auto name = fmt::format("failures:{}", sink);
        UniqueFd fd(::openat(store.locks_fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        snapshot.failures[sink] = fd ? read_counter(fd.get()) : 0;
    }
    for (auto result : hook_results) {
        auto name = fmt::format("hooks:{}", result);
        UniqueFd fd(::openat(store.locks_fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        snapshot.hooks[std::string(result)] = fd ? read_counter(fd.get()) : 0;
    }
    for (auto result : unit_job_results) {
        auto name = fmt::format("units:{}", result);
        UniqueFd fd(::openat(store.locks_fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        snapshot.unit_jobs[std::string(result)] = fd ? read_counter(fd.get()) : 0;
    }
    for (auto result : announce_results) {
        auto name = fmt::format("announce:{}", result);
        UniqueFd fd(::openat(store.locks_fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        snapshot.announcements[std::string(result)] = fd ? read_counter(fd.get()) : 0;
    }
    for (const auto& [instance, owed] : pending)
        for (const auto& sink : owed)
            ++snapshot.pending[sink];
    return snapshot;
}

std::string render_metrics(const MetricsSnapshot& snapshot) {
    std::string out;
    auto family = [&](const char* name, const char* type, const char* help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    family("kanotify_instance_state", "gauge", "Recorded VRRP state of an instance or sync group (1 for the current state).");
    for (const auto& i : snapshot.instances)
        if (i.state)
            out += fmt::format("kanotify_instance_state{{kind=\"{}\",name=\"{}\",state=\"{}\"}} 1\n",
                               kind_label(i.kind), i.name, to_string(*i.state));
    family("kanotify_transitions_total", "counter", "Transitions and events handled per instance or sync group.");
    for (const auto& i : snapshot.instances)
        out += fmt::format("kanotify_transitions_total{{kind=\"{}\",name=\"{}\"}} {}\n", kind_label(i.kind), i.name,
                           i.record.transitions);
    family("kanotify_last_transition_timestamp_seconds", "gauge", "When the last transition was received (Unix time).");
    for (const auto& i : snapshot.instances)
        if (i.record.last_change_usec > 0)
            out += fmt::format("kanotify_last_transition_timestamp_seconds{{kind=\"{}\",name=\"{}\"}} {}.{:06}\n",
                               kind_label(i.kind), i.name, i.record.last_change_usec / 1000000,
                               i.record.last_change_usec % 1000000);
    family("kanotify_delivery_failures_total", "counter", "Deliveries that failed after their retries, per sink.");
    for (const auto& [sink, count] : snapshot.failures)
        out += fmt::format("kanotify_delivery_failures_total{{sink=\"{}\"}} {}\n", sink, count);
    family("kanotify_pending_deliveries", "gauge", "Instances whose latest state a sink has not acknowledged yet.");
    for (const auto& [sink, count] : snapshot.pending)
        out += fmt::format("kanotify_pending_deliveries{{sink=\"{}\"}} {}\n", sink, count);
    family("kanotify_hooks_total", "counter", "User hooks run (ok: exit 0), failed, timed out or superseded.");
    for (const auto& [result, count] : snapshot.hooks)
        out += fmt::format("kanotify_hooks_total{{result=\"{}\"}} {}\n", result, count);
    family("kanotify_unit_jobs_total", "counter", "systemd start and stop jobs of configured units, done or failed.");
    for (const auto& [result, count] : snapshot.unit_jobs)
        out += fmt::format("kanotify_unit_jobs_total{{result=\"{}\"}} {}\n", result, count);
    family("kanotify_announcement_packets_total", "counter",
           "Announcement packets (gratuitous ARP, unsolicited NA) sent, or that failed to send.");
    for (const auto& [result, count] : snapshot.announcements)
        out += fmt::format("kanotify_announcement_packets_total{{result=\"{}\"}} {}\n", result, count);
    return out;
}

Result<void> write_textfile(const std::string& path, std::string_view text) {
    auto slash = path.rfind('/');
    if (path.empty() || path.front() != '/' || slash == std::string::npos || slash + 1 == path.size())
        return make_error(ErrorKind::config, fmt::format("metrics textfile {} is not an absolute file path",
                                                         quote(path)));
    auto dir_path = slash == 0 ? std::string("/") : path.substr(0, slash);
    auto file = path.substr(slash + 1);
    // node_exporter's directory usually belongs to its own user: the whole
    // write (open, create, rename, clean-up) is done with CAP_DAC_OVERRIDE.
    EffectiveCapability raise({CAP_DAC_OVERRIDE});
    UniqueFd dir(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir)
        return system_error(fmt::format("cannot open the directory of {}", quote(path)), errno);
    std::uint64_t random = 0;
    (void)!::getrandom(&random, sizeof random, 0);
    // node_exporter ignores files not ending in .prom: the temporary is invisible to it.
    auto temp = fmt::format(".{}.tmp-{:016x}", file, random);
    UniqueFd fd(::openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd)
        return system_error(fmt::format("cannot create a temporary file beside {}", quote(path)), errno);
    // node_exporter runs as its own user: readable whatever our umask.
    if (::fchmod(fd.get(), 0644) != 0 || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir.get(), temp.c_str(), dir.get(), file.c_str()) != 0) {
        int err = errno;
        (void)::unlinkat(dir.get(), temp.c_str(), 0);
        return system_error(fmt::format("cannot write {}", quote(path)), err);
    }
    return {};
}

}  // namespace kanotify
