// SPDX-License-Identifier: GPL-2.0-or-later
#include "kanotify/dispatch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "announce_record.hpp"
#include "json_line.hpp"

#include "announcer.hpp"
#include "delivery.hpp"
#include "hooks.hpp"
#include "systemd_units.hpp"
#include "journal.hpp"
#include "metrics.hpp"
#include "reconcile.hpp"
#include "seams.hpp"
#include "state_store.hpp"

namespace kanotify {

namespace {

// A batch holds this many instance locks (and staged files) at once at most,
// so a storm of thousands of instances cannot exhaust descriptors.
constexpr std::size_t max_locks_per_commit = 256;
// Beyond this many files one syncfs() is cheaper than an fdatasync() each.
constexpr std::size_t per_file_sync_limit = 4;

using Key = std::pair<Kind, std::string>;

struct InstanceWork {
    InstanceLock lock;
    InstanceRecord recorded;
    std::uint64_t recorded_sequence = 0;
    std::uint64_t new_sequence = 0;
    std::uint64_t handled = 0;           // applied or recorded events in this batch
    std::int64_t last_change_usec = 0;
    std::int64_t last_change_boottime_usec = 0;  // on this boot (boot_id())
    std::optional<State> on_disk;
    std::optional<State> current;
    std::vector<std::size_t> events;  // indexes into the batch, in order
    std::optional<StagedState> staged;
    std::string failure;
};

nlohmann::ordered_json base_entry(std::string_view type, std::int64_t time_usec) {
    nlohmann::ordered_json entry;
    entry["type"] = type;
    entry["time_usec"] = time_usec;
    entry["pid"] = ::getpid();
    return entry;
}

}  // namespace

std::string rejected_entry(Source source, std::string_view input, const Error& error, std::int64_t time_usec) {
    auto entry = base_entry("rejected", time_usec);
    entry["source"] = to_string(source);
    entry["input"] = quote(input);
    entry["reason"] = error.message;
    return json_line(entry);
}

std::string checker_entry(std::string_view line, std::int64_t time_usec) {
    auto entry = base_entry("checker", time_usec);
    entry["line"] = quote(line);
    return json_line(entry);
}

std::string_view to_string(Status status) noexcept {
    switch (status) {
    case Status::applied:
        return "applied";
    case Status::recorded:
        return "recorded";
    case Status::stale:
        return "stale";
    case Status::failed:
        return "failed";
    }
    return "failed";
}

std::string journal_line(const Event& event, const Outcome& outcome) {
    auto entry = base_entry("transition", event.time_usec);
    entry["kind"] = to_string(event.kind);
    entry["name"] = event.name;
    entry["state"] = to_string(event.state);
    entry["previous"] = outcome.previous ? nlohmann::ordered_json(to_string(*outcome.previous)) : nullptr;
    entry["priority"] = event.priority ? nlohmann::ordered_json(*event.priority) : nullptr;
    entry["sequence"] = event.sequence;
    entry["source"] = to_string(event.source);
    entry["outcome"] = to_string(outcome.status);
    nlohmann::ordered_json actions;
    actions["state_file"] = outcome.status == Status::failed ? "failed"
                            : outcome.written                ? "written"
                            : outcome.status == Status::applied ? "unchanged"
                                                                : "skipped";
    entry["actions"] = actions;
    if (!outcome.reason.empty())
        entry["reason"] = outcome.reason;
    if (!outcome.note.empty())
        entry["note"] = outcome.note;
    return json_line(entry);
}

namespace {

// An instance's announcement under way: the event that asked for it.
struct Announcement {
    std::size_t event = 0;
    AnnounceSession session;
};

std::string announce_line(const Event& event, const InstanceSettings& settings, const AnnounceSession& session,
                          const std::string& note) {
    auto entry = base_entry("announce", realtime_usec());
    entry["kind"] = to_string(event.kind);
    entry["name"] = event.name;
    entry["state"] = to_string(event.state);
    entry["sequence"] = event.sequence;
    entry["event_time_usec"] = event.time_usec;
    add_announce_outcome(entry, settings.netns, session, note);
    return json_line(entry);
}

}  // namespace

struct Dispatcher::Impl {
    Config config;
    StateStore store;
    Journal journal;
    AddressLister addresses;
    Deliveries deliveries;
    SystemdUnits units;

    Impl(Config c, StateStore s, AddressLister a)
        : config(std::move(c)), store(std::move(s)), journal(store, config.journal), addresses(std::move(a)),
          deliveries(config, store) {
        if (!addresses)
            addresses = list_addresses;
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    [[nodiscard]] std::optional<Announcement> early_announcement(std::span<const Event> events,
                                                                 const InstanceWork& work,
                                                                 PacketSockets& sockets) const;
    void reconcile_all(std::span<const Event> events, const InstanceWork& work, const Announcement* early,
                       std::vector<Outcome>& outcomes) const;
    void plan(std::span<const Event> events, InstanceWork& work, std::vector<Outcome>& outcomes) const;
    void commit_chunk(std::map<Key, InstanceWork>& chunk) const;
    [[nodiscard]] bool hooks_configured() const;
    [[nodiscard]] bool units_configured() const;
    void drive_units(std::span<const Event> events, const std::vector<std::size_t>& indexes,
                     std::vector<Outcome>& outcomes, std::optional<Error>& journal_error);
    void start_announcement(std::span<const Event> events, const InstanceWork& work,
                            const std::vector<Outcome>& outcomes, PacketSockets& sockets,
                            std::optional<Announcement> early, std::vector<Announcement>& out) const;
    void run_hooks(std::span<const Event> events, const std::vector<std::size_t>& indexes,
                   const std::vector<Outcome>& outcomes, std::optional<Error>& journal_error);
};

bool Dispatcher::Impl::hooks_configured() const {
    auto any = [](const InstanceSettings& s) {
        for (const auto& [state, hooks] : s.hooks.by_state)
            if (!hooks.empty())
                return true;
        return false;
    };
    if (any(config.defaults))
        return true;
    for (const auto& [name, settings] : config.instances)
        if (any(settings))
            return true;
    return false;
}

bool Dispatcher::Impl::units_configured() const {
    auto any = [](const InstanceSettings& s) { return s.target || !s.units.empty(); };
    if (any(config.defaults))
        return true;
    return std::any_of(config.instances.begin(), config.instances.end(),
                       [&](const auto& item) { return any(item.second); });
}

// Units follow the state, which is level-triggered: only the last state an
// instance reached in this batch drives them (a MASTER that a BACKUP of the
// same batch already replaced starts nothing). Under the instance locks, so
// two invocations never drive one instance's units at the same time.
void Dispatcher::Impl::drive_units(std::span<const Event> events, const std::vector<std::size_t>& indexes,
                                   std::vector<Outcome>& outcomes, std::optional<Error>& journal_error) {
    std::map<Key, std::size_t> last;
    for (auto index : indexes)
        if (outcomes[index].status == Status::applied && unit_action_for(events[index].state))
            last[{events[index].kind, events[index].name}] = index;
    std::vector<std::size_t> ordered;
    for (const auto& [key, index] : last)
        ordered.push_back(index);
    std::sort(ordered.begin(), ordered.end());
    for (auto index : ordered) {
        const auto& event = events[index];
        const auto& settings = config.for_instance(event.name);
        auto units_of = settings.units;
        if (settings.target)
            units_of.push_back(master_target_for(event.name));
        if (units_of.empty())
            continue;
        std::vector<std::string> lines;
        for (const auto& job : units.apply(settings.systemd, units_of, *unit_action_for(event.state))) {
            (void)increment_counter(store, fmt::format("units:{}", job.ok() ? "done" : "failed"));
            if (!job.ok())
                outcomes[index].unit_failures.push_back(fmt::format("{} {}: {}{}{}", to_string(job.action), job.unit,
                                                                    job.result, job.detail.empty() ? "" : " (",
                                                                    job.detail.empty() ? "" : job.detail + ")"));
            lines.push_back(unit_line(event, job));
        }
        if (auto ok = journal.append(lines); !ok && !journal_error)
            journal_error = ok.error();
    }
}

// MASTER (and MASTER_RX_LOWER_PRI: a split brain ended) is announced on
// the wire when the instance has a [garp] table; once per instance and
// batch, only when the instance's last word in the batch is one of those.
// The packets due at once leave here, before the state is made durable:
// moving the traffic is what the transition is for.
void Dispatcher::Impl::start_announcement(std::span<const Event> events, const InstanceWork& work,
                                          const std::vector<Outcome>& outcomes, PacketSockets& sockets,
                                          std::optional<Announcement> early, std::vector<Announcement>& out) const {
    std::optional<std::size_t> last;
    for (auto index : work.events)
        if (outcomes[index].status == Status::applied || outcomes[index].status == Status::recorded)
            last = index;
    if (!last)
        return;
    const auto& event = events[*last];
    const auto& settings = config.for_instance(event.name);
    if (event.kind != Kind::instance || !announces(event.state, settings))
        return;
    if (!early || early->event != *last)
        early = Announcement{*last, AnnounceSession::prepare(settings.netns, settings.interface, settings.addresses,
                                                             settings.garp, AnnounceClock::now(), sockets)};
    early->session.send_due();
    out.push_back(std::move(*early));
}

// An argv MASTER that is both reconciled and announced: the announcer's
// reading of the interface (libnl, inside the namespace, which it does
// anyway) answers the reconciliation too, so the namespace is visited and
// the addresses read once on the way to the first frame. Prepared, not
// sent: nothing leaves until the transition is known not to be stale.
std::optional<Announcement> Dispatcher::Impl::early_announcement(std::span<const Event> events,
                                                                 const InstanceWork& work,
                                                                 PacketSockets& sockets) const {
    if (work.events.empty())
        return std::nullopt;
    auto index = work.events.back();
    const auto& event = events[index];
    const auto& settings = config.for_instance(event.name);
    if (event.kind != Kind::instance || !announces(event.state, settings) || !needs_reconciliation(event, settings) ||
        settings.interface.empty())
        return std::nullopt;
    auto session = AnnounceSession::prepare(settings.netns, settings.interface, settings.addresses, settings.garp,
                                            AnnounceClock::now(), sockets);
    if (!session.facts())
        return std::nullopt;  // reconciliation reads the kernel itself, and says what it found
    return Announcement{index, std::move(session)};
}

// One instance's hooks never overlap and run in transition order: this
// runs under the chunk's instance locks, one hook after another. Each
// hook's line is journalled as soon as it ends.
void Dispatcher::Impl::run_hooks(std::span<const Event> events, const std::vector<std::size_t>& indexes,
                                 const std::vector<Outcome>& outcomes, std::optional<Error>& journal_error) {
    auto handled = [&](std::size_t i) {
        return outcomes[i].status == Status::applied || outcomes[i].status == Status::recorded;
    };
    for (std::size_t at = 0; at < indexes.size(); ++at) {
        auto index = indexes[at];
        if (!handled(index))
            continue;  // never for a stale or failed transition
        const auto& event = events[index];
        const auto& settings = config.for_instance(event.name).hooks;
        auto hooks = hooks_for(settings, event.state);
        if (hooks.empty())
            continue;
        // Superseded: a later state of this instance is already here. Its
        // hooks run instead; events about a state (MASTER_RX_LOWER_PRI...)
        // supersede nothing.
        bool superseded = false;
        if (settings.coalesce)
            for (std::size_t later = at + 1; later < indexes.size() && !superseded; ++later) {
                const auto& next = events[indexes[later]];
                superseded = handled(indexes[later]) && next.kind == event.kind && next.name == event.name &&
                             is_recorded_state(next.state);
            }
        auto environment = hook_environment(event, outcomes[index].previous);
        for (const auto& hook : hooks) {
            HookRun run;
            if (superseded) {
                run.argv = hook;
                run.result = HookResult::superseded;
            } else {
                run = run_hook(hook_arguments(hook, event, settings.keepalived_args), environment,
                               std::chrono::milliseconds(settings.timeout_ms), settings.user);
            }
            auto result = run.result == HookResult::superseded                            ? "superseded"
                          : run.result == HookResult::timed_out                           ? "timed-out"
                          : run.result == HookResult::exited && run.exit_status == 0 ? "ok"
                                                                                      : "failed";
            (void)increment_counter(store, fmt::format("hooks:{}", result));
            if (auto ok = journal.append({hook_line(event, run)}); !ok && !journal_error)
                journal_error = ok.error();
        }
    }
}

// Under the instance lock, so the kernel's view cannot change between our
// look and our write because of another invocation for this instance.
void Dispatcher::Impl::reconcile_all(std::span<const Event> events, const InstanceWork& work,
                                     const Announcement* early, std::vector<Outcome>& outcomes) const {
    for (auto index : work.events) {
        const auto& event = events[index];
        const auto& settings = config.for_instance(event.name);
        if (!needs_reconciliation(event, settings))
            continue;
        // The interface as the announcer just read it (early_announcement).
        AddressLister read_already = [&](const std::string&, const std::string&) {
            std::vector<KernelAddress> out;
            const auto& facts = *early->session.facts();
            for (const auto& a : facts.addresses)
                out.push_back(KernelAddress{facts.ifindex, facts.name, a.address, a.flags});
            return Result<std::vector<KernelAddress>>(std::move(out));
        };
        bool read = early && early->event == index;
        auto verdict = reconcile(event, settings, read ? read_already : addresses);
        outcomes[index].note = verdict.note;
        if (verdict.contradiction) {
            outcomes[index].status = Status::stale;
            outcomes[index].reason = *verdict.contradiction;
        }
    }
}

namespace {

// A STOP without a sequence (argv) may be recorded late: it continues
// outside keepalived's process group, past keepalived's exit, and a
// restarted keepalived may have reported the instance meanwhile. What was
// received after the STOP, on this boot's never-stepped clock, overtakes
// it. Other argv states are not ordered this way: keepalived forks them
// concurrently, so the order they are received in is not keepalived's.
std::optional<std::string> overtaking_change(const Event& event, const InstanceWork& work) {
    if (event.sequence != 0 || event.state != State::stop || event.boottime_usec <= 0)
        return std::nullopt;
    auto boot = boot_id();
    std::int64_t latest = work.last_change_boottime_usec;
    if (boot != 0 && work.recorded.boot == boot)
        latest = std::max(latest, work.recorded.last_change_boottime_usec);
    if (latest <= event.boottime_usec)
        return std::nullopt;
    return fmt::format("a transition received {} ms after this STOP was already recorded (keepalived restarted)",
                       (latest - event.boottime_usec) / 1000);
}

}  // namespace

void Dispatcher::Impl::plan(std::span<const Event> events, InstanceWork& work, std::vector<Outcome>& outcomes) const {
    work.current = work.on_disk;
    work.new_sequence = work.recorded_sequence;
    for (auto index : work.events) {
        const auto& event = events[index];
        auto& outcome = outcomes[index];
        outcome.previous = work.current;
        if (outcome.status == Status::stale)  // contradicted by the interface
            continue;
        // Sequence 0 means the front-end cannot know the order (plain argv):
        // applied as it comes. Otherwise an older one lost a race.
        if (event.sequence != 0 && event.sequence < work.new_sequence) {
            outcome.status = Status::stale;
            outcome.reason = fmt::format("sequence {} is older than the applied {}", event.sequence, work.new_sequence);
            continue;
        }
        if (auto later = overtaking_change(event, work)) {
            outcome.status = Status::stale;
            outcome.reason = *later;
            continue;
        }
        work.new_sequence = std::max(work.new_sequence, event.sequence);
        ++work.handled;
        work.last_change_usec = std::max(work.last_change_usec, event.time_usec);
        work.last_change_boottime_usec = std::max(work.last_change_boottime_usec, event.boottime_usec);
        if (!is_recorded_state(event.state)) {
            outcome.status = Status::recorded;
            continue;
        }
        outcome.status = Status::applied;
        work.current = event.state;
    }
}

void Dispatcher::Impl::commit_chunk(std::map<Key, InstanceWork>& chunk) const {
    std::size_t staged_count = 0;
    for (auto& [key, work] : chunk) {
        if (!work.failure.empty() || work.current == work.on_disk || !work.current)
            continue;
        auto staged = store.stage(key.first, key.second, *work.current);
        if (!staged) {
            work.failure = staged.error().describe();
            continue;
        }
        work.staged = std::move(*staged);
        ++staged_count;
    }
    bool per_file = staged_count <= per_file_sync_limit;
    for (auto& [key, work] : chunk) {
        if (!work.failure.empty() || (work.new_sequence == work.recorded_sequence && work.handled == 0))
            continue;
        // Not synced on its own: the record only has to outlive the
        // processes that could still deliver older events, and a crash of
        // the machine takes those with it.
        auto record = work.recorded;
        record.sequence = work.new_sequence;
        record.transitions += work.handled;
        record.last_change_usec = std::max(record.last_change_usec, work.last_change_usec);
        if (record.boot != boot_id())
            record.last_change_boottime_usec = 0;  // a stamp of an earlier boot says nothing now
        record.last_change_boottime_usec = std::max(record.last_change_boottime_usec, work.last_change_boottime_usec);
        record.boot = boot_id();
        if (auto ok = work.lock.set_record(record); !ok)
            work.failure = ok.error().describe();
    }
    if (per_file) {
        for (auto& [key, work] : chunk)
            if (work.staged && work.failure.empty() && ::fdatasync(work.staged->fd.get()) != 0)
                work.failure = fmt::format("cannot sync {}: {}", quote(store.file_name(key.first, key.second)),
                                           std::strerror(errno));
        if (staged_count > 0)
            crash_point("state:synced");
    } else if (staged_count > 0) {
        if (auto ok = store.sync_filesystem(); !ok)
            for (auto& [key, work] : chunk)
                if (work.staged)
                    work.failure = ok.error().describe();
        crash_point("state:synced");
    }
    bool renamed_instance = false, renamed_group = false;
    for (auto& [key, work] : chunk) {
        if (!work.staged)
            continue;
        if (!work.failure.empty()) {
            store.discard(*work.staged);
            continue;
        }
        if (auto ok = store.commit(*work.staged); !ok)
            work.failure = ok.error().describe();
        else
            (key.first == Kind::group ? renamed_group : renamed_instance) = true;
    }
    if (renamed_instance || renamed_group)
        if (auto ok = store.sync_directories(renamed_instance, renamed_group); !ok)
            for (auto& [key, work] : chunk)
                if (work.staged && work.failure.empty())
                    work.failure = ok.error().describe();
}

Dispatcher::Dispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dispatcher::Dispatcher(Dispatcher&&) noexcept = default;
Dispatcher& Dispatcher::operator=(Dispatcher&&) noexcept = default;
Dispatcher::~Dispatcher() = default;

Result<Dispatcher> Dispatcher::open(const Config& config) {
    return open(config, Seams{});
}

Result<Dispatcher> Dispatcher::open(const Config& config, const Seams& seams) {
    auto store = StateStore::open(config.state_dir, seams.store);
    if (!store)
        return tl::unexpected(store.error());
    return Dispatcher(std::make_unique<Impl>(config, std::move(*store), seams.addresses));
}

const std::string& Dispatcher::state_dir() const {
    return impl_->store.path();
}

Result<std::vector<Outcome>> Dispatcher::handle(std::span<const Event> events, std::vector<std::string> notes) {
    std::vector<Outcome> outcomes(events.size());
    // Group by instance, keeping each instance's events in arrival order.
    std::map<Key, std::vector<std::size_t>> by_instance;
    for (std::size_t i = 0; i < events.size(); ++i)
        by_instance[{events[i].kind, events[i].name}].push_back(i);

    // Locks are taken in key order (the map's), so two batches or a batch
    // and an argv invocation can never deadlock.
    std::optional<Error> journal_error;
    impl_->deliveries.new_batch();
    bool delivering = impl_->deliveries.configured();
    bool hooks = impl_->hooks_configured();
    bool units = impl_->units_configured();
    if (delivering) {
        // What earlier transitions still owe goes first; entries of instances
        // in this batch are superseded by what this batch delivers.
        std::set<Key> superseded;
        for (const auto& [key, indexes] : by_instance)
            superseded.insert(key);
        for (const auto& flushed : impl_->deliveries.flush(superseded, true))
            notes.push_back(delivery_line(flushed));
    }
    auto it = by_instance.begin();
    while (it != by_instance.end()) {
        std::map<Key, InstanceWork> chunk;
        // Declared first, ended last: the chunk's packet sockets outlive its
        // sessions and are closed off this thread (packet_sockets.hpp).
        PacketSockets packet_sockets;
        std::vector<Announcement> announcements;
        for (; it != by_instance.end() && chunk.size() < max_locks_per_commit; ++it) {
            InstanceWork work;
            work.events = it->second;
            auto lock = impl_->store.lock(it->first.first, it->first.second);
            if (!lock) {
                work.failure = lock.error().describe();
            } else {
                work.lock = std::move(*lock);
                work.recorded = work.lock.record();
                work.recorded_sequence = work.recorded.sequence;
                auto on_disk = impl_->store.read(it->first.first, it->first.second);
                if (on_disk)
                    work.on_disk = *on_disk;
                else
                    work.failure = on_disk.error().describe();
            }
            if (work.failure.empty()) {
                auto early = impl_->early_announcement(events, work, packet_sockets);
                impl_->reconcile_all(events, work, early ? &*early : nullptr, outcomes);
                impl_->plan(events, work, outcomes);
                impl_->start_announcement(events, work, outcomes, packet_sockets, std::move(early), announcements);
            }
            chunk.emplace(it->first, std::move(work));
        }
        // The repeats go out on their schedule while the state is recorded,
        // journalled and delivered; the chunk waits for them at its end.
        std::thread repeater;
        std::string repeater_note;
        bool repeats = std::any_of(announcements.begin(), announcements.end(),
                                   [](const Announcement& a) { return a.session.next_due().has_value(); });
        if (repeats) {
            try {
                repeater = std::thread([&announcements] {
                    std::vector<AnnounceSession*> sessions;
                    for (auto& a : announcements)
                        sessions.push_back(&a.session);
                    finish_all(sessions);
                });
            } catch (const std::system_error& e) {
                // No thread to spare: the repeats go out below, after the
                // state, late but not lost (the journal line says so).
                repeater_note = fmt::format("repeats sent after the state: cannot start a thread: {}", e.what());
            }
        }
        if (delivering) {
            // Owed before the state is renamed into place: a crash after
            // the rename must leave the delivery owed, never forgotten.
            for (auto& [key, work] : chunk)
                for (auto index = work.events.rbegin(); index != work.events.rend(); ++index)
                    if (work.failure.empty() &&
                        (outcomes[*index].status == Status::applied || outcomes[*index].status == Status::recorded)) {
                        impl_->deliveries.owe(events[*index], outcomes[*index]);
                        break;
                    }
        }
        impl_->commit_chunk(chunk);
        for (auto& [key, work] : chunk) {
            for (auto index : work.events) {
                auto& outcome = outcomes[index];
                if (!work.failure.empty() && outcome.status != Status::stale) {
                    outcome.status = Status::failed;
                    outcome.reason = work.failure;
                    outcome.written = false;
                }
            }
            // The file holds the instance's final state of this batch; mark
            // the event that put it there.
            if (work.failure.empty() && work.current != work.on_disk)
                for (auto index = work.events.rbegin(); index != work.events.rend(); ++index)
                    if (outcomes[*index].status == Status::applied) {
                        outcomes[*index].written = true;
                        break;
                    }
        }
        // The journal is appended while the chunk's locks are held, so the
        // journal order of one instance is the order its state was applied.
        std::vector<std::size_t> indexes;
        for (auto& [key, work] : chunk)
            indexes.insert(indexes.end(), work.events.begin(), work.events.end());
        std::sort(indexes.begin(), indexes.end());
        std::vector<std::string> lines = std::move(notes);
        notes.clear();
        lines.reserve(lines.size() + indexes.size());
        for (auto index : indexes)
            lines.push_back(journal_line(events[index], outcomes[index]));
        if (auto ok = impl_->journal.append(lines); !ok && !journal_error)
            journal_error = ok.error();
        // Deliveries come after the state and its journal line are durable,
        // still under the locks: one instance's deliveries stay in order.
        if (delivering) {
            std::vector<std::string> delivered;
            for (auto index : indexes) {
                auto& outcome = outcomes[index];
                if (outcome.status != Status::applied && outcome.status != Status::recorded)
                    continue;
                for (const auto& result : impl_->deliveries.deliver(events[index], outcome)) {
                    outcome.undelivered = outcome.undelivered || result.result == DeliveryResult::pending;
                    // Nothing attempted, nothing to keep: a signal with no bus to send it on.
                    if (result.result == DeliveryResult::skipped && result.attempts == 0 &&
                        result.detail == no_bus_detail)
                        continue;
                    delivered.push_back(delivery_line(result));
                }
            }
            // Not synced on its own: the pending entries these lines report
            // on are kept in the page cache only (pending.cpp), and the next
            // synced append carries the lines to disk.
            if (auto ok = impl_->journal.append(delivered, Durability::with_next_sync); !ok && !journal_error)
                journal_error = ok.error();
        }
        // Units before hooks: a hook run on MASTER finds the services up.
        if (units)
            impl_->drive_units(events, indexes, outcomes, journal_error);
        if (hooks)
            impl_->run_hooks(events, indexes, outcomes, journal_error);
        if (repeater.joinable())
            repeater.join();
        if (!announcements.empty()) {
            for (auto& a : announcements)
                a.session.finish();  // settles a session with nothing left to send
            std::vector<std::string> announced;
            for (const auto& a : announcements) {
                const auto& event = events[a.event];
                announced.push_back(
                    announce_line(event, impl_->config.for_instance(event.name), a.session, repeater_note));
                if (auto n = a.session.packets_sent())
                    (void)add_to_counter(impl_->store, "announce:sent", n);
                if (auto n = a.session.packet_errors())
                    (void)add_to_counter(impl_->store, "announce:failed", n);
            }
            if (auto ok = impl_->journal.append(announced); !ok && !journal_error)
                journal_error = ok.error();
        }
        // chunk, and with it every lock, is released here.
    }
    if (!notes.empty())  // a batch of notes only
        if (auto ok = impl_->journal.append(notes); !ok && !journal_error)
            journal_error = ok.error();
    if (journal_error)
        return tl::unexpected(*journal_error);
    return outcomes;
}

Result<void> Dispatcher::journal(std::vector<std::string> notes) {
    return impl_->journal.append(notes);
}

Result<FlushReport> Dispatcher::flush() {
    impl_->deliveries.new_batch();
    FlushReport report;
    std::vector<std::string> lines;
    for (const auto& result : impl_->deliveries.flush({}, false, &report.remaining)) {
        if (result.result == DeliveryResult::delivered)
            ++report.delivered;
        lines.push_back(delivery_line(result));
    }
    if (auto ok = impl_->journal.append(lines); !ok)
        return tl::unexpected(ok.error());
    return report;
}

Result<void> Dispatcher::write_metrics() const {
    const auto& path = impl_->config.metrics_textfile;
    if (path.empty())
        return {};
    // One writer at a time, so an older snapshot never replaces a newer one.
    UniqueFd lock(::openat(impl_->store.locks_fd(), "metrics", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX) != 0)
        return system_error("cannot lock the metrics", errno);
    auto snapshot = collect_metrics(impl_->store, pending(), Deliveries::sink_names());
    if (!snapshot)
        return tl::unexpected(snapshot.error());
    return write_textfile(path, render_metrics(*snapshot));
}

std::map<std::string, std::vector<std::string>> Dispatcher::pending() const {
    return impl_->deliveries.pending_summary();
}

Result<std::size_t> Dispatcher::clean_up() {
    auto removed = impl_->store.remove_stale_temporaries();
    if (!removed)
        return removed;
    for (const auto& sink : Deliveries::sink_names()) {
        auto pending = PendingStore::open(impl_->store, sink);
        if (!pending)
            return tl::unexpected(pending.error());
        auto stale = pending->remove_stale_temporaries();
        if (!stale)
            return tl::unexpected(stale.error());
        *removed += *stale;
    }
    return removed;
}

Result<std::uint64_t> Dispatcher::highest_sequence() const {
    std::uint64_t highest = 0;
    int fd = ::openat(impl_->store.locks_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return system_error("cannot list the lock directory", errno);
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
        ::close(fd);
        return system_error("cannot list the lock directory", errno);
    }
    while (auto* entry = ::readdir(dir)) {
        std::string_view file = entry->d_name;
        if (file.front() == '.' || file == "journal")
            continue;
        UniqueFd lock_fd(::openat(impl_->store.locks_fd(), entry->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!lock_fd)
            continue;
        InstanceLock reader(std::move(lock_fd));  // reading only, not locked
        highest = std::max(highest, reader.record().sequence);
    }
    ::closedir(dir);
    return highest;
}

}  // namespace kanotify
