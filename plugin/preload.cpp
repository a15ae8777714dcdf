// SPDX-License-Identifier: GPL-2.0-or-later
// libkanotify-preload.so: keepalived forks, then execve()s each notify
// script. Preloaded into keepalived, this module
//   - stamps every fork() of the host with a strictly increasing sequence,
//     which the child inherits (the state store applies an instance's
//     transitions in that order, whatever order the children run in);
//   - in a child whose execve() runs the kanotify binary (matched by inode,
//     never by name), runs the argv notify front-end in place and _exit()s
//     with its exit code: no exec, no program start;
//   - lets every other execve() through, without itself in LD_PRELOAD.
// Whenever it cannot be sure the in-place path is safe it lets the real
// exec happen: keepalived must never fare worse with the hook than without.
//
// glibc's system(), popen(), posix_spawn(), execv(), execvp() and execl*()
// reach the kernel through glibc-internal calls that no preload can
// interpose. keepalived (2.2.7 and current) runs a notify script with
// execve() unless it is a script without a shebang (system(), through
// /bin/sh: never the kanotify binary). Those paths take the process
// environment, which the constructor has already cleaned of this module.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "notify_front.hpp"
#include "sd_bus_api.hpp"

#ifndef KANOTIFY_INSTALLED_BINARY
#define KANOTIFY_INSTALLED_BINARY "/usr/sbin/kanotify"
#endif

extern "C" {
__attribute__((visibility("default"))) int execve(const char* path, char* const argv[], char* const envp[]);
__attribute__((visibility("default"))) pid_t fork(void);
}

namespace {

constexpr char module_name[] = "libkanotify-preload.so";

using ExecveFn = int (*)(const char*, char* const[], char* const[]);
using ForkFn = pid_t (*)();

// Set once by the constructor, read-only afterwards (so a forked child of a
// multi-threaded host reads them without any lock).
bool inert = false;  // AT_SECURE, or the constructor did not run
bool have_self = false;
dev_t self_dev = 0;
ino_t self_ino = 0;
char binary_path[4096] = KANOTIFY_INSTALLED_BINARY;  // empty: match nothing
bool debug = false;
std::atomic<bool> initialised{false};

// The fork stamp. Written by the child right after fork(), so it describes
// that child only: `pid` tells a stamped process from one forked otherwise
// (vfork, clone, posix_spawn), which must never run the core.
struct Stamp {
    pid_t pid = 0;
    std::uint64_t sequence = 0;
    bool parent_single_threaded = false;
};
Stamp stamp;
std::atomic<std::uint64_t> last_sequence{0};

// --- async-signal-safe helpers (a child of a multi-threaded host may run them)

void say(const char* a, const char* b = "", const char* c = "", const char* d = "") noexcept {
    if (!debug)
        return;
    for (const char* part : {"kanotify-preload: ", a, b, c, d, "\n"})
        (void)!::write(STDERR_FILENO, part, std::strlen(part));
}

// glibc declares execve()'s path nonnull; a caller may still pass null.
const char* printable(const char* text) noexcept { return text ? text : "(null)"; }

ExecveFn real_execve() noexcept {
    // Resolved by the constructor; the lookup here only serves a call that
    // arrives before it ran (another library's constructor).
    static ExecveFn fn = reinterpret_cast<ExecveFn>(::dlsym(RTLD_NEXT, "execve"));
    return fn;
}

ForkFn real_fork() noexcept {
    static ForkFn fn = reinterpret_cast<ForkFn>(::dlsym(RTLD_NEXT, "fork"));
    return fn;
}

// Threads of this process (field 20 of /proc/self/stat), -1 if unknown.
int thread_count() noexcept {
    int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    // The command name (field 2) may contain anything: count from its ')'.
    const char* p = std::strrchr(buf, ')');
    if (!p)
        return -1;
    for (int field = 2; field < 20; ++field) {
        p = std::strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    long count = 0;
    for (++p; *p >= '0' && *p <= '9'; ++p)
        count = count * 10 + (*p - '0');
    return count > 0 && count < 1'000'000 ? static_cast<int>(count) : -1;
}

// One thread for certain when glibc says so: it clears
// __libc_single_threaded when a thread is created, and sets it only where
// it knows there is one thread (a fresh process, a fork's child). That
// spares reading /proc/self/stat in keepalived at every fork and again in
// every child; when glibc cannot tell, the kernel is asked.
bool single_threaded() noexcept {
    return __libc_single_threaded || thread_count() == 1;
}

std::uint64_t realtime_usec() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

// CLOCK_REALTIME in microseconds, made strictly increasing in this process:
// a restarted keepalived continues above what its predecessor stamped
// (docs/design-notes.md, "Sequences").
std::uint64_t next_sequence() noexcept {
    std::uint64_t now = realtime_usec();
    std::uint64_t last = last_sequence.load(std::memory_order_relaxed);
    std::uint64_t next = 0;
    do
        next = now > last ? now : last + 1;
    while (!last_sequence.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return next;
}

bool is_separator(char c) noexcept { return c == ':' || c == ' ' || c == '\t'; }

// Is this LD_PRELOAD entry this module? By inode where it can be stat()ed,
// by file name otherwise (a bare name is searched by the loader).
bool entry_is_self(const char* entry, std::size_t length) noexcept {
    char path[4096];
    if (length == 0 || length >= sizeof path)
        return false;
    std::memcpy(path, entry, length);
    path[length] = '\0';
    struct stat st {};
    if (have_self && ::stat(path, &st) == 0)
        return st.st_dev == self_dev && st.st_ino == self_ino;
    const char* base = std::strrchr(path, '/');
    return std::strcmp(base ? base + 1 : path, module_name) == 0;
}

// Copies the value of an LD_PRELOAD list to `out` without this module's
// entries (':'-joined); `out` may be `value` itself. Returns the length.
std::size_t strip_self(const char* value, char* out) noexcept {
    std::size_t written = 0;
    const char* p = value;
    while (*p) {
        while (is_separator(*p))
            ++p;
        const char* start = p;
        while (*p && !is_separator(*p))
            ++p;
        auto length = static_cast<std::size_t>(p - start);
        if (length == 0 || entry_is_self(start, length))
            continue;
        if (written)
            out[written++] = ':';
        std::memmove(out + written, start, length);
        written += length;
    }
    out[written] = '\0';
    return written;
}

constexpr char preload_key[] = "LD_PRELOAD=";
constexpr std::size_t preload_key_length = sizeof preload_key - 1;

bool is_preload_entry(const char* entry) noexcept {
    return std::strncmp(entry, preload_key, preload_key_length) == 0;
}

// An environment for the real execve without this module, in one mmap()ed
// block (no malloc: this runs in a forked child). `envp` itself when there
// is nothing to remove; nullptr when no memory could be had.
struct CleanEnv {
    char* const* envp = nullptr;
    void* block = nullptr;
    std::size_t size = 0;
};

CleanEnv clean_environment(char* const envp[]) noexcept {
    if (!envp)
        return {envp};
    std::size_t count = 0;
    const char* preload = nullptr;
    for (; envp[count]; ++count)
        if (is_preload_entry(envp[count]))
            preload = envp[count];
    if (!preload)
        return {envp};
    std::size_t value_length = std::strlen(preload + preload_key_length);
    std::size_t size = (count + 1) * sizeof(char*) + preload_key_length + value_length + 1;
    void* block = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED)
        return {};
    auto** out = static_cast<char**>(block);
    char* text = reinterpret_cast<char*>(out + count + 1);
    std::memcpy(text, preload_key, preload_key_length);
    bool keep_preload = strip_self(preload + preload_key_length, text + preload_key_length) > 0;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!is_preload_entry(envp[i]))
            out[kept++] = envp[i];
        else if (keep_preload)
            out[kept++] = text;
    }
    out[kept] = nullptr;
    return {out, block, size};
}

// Removes this module from the process's own LD_PRELOAD, in place (the
// value only shrinks) or by dropping the entry: what system(), popen() and
// posix_spawn() pass on is then clean too.
void clean_process_environment() noexcept {
    for (std::size_t i = 0; environ && environ[i]; ++i) {
        if (!is_preload_entry(environ[i]))
            continue;
        if (strip_self(environ[i] + preload_key_length, environ[i] + preload_key_length) > 0)
            continue;
        for (std::size_t j = i; environ[j]; ++j)
            environ[j] = environ[j + 1];
        --i;
    }
}

bool same_file(const struct stat& a, const struct stat& b) noexcept {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The program is the kanotify binary: the same inode as the configured
// path, a regular file this process may execute (exec would say EACCES).
bool runs_kanotify(const char* path) noexcept {
    if (!path || binary_path[0] == '\0')
        return false;
    struct stat program {}, binary {};
    if (::stat(path, &program) != 0 || ::stat(binary_path, &binary) != 0)
        return false;
    return S_ISREG(program.st_mode) && same_file(program, binary) && ::access(path, X_OK) == 0;
}

// Why the in-place path is not taken, or nullptr when it may be.
const char* refusal(const char* path, char* const argv[]) noexcept {
    if (!initialised.load(std::memory_order_acquire) || inert)
        return "inactive";
    if (!runs_kanotify(path))
        return "not kanotify";
    if (!argv || !argv[0])
        return "no argv[0]";
    if (argv[1] && kanotify::cli::is_subcommand_name(argv[1]))
        return "a subcommand";
    if (stamp.pid != ::getpid())
        return "not forked through the hook";
    if (!stamp.parent_single_threaded)
        return "forked from a multi-threaded parent";
    if (!single_threaded())
        return "this process has threads";
    return nullptr;
}

// --- the in-place path: only reached in a child of a single-threaded parent

// What exec would do to signal dispositions: handlers back to default,
// ignored signals stay ignored, the mask is kept. keepalived's own handlers
// must never run here (they would report to keepalived's signal pipe).
void reset_signal_handlers() noexcept {
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction old {};
        if (::sigaction(sig, nullptr, &old) != 0)
            continue;
        bool handled = (old.sa_flags & SA_SIGINFO) != 0 || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
        if (handled) {
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            sigemptyset(&dfl.sa_mask);
            (void)::sigaction(sig, &dfl, nullptr);
        }
    }
}

// Test-only: KANOTIFY_TEST_PRELOAD_DELAY=WORD=MS holds an in-place run whose
// arguments contain WORD for MS milliseconds, so tests can make keepalived's
// children finish in the reverse order.
void test_delay(int argc, char* const argv[]) noexcept {
    const char* spec = ::secure_getenv("KANOTIFY_TEST_PRELOAD_DELAY");
    const char* eq = spec ? std::strchr(spec, '=') : nullptr;
    if (!eq)
        return;
    auto word_length = static_cast<std::size_t>(eq - spec);
    long ms = std::strtol(eq + 1, nullptr, 10);
    for (int i = 1; i < argc; ++i) {
        if (std::strlen(argv[i]) == word_length && std::strncmp(argv[i], spec, word_length) == 0 && ms > 0) {
            timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
            while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
            return;
        }
    }
}

[[noreturn]] void run_in_place(char* const argv[], char* const envp[]) noexcept {
    reset_signal_handlers();
    // The program would see the environment it was given, not keepalived's.
    if (envp && envp != environ)
        environ = const_cast<char**>(envp);
    // keepalived's unflushed stdio buffers, which an exec would drop.
    ::__fpurge(stdout);
    ::__fpurge(stderr);
    int argc = 0;
    while (argv[argc])
        ++argc;
    test_delay(argc, argv);
    say("handled in place");
    int code = kanotify::cli::run_notify_guarded(argc, const_cast<char**>(argv),
                                                 {kanotify::Source::preload, stamp.sequence});
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
}

__attribute__((constructor)) void initialise() noexcept {
    int saved = errno;
    // A set-id program (or one with file capabilities) gets nothing from us.
    if (::getauxval(AT_SECURE) != 0) {
        inert = true;
        errno = saved;
        return;
    }
    debug = ::secure_getenv("KANOTIFY_PRELOAD_DEBUG") != nullptr;
    Dl_info info{};
    struct stat st {};
    if (::dladdr(reinterpret_cast<void*>(&initialise), &info) != 0 && info.dli_fname &&
        ::stat(info.dli_fname, &st) == 0) {
        have_self = true;
        self_dev = st.st_dev;
        self_ino = st.st_ino;
    }
    if (const char* configured = ::secure_getenv("KANOTIFY_BINARY")) {
        // An unusable setting disables the in-place path (every exec is real).
        std::size_t length = std::strlen(configured);
        if (configured[0] == '/' && length < sizeof binary_path)
            std::memcpy(binary_path, configured, length + 1);
        else
            binary_path[0] = '\0';
    }
    if (!real_execve() || !real_fork())
        inert = true;
    // keepalived links libsystemd: sd-bus's functions are resolved here,
    // once, and every in-place child inherits the table instead of making a
    // dlopen() and forty symbol look-ups of its own. Only when the library
    // is loaded already: the module never loads one into keepalived.
    if (!inert)
        if (void* loaded = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) {
            (void)kanotify::sd_bus_api();
            ::dlclose(loaded);
        }
    clean_process_environment();
    initialised.store(true, std::memory_order_release);
    errno = saved;
}

}  // namespace

extern "C" pid_t fork(void) {
    ForkFn forker = real_fork();
    if (!forker) {
        errno = ENOSYS;
        return -1;
    }
    if (inert || !initialised.load(std::memory_order_acquire))
        return forker();
    int saved = errno;
    Stamp next;
    next.sequence = next_sequence();
    next.parent_single_threaded = single_threaded();
    errno = saved;
    pid_t pid = forker();
    if (pid == 0) {
        saved = errno;
        next.pid = ::getpid();
        stamp = next;
        errno = saved;
    }
    return pid;
}

extern "C" int execve(const char* path, char* const argv[], char* const envp[]) {
    int saved = errno;
    ExecveFn exec = real_execve();
    if (!exec) {
        errno = ENOSYS;
        return -1;
    }
    if (inert) {
        errno = saved;
        return exec(path, argv, envp);
    }
    const char* why = refusal(path, argv);
    if (!why)
        run_in_place(argv, envp);
    say("exec ", printable(path), ": ", why);
    CleanEnv env = clean_environment(envp);
    if (!env.envp)  // no memory for the copy: the program still runs
        env.envp = envp;
    errno = saved;
    int rc = exec(path, argv, env.envp);
    if (env.block) {
        saved = errno;
        ::munmap(env.block, env.size);
        errno = saved;
    }
    return rc;
}
