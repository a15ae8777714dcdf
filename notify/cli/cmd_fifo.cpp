// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify fifo FIFO`: keepalived's vrrp_notify_fifo_script.
//
// keepalived writes the FIFO non-blocking and drops a line when the pipe is
// full, and never restarts a FIFO script that exited. So one thread only
// drains the FIFO into memory, and another dispatches what was read in
// batches (one durable commit per batch); a slow action can delay the
// dispatch but never the reading. Nothing but SIGTERM/SIGINT ends it, and
// even then it reads on until keepalived closes the FIFO or the grace
// period ends: keepalived writes its final STOP lines after signalling us,
// and SIGKILLs us a second later at the earliest (fifo_end.hpp has the
// details), so the default grace outlasts that: every line written before
// the kill is read.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "announce_refresh.hpp"
#include "common.hpp"
#include "dbus_server.hpp"
#include "fifo_end.hpp"
#include "state_store.hpp"
#include "kanotify/dispatch.hpp"
#include "kanotify/exit_code.hpp"
#include "kanotify/parse.hpp"
#include "line_queue.hpp"
#include "line_splitter.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "unique_fd.hpp"

namespace kanotify::cli {

namespace {

std::int64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct ReaderStats {
    std::uint64_t lines = 0;
    std::uint64_t overlong = 0;
};

// After SIGTERM/SIGINT the write end we held is dropped (FifoEnd::leave)
// and reading goes on until no writer is left (keepalived closed its end:
// a reload, or keepalived gone) or until the deadline, grace_ms after the
// signal (a shutdown: keepalived writes its STOP lines after the signal and
// closes its end only after its SIGKILL timer). A reader that opened the
// FIFO after the writer gets no POLLHUP when that writer closes, so once
// leaving, read() is tried at least every 10 ms and its 0 is the EOF.
void read_fifo(FifoEnd& fifo, int signal_fd, std::int64_t grace_ms, std::uint64_t next_sequence, LineQueue& queue,
               ReaderStats& stats) {
    constexpr std::int64_t eof_check_ms = 10;
    LineSplitter splitter(max_fifo_line);
    std::optional<std::int64_t> deadline;
    std::vector<char> buffer(65536);
    const char* ended = "";
    while (true) {
        int timeout = -1;
        if (deadline) {
            auto left = *deadline - monotonic_ms();
            if (left <= 0) {
                ended = "the deadline after the signal passed with a writer still holding the FIFO";
                break;
            }
            timeout = static_cast<int>(std::min(left, eof_check_ms));
        }
        pollfd fds[2] = {{fifo.fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
        int ready = ::poll(fds, 2, timeout);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            logger().log(Level::error, fmt::format("poll on the FIFO failed: {}", std::strerror(errno)));
            break;
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) == sizeof info) {
                if (info.ssi_signo == SIGHUP) {
                    logger().log(Level::info, "SIGHUP ignored: keepalived restarts its FIFO script on reload");
                } else if (!deadline) {
                    logger().log(Level::info, fmt::format("signal {} received: reading until keepalived closes the "
                                                          "FIFO, at most {} ms more, then exiting",
                                                          info.ssi_signo, grace_ms));
                    deadline = monotonic_ms() + grace_ms;
                    if (!fifo.leave()) {
                        ended = "a new reader took the FIFO over";
                        break;
                    }
                }
            }
        }
        if (!fifo.leaving() && !(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        // Drain everything available now: the pipe must not stay full.
        bool eof = false;
        while (true) {
            auto n = ::read(fifo.fd(), buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                eof = true;  // only once leaving: until then we hold a write end ourselves
            if (n <= 0)
                break;  // EAGAIN: drained
            auto now = realtime_usec();
            std::vector<ReceivedLine> lines;
            splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)),
                          [&](std::string_view line, bool overlong) {
                              lines.push_back(ReceivedLine{std::string(line), next_sequence++, now, overlong});
                              ++stats.lines;
                              stats.overlong += overlong ? 1 : 0;
                          });
            queue.push(std::move(lines));
        }
        if (eof) {
            ended = "every writer has closed the FIFO";
            break;
        }
    }
    fifo.release();
    if (deadline)
        logger().log(Level::info, fmt::format("stopped reading after {} ms: {}",
                                              monotonic_ms() - (*deadline - grace_ms), ended));
    if (!splitter.pending().empty())
        logger().log(Level::warning, fmt::format("exiting with an unterminated line discarded: {}",
                                                 quote(splitter.pending())));
    queue.close();
}

// Test-only: make every transition's actions slow, to show that reading
// never waits for them. Ignored in a set-uid/AT_SECURE context.
std::chrono::microseconds test_action_delay() {
    const char* value = ::secure_getenv("KANOTIFY_TEST_ACTION_DELAY_US");
    if (!value)
        return std::chrono::microseconds(0);
    return std::chrono::microseconds(std::strtoll(value, nullptr, 10));
}

// One batch, one durable commit; a cap keeps a huge burst from being held
// twice (queue and batch) in memory at once.
constexpr std::size_t max_batch_lines = 4096;

// On a keepalived reload the old reader may still be dispatching its backlog
// when the new one starts: the new one reads at once but dispatches only
// once the old one is done, so the store sees the old lines first. Bounded:
// keepalived SIGKILLs the old reader about a second after its SIGTERM.
UniqueFd wait_for_previous_reader(const std::string& state_dir) {
    UniqueFd lock(::open((state_dir + "/.locks/fifo-reader").c_str(),
                         O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!lock)
        return lock;
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) == 0)
        return lock;
    logger().log(Level::info, "another FIFO reader is finishing (a keepalived reload): waiting for it");
    for (int waited = 0; waited < 3000; waited += 10) {
        if (::flock(lock.get(), LOCK_EX | LOCK_NB) == 0)
            return lock;
        ::usleep(10000);
    }
    logger().log(Level::warning, "the other FIFO reader is still there after 3 s: dispatching alongside it "
                                 "(each instance stays consistent under its own lock)");
    return UniqueFd();
}

// [garp] refresh_s: the instances recorded MASTER when the reader starts
// (a keepalived reload restarts the reader, not the instances) are
// refreshed like those that become MASTER later.
std::unique_ptr<AnnounceRefresher> start_refresher(const Config& config) {
    auto any = [](const InstanceSettings& s) { return s.garp.enabled && s.garp.refresh_s > 0; };
    bool configured = any(config.defaults);
    for (const auto& [name, settings] : config.instances)
        configured = configured || any(settings);
    if (!configured)
        return nullptr;
    auto store = StateStore::open(config.state_dir);
    if (!store) {
        logger().log(Level::error, fmt::format("[garp] refresh_s: cannot open the state directory: {}",
                                               store.error().describe()),
                     {}, message_id::failure);
        return nullptr;
    }
    auto shared = std::make_shared<StateStore>(std::move(*store));
    auto refresher = std::make_unique<AnnounceRefresher>(config, [shared](const std::string& name) {
        auto state = shared->read(Kind::instance, name);
        return state ? *state : std::nullopt;
    });
    if (auto states = shared->list()) {
        auto now = AnnounceClock::now();
        for (const auto& s : *states)
            if (s.kind == Kind::instance && s.state)
                refresher->recorded(s.name, *s.state, now);
    }
    return refresher;
}

// Refreshes that ended: journalled, counted, and (between batches) the
// metrics rewritten; after a batch the batch's own write covers them.
void journal_refreshes(Dispatcher& dispatcher, AnnounceRefresher& refresher, std::vector<std::string> lines,
                       bool write_metrics) {
    if (lines.empty())
        return;
    if (auto ok = dispatcher.journal(std::move(lines)); !ok)
        logger().log(Level::error, fmt::format("journal: {}", ok.error().describe()), {}, message_id::failure);
    auto counts = refresher.take_counts();
    if (auto store = StateStore::open(dispatcher.state_dir())) {
        if (counts.sent)
            (void)add_to_counter(*store, "announce:sent", counts.sent);
        if (counts.failed)
            (void)add_to_counter(*store, "announce:failed", counts.failed);
    }
    if (!write_metrics)
        return;
    if (auto metrics = dispatcher.write_metrics(); !metrics)
        logger().log(Level::warning, fmt::format("metrics: {}", metrics.error().describe()));
}

void dispatch_loop(Dispatcher& dispatcher, const Config& config, LineQueue& queue, DbusServer* server) {
    auto delay = test_action_delay();
    auto reader_lock = wait_for_previous_reader(config.state_dir);
    auto refresher = start_refresher(config);
    while (true) {
        // The refresh runs here, in the dispatching thread, only when no
        // line is waiting: take_until() hands over queued lines at once,
        // and a refresh starts only once it found none. So a BACKUP line
        // already read is always dispatched (and cancels the refresh)
        // before a refresh could announce for a node that is no longer
        // MASTER, and a line never waits for more than one refresh step,
        // which never sleeps: preparing a session (a setns, one netlink
        // query) and sending the packets due; the repeats are woken for.
        std::vector<ReceivedLine> batch;
        auto wake = refresher ? refresher->next_wake() : std::nullopt;
        if (wake) {
            batch = queue.take_until(max_batch_lines, *wake);
            if (batch.empty()) {
                if (queue.finished())
                    return;
                if (AnnounceClock::now() >= *wake)
                    journal_refreshes(dispatcher, *refresher, refresher->run_due(AnnounceClock::now()), true);
                continue;
            }
        } else {
            batch = queue.take(max_batch_lines);
            if (batch.empty())
                return;
        }
        std::vector<Event> events;
        std::vector<std::string> notes;
        for (auto& line : batch) {
            if (line.overlong) {
                auto error = Error{ErrorKind::invalid, {},
                                   fmt::format("line longer than {} bytes skipped", max_fifo_line)};
                logger().log(Level::warning, fmt::format("FIFO: {}: {}", error.message, quote(line.text)), {},
                             message_id::rejected);
                notes.push_back(rejected_entry(Source::fifo, line.text, error, line.time_usec));
                continue;
            }
            auto parsed = parse_fifo_line(line.text);
            if (!parsed) {
                logger().log(Level::warning, fmt::format("FIFO: malformed line skipped: {}", parsed.error().message),
                             {}, message_id::rejected);
                notes.push_back(rejected_entry(Source::fifo, line.text, parsed.error(), line.time_usec));
                continue;
            }
            if (parsed->kind == FifoLineKind::checker) {
                if (config.fifo.checker_lines)
                    notes.push_back(checker_entry(parsed->checker, line.time_usec));
                continue;
            }
            parsed->event.sequence = line.sequence;
            parsed->event.time_usec = line.time_usec;
            events.push_back(std::move(parsed->event));
        }
        if (delay.count() > 0)
            std::this_thread::sleep_for(delay * static_cast<long>(events.size()));
        auto outcomes = dispatcher.handle(events, std::move(notes));
        if (!outcomes) {
            // The states are recorded; only the journal failed. Keep going:
            // exiting would lose every later transition for good.
            logger().log(Level::error, fmt::format("journal: {}", outcomes.error().describe()), {},
                         message_id::failure);
            continue;
        }
        if (refresher) {
            // After the batch: a MASTER (re)starts the instance's period,
            // anything else recorded cancels it.
            auto now = AnnounceClock::now();
            for (std::size_t i = 0; i < events.size(); ++i)
                if (events[i].kind == Kind::instance && (*outcomes)[i].status == Status::applied)
                    refresher->recorded(events[i].name, events[i].state, now);
            journal_refreshes(dispatcher, *refresher, refresher->take_lines(), false);
        }
        if (auto metrics = dispatcher.write_metrics(); !metrics)
            logger().log(Level::warning, fmt::format("metrics: {}", metrics.error().describe()));
        if (server) {
            std::vector<InstanceProperties> updates;
            for (std::size_t i = 0; i < events.size(); ++i) {
                const auto& event = events[i];
                const auto& outcome = (*outcomes)[i];
                if (outcome.status != Status::applied && outcome.status != Status::recorded)
                    continue;
                auto state = is_recorded_state(event.state) ? std::optional<State>(event.state) : outcome.previous;
                updates.push_back(InstanceProperties{event.kind, event.name,
                                                     state ? std::string(to_string(*state)) : std::string(),
                                                     event.priority.value_or(0),
                                                     static_cast<std::uint64_t>(event.time_usec)});
            }
            server->update(std::move(updates));
        }
        for (std::size_t i = 0; i < events.size(); ++i) {
            const auto& event = events[i];
            const auto& outcome = (*outcomes)[i];
            auto previous = outcome.previous ? std::string(to_string(*outcome.previous)) : std::string("none");
            logger().log(outcome.status == Status::failed ? Level::error : Level::info,
                         fmt::format("{} {}: {} -> {} ({}{}{})", to_string(event.kind), event.name, previous,
                                     to_string(event.state), to_string(outcome.status),
                                     outcome.reason.empty() ? "" : ": ", outcome.reason),
                         {{"KANOTIFY_INSTANCE", event.name},
                          {"KANOTIFY_STATE", std::string(to_string(event.state))},
                          {"KANOTIFY_OUTCOME", std::string(to_string(outcome.status))},
                          {"KANOTIFY_SEQUENCE", std::to_string(event.sequence)}},
                         outcome.status == Status::stale ? message_id::stale : message_id::transition);
            for (const auto& failure : outcome.unit_failures)
                logger().log(Level::error,
                             fmt::format("{} {}: systemd: {}", to_string(event.kind), event.name, failure),
                             {{"KANOTIFY_INSTANCE", event.name}}, message_id::failure);
        }
    }
}

// The optional property service; without it (not configured, or the bus is
// not there) the reader works all the same.
std::unique_ptr<DbusServer> start_server(const Config& config) {
    const auto& dbus = config.defaults.dbus;
    if (dbus.name.empty())
        return nullptr;
    std::vector<InstanceProperties> initial;
    if (auto store = StateStore::open(config.state_dir)) {
        if (auto states = store->list()) {
            for (const auto& s : *states) {
                auto lock = fmt::format("{}:{}", s.kind == Kind::group ? "group" : "instance", s.name);
                UniqueFd fd(::openat(store->locks_fd(), lock.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
                auto record = fd ? InstanceLock(std::move(fd)).record() : InstanceRecord{};
                initial.push_back(InstanceProperties{s.kind, s.name,
                                                     s.state ? std::string(to_string(*s.state)) : std::string(), 0,
                                                     static_cast<std::uint64_t>(record.last_change_usec)});
            }
        }
    }
    auto server = DbusServer::start(dbus.bus, dbus.name, std::move(initial));
    if (!server) {
        logger().log(Level::error, fmt::format("D-Bus properties not served: {}", server.error().describe()), {},
                     message_id::failure);
        return nullptr;
    }
    logger().log(Level::info, fmt::format("serving instance properties as {} on the {} bus", dbus.name, dbus.bus));
    return std::move(*server);
}

}  // namespace

int run_fifo(int argc, char** argv) {
    CLI::App app{"kanotify fifo: read keepalived's notify FIFO (vrrp_notify_fifo_script / notify_fifo_script)",
                 "kanotify fifo"};
    GlobalOptions global;
    add_global_options(app, global);
    std::string fifo_path;
    std::optional<std::int64_t> grace_ms;
    app.add_option("--grace-ms", grace_ms, "after SIGTERM, read at most this long while a writer still holds the FIFO (default 1500)")
        ->check(CLI::Range(0, 1800));
    app.add_option("fifo", fifo_path, "the FIFO keepalived passes as the last argument")->required();
    if (auto code = parse(app, argc, argv))
        return *code;

    auto config = load(global);
    if (!config)
        return report(config.error());
    if (grace_ms)
        config->fifo.grace_ms = *grace_ms;

    // Block the signals before any thread exists so only signalfd sees them.
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&signals, sig);
    if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0)
        return report(system_error("cannot block signals", errno).value());
    UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd)
        return report(system_error("cannot create a signalfd", errno).value());
    ::signal(SIGPIPE, SIG_IGN);

    // Two readers on one FIFO would each get some of the lines, and their
    // order would be lost: a second one refuses, unless the first one is
    // leaving (a reload that reuses the FIFO), which it waits for.
    auto fifo = FifoEnd::claim(fifo_path);
    if (!fifo)
        return report(fifo.error());
    auto dispatcher = Dispatcher::open(*config);
    if (!dispatcher)
        return report(dispatcher.error());
    if (auto removed = dispatcher->clean_up(); removed && *removed > 0)
        logger().log(Level::notice, fmt::format("removed {} temporary files left by an interrupted write", *removed));

    // Sequences continue above anything recorded before, so a reader started
    // after a keepalived reload is never taken for an older one.
    auto highest = dispatcher->highest_sequence();
    std::uint64_t first = static_cast<std::uint64_t>(realtime_usec());
    if (highest && *highest >= first)
        first = *highest + 1;

    logger().log(Level::info, fmt::format("reading FIFO {} (state directory {})", fifo_path, config->state_dir));
    LineQueue queue;
    ReaderStats stats;
    // Before any thread starts: capability sets belong to a thread, and a
    // thread started earlier would keep root's full sets.
    drop_privileges(*config);
    std::thread reader([&] { read_fifo(*fifo, signal_fd.get(), config->fifo.grace_ms, first, queue, stats); });
    auto server = start_server(*config);
    dispatch_loop(*dispatcher, *config, queue, server.get());
    reader.join();
    logger().log(Level::info, fmt::format("FIFO reader exiting after {} lines", stats.lines));
    return exit_ok;
}

}  // namespace kanotify::cli
