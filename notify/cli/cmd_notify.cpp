// SPDX-License-Identifier: GPL-2.0-or-later
// The exec'd notify front-end: keepalived's generic `notify` appends
// TYPE NAME STATE PRIORITY; notify_master & co. use --state and --instance.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <iostream>
#include <new>

#include <fmt/format.h>

#include "common.hpp"
#include "notify_args.hpp"
#include "notify_front.hpp"
#include "kanotify/dispatch.hpp"
#include "kanotify/exit_code.hpp"
#include "kanotify/parse.hpp"
#include "log.hpp"

namespace kanotify::cli {

namespace {

std::string joined(int argc, char** argv) {
    std::string out;
    for (int i = 1; i < argc; ++i) {
        if (i > 1)
            out += ' ';
        out += argv[i];
    }
    return out;
}

void log_outcome(const Event& event, const Outcome& outcome) {
    auto previous = outcome.previous ? std::string(to_string(*outcome.previous)) : std::string("none");
    auto level = outcome.status == Status::failed ? Level::error : Level::info;
    auto message = fmt::format("{} {}: {} -> {} ({}{}{}){}{}", to_string(event.kind), event.name, previous,
                               to_string(event.state), to_string(outcome.status),
                               outcome.reason.empty() ? "" : ": ", outcome.reason,
                               outcome.note.empty() ? "" : "; ", outcome.note);
    logger().log(level, message,
                 {{"KANOTIFY_INSTANCE", event.name},
                  {"KANOTIFY_KIND", std::string(to_string(event.kind))},
                  {"KANOTIFY_STATE", std::string(to_string(event.state))},
                  {"KANOTIFY_PREVIOUS", previous},
                  {"KANOTIFY_OUTCOME", std::string(to_string(outcome.status))},
                  {"KANOTIFY_SOURCE", std::string(to_string(event.source))}},
                 outcome.status == Status::stale ? message_id::stale : message_id::transition);
    for (const auto& failure : outcome.unit_failures)
        logger().log(Level::error, fmt::format("{} {}: systemd: {}", to_string(event.kind), event.name, failure),
                     {{"KANOTIFY_INSTANCE", event.name}}, message_id::failure);
}

// keepalived SIGKILLs the process group of every notify still running
// 1.1 s after it wrote the STOP notifies of its shutdown (its backstop
// timer), and a storm of hundreds of STOPs, each with its consumers, is
// not all recorded by then: the stop storm lost 97-237 of 500. A STOP goes
// on in a child in a session of its own, outside the group keepalived
// kills, and this process waits for it and ends with its exit status.
// Recorded late, it still never overwrites what a restarted keepalived
// reported meanwhile: a preload STOP carries keepalived's fork sequence
// (CLOCK_REALTIME based, increasing across restarts), and an argv STOP is
// journalled stale when a transition received after it was already
// recorded (dispatch.cpp, overtaking_change). Returns the exit status in
// the waiting process, nothing in the child (and nothing when no child
// could be started: the transition is handled here, as before).
std::optional<int> continue_outside_process_group() {
    pid_t child = ::fork();
    if (child < 0)
        return std::nullopt;
    if (child == 0) {
        (void)::setsid();
        return std::nullopt;
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return exit_system;
    return WIFEXITED(status) ? WEXITSTATUS(status) : exit_system;
}

// Whether the arguments report a STOP, looked at before anything else is
// done: keepalived's kill comes 1.1 s after the STOP notifies whatever
// they have done by then, and in a storm of hundreds, time to the fork
// decides how many escape it. A wrong guess costs one fork, nothing else.
bool reports_stop(int argc, char** argv) {
    // keepalived's generic notify appends TYPE NAME STATE PRIORITY.
    if (argc >= 5 && std::string_view(argv[argc - 2]) == "STOP")
        return true;
    for (int i = 1; i < argc; ++i) {
        std::string_view word = argv[i];
        std::string_view value;
        if (word == "--state" && i + 1 < argc)
            value = argv[i + 1];
        else if (word.starts_with("--state="))
            value = word.substr(8);
        else
            continue;
        return parse_state_flag(value) == State::stop;
    }
    return false;
}

}  // namespace

int run_notify(int argc, char** argv) { return run_notify(argc, argv, NotifyOrigin{}); }

int run_notify(int argc, char** argv, const NotifyOrigin& origin) {
    if (reports_stop(argc, argv))
        if (auto code = continue_outside_process_group())
            return *code;
    NotifyArgs args;
    if (auto quick = read_generic_notify(argc, argv)) {
        args = std::move(*quick);
    } else {
        CLI::App app{"kanotify: record keepalived VRRP transitions and act on them.\n"
                     "Run by keepalived as `notify \"/usr/sbin/kanotify [OPTIONS]\"` (it appends TYPE NAME STATE "
                     "PRIORITY),\nor as `notify_master \"/usr/sbin/kanotify --state master --instance NAME\"`.\n"
                     "Other modes: kanotify fifo|status|history --help",
                     "kanotify"};
        add_notify_options(app, args);
        if (auto code = parse(app, argc, argv))
            return *code;
    }
    const auto& global = args.global;
    const auto& flags = args.flags;
    const auto& words = args.words;
    const auto& netns = args.netns;
    const auto& interface = args.interface;
    const auto& router_id = args.router_id;
    const auto& addresses = args.addresses;
    auto sequence = args.sequence;

    auto config = load(global);
    if (!config)
        return report(config.error());

    bool explicit_form = flags.instance || flags.group || flags.state || flags.priority;
    Result<Event> event = make_error(ErrorKind::usage, "");
    if (explicit_form && !words.empty())
        event = make_error(ErrorKind::usage,
                           fmt::format("give either --state with --instance/--group or TYPE NAME STATE PRIORITY, "
                                       "not both (extra words: {})",
                                       quote(fmt::format("{}", fmt::join(words, " ")))));
    else if (explicit_form)
        event = parse_explicit_notify(flags);
    else if (words.empty())
        event = make_error(ErrorKind::usage,
                           "nothing to record: expected TYPE NAME STATE PRIORITY or --state STATE --instance NAME");
    else
        event = parse_notify_words(words);

    auto dispatcher = Dispatcher::open(*config);
    if (!event) {
        // What was refused is kept too, when the journal can be written.
        if (dispatcher)
            (void)dispatcher->journal({rejected_entry(origin.source, joined(argc, argv), event.error(), realtime_usec())});
        return report(event.error());
    }
    if (!dispatcher)
        return report(dispatcher.error());
    event->source = origin.source;
    event->sequence = sequence != 0 ? sequence : origin.sequence;
    if (netns || interface || !addresses.empty() || router_id) {
        auto [it, inserted] = config->instances.try_emplace(event->name, config->defaults);
        if (netns)
            it->second.netns = *netns;
        if (interface)
            it->second.interface = *interface;
        if (!addresses.empty())
            it->second.addresses = addresses;
        if (router_id)
            it->second.router_id = *router_id;
        if (auto ok = validate_instance_settings(it->second); !ok) {
            if (dispatcher)
                (void)dispatcher->journal(
                    {rejected_entry(origin.source, joined(argc, argv), ok.error(), event->time_usec)});
            return report(ok.error());
        }
        // The dispatcher was opened with the file's settings; reopen with the flags'.
        dispatcher = Dispatcher::open(*config);
        if (!dispatcher)
            return report(dispatcher.error());
    }

    drop_privileges(*config);
    // keepalived gives each notify script a death signal (PR_SET_PDEATHSIG,
    // SIGTERM), and its VRRP process exits right after sending the STOP
    // notifies: the very transitions being recorded would be killed (the
    // storm benchmark lost 191 of 500 STOPs that way). kanotify's work is
    // bounded by its timeouts, and keepalived still SIGKILLs a STOP
    // script's process group after a second.
    (void)::prctl(PR_SET_PDEATHSIG, 0);
    // SIGTERM, SIGINT and SIGHUP wait until the transition is recorded,
    // journalled and delivered (each bounded by its timeout), so that no
    // state file is ever left without its journal line; they act right
    // after. Hooks start with an empty signal mask.
    sigset_t deferred, previous;
    sigemptyset(&deferred);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&deferred, sig);
    (void)::sigprocmask(SIG_BLOCK, &deferred, &previous);
    auto outcomes = dispatcher->handle(std::span<const Event>(&*event, 1));
    if (!outcomes) {
        auto code = report(outcomes.error());
        (void)::sigprocmask(SIG_SETMASK, &previous, nullptr);
        return code;
    }
    const auto& outcome = outcomes->front();
    log_outcome(*event, outcome);
    if (auto metrics = dispatcher->write_metrics(); !metrics)
        logger().log(Level::warning, fmt::format("metrics: {}", metrics.error().describe()));
    (void)::sigprocmask(SIG_SETMASK, &previous, nullptr);
    if (outcome.status == Status::failed)
        return exit_system;
    // Recorded, but a consumer did not get it: kept pending, exit 69.
    return outcome.undelivered ? exit_unavailable : exit_ok;
}

int run_notify_guarded(int argc, char** argv, const NotifyOrigin& origin) noexcept {
    // Kept in step with main()'s handlers: the preload module must end
    // exactly as the binary would.
    try {
        return run_notify(argc, argv, origin);
    } catch (const std::bad_alloc&) {
        std::cerr << "kanotify: out of memory\n";
        return exit_system;
    } catch (const std::exception& e) {
        std::cerr << "kanotify: internal error: " << e.what() << '\n';
        return exit_system;
    } catch (...) {
        std::cerr << "kanotify: internal error\n";
        return exit_system;
    }
}

bool is_subcommand_name(std::string_view word) noexcept {
    // The names of main()'s subcommand table.
    for (std::string_view name : {"fifo", "status", "history", "flush", "wait"})
        if (word == name)
            return true;
    return false;
}

}  // namespace kanotify::cli
