// SPDX-License-Identifier: GPL-2.0-or-later
// A host for the preload module's tests: forks and execs notify commands
// the way keepalived's system_call_script() does (fork, setpgid, execve
// with the process environment, no wait in the child), so the module can be
// tested, and measured, without keepalived.
//
//   preload_host run [--thread] PROGRAM ARGS...
//       one child; prints "exit N" or "signal N" (127: execve failed).
//       --thread: a second thread is running when the host forks.
//   preload_host reverse MS PROGRAM ARGS1... -- ARGS2...
//       two children forked in order; the first waits MS before its exec,
//       so the later fork runs first. Prints both statuses.
//   preload_host bench N PROGRAM ARGS...
//       N transitions, each timed from fork until the child is reaped; an
//       argument MASTER becomes BACKUP every other run, so each run is a
//       real transition. One line per run, "run WALL_US CPU_US" (CPU: the
//       child's user+system time, what keepalived's machine pays for it),
//       then "runs N failures F median_wall_us M median_cpu_us C p90_wall_us P".
//   preload_host killgroup MS PROGRAM ARGS...
//       one child, whose process group gets SIGKILL after MS, as keepalived's
//       shutdown backstop does to every notify still running; prints the
//       child's status.
//   preload_host errno
//       errno across the shims: fork() leaves the caller's errno alone in
//       parent and child; a failing execve() reports the kernel's errno.
//       Prints "errno kept" or what went wrong.
//   preload_host dlopen MODULE PROGRAM ARGS...
//       fork and execve through MODULE's own symbols (dlopen()ed, not
//       preloaded): the AT_SECURE test, where the loader ignores LD_PRELOAD.
#include <dlfcn.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using ForkFn = pid_t (*)();
using ExecveFn = int (*)(const char*, char* const[], char* const[]);

ForkFn do_fork = ::fork;
ExecveFn do_execve = ::execve;

[[noreturn]] void usage() {
    std::fputs("usage: preload_host run [--thread] PROGRAM ARGS... | reverse MS PROGRAM ARGS1... -- ARGS2... | "
               "bench N PROGRAM ARGS... | killgroup MS PROGRAM ARGS... | dlopen MODULE PROGRAM ARGS...\n",
               stderr);
    std::exit(2);
}

// As keepalived's child does it: own process group, then execve.
pid_t spawn(std::vector<char*> argv, long delay_ms = 0) {
    argv.push_back(nullptr);
    pid_t pid = do_fork();
    if (pid != 0)
        return pid;
    ::setpgid(0, 0);
    if (delay_ms > 0) {
        timespec ts{delay_ms / 1000, (delay_ms % 1000) * 1'000'000};
        ::nanosleep(&ts, nullptr);
    }
    do_execve(argv[0], argv.data(), environ);
    std::fprintf(stderr, "preload_host: execve %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
}

std::string describe(int status) {
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

int reap(pid_t pid, rusage* usage = nullptr) {
    int status = 0;
    rusage ignored{};
    while (::wait4(pid, &status, 0, usage ? usage : &ignored) < 0)
        if (errno != EINTR) {
            std::perror("preload_host: wait4");
            std::exit(1);
        }
    return status;
}

void* idle_thread(void*) {
    for (;;)
        ::pause();
}

std::int64_t now_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::int64_t percentile(std::vector<std::int64_t> values, double p) {
    std::sort(values.begin(), values.end());
    auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[index];
}

int run(int argc, char** argv) {
    int first = 0;
    if (argc > 0 && std::strcmp(argv[0], "--thread") == 0) {
        pthread_t thread{};
        if (::pthread_create(&thread, nullptr, idle_thread, nullptr) != 0) {
            std::fputs("preload_host: pthread_create failed\n", stderr);
            return 1;
        }
        first = 1;
    }
    if (argc <= first)
        usage();
    pid_t pid = spawn(std::vector<char*>(argv + first, argv + argc));
    if (pid < 0) {
        std::perror("preload_host: fork");
        return 1;
    }
    std::printf("%s\n", describe(reap(pid)).c_str());
    return 0;
}

int killgroup(int argc, char** argv) {
    if (argc < 2)
        usage();
    long delay = std::strtol(argv[0], nullptr, 10);
    pid_t pid = spawn(std::vector<char*>(argv + 1, argv + argc));
    if (pid < 0) {
        std::perror("preload_host: fork");
        return 1;
    }
    timespec ts{delay / 1000, (delay % 1000) * 1'000'000};
    ::nanosleep(&ts, nullptr);
    // keepalived: kill(-getpgid(child), SIGKILL); spawn() made the child a
    // group of its own, as keepalived's children are.
    ::kill(-pid, SIGKILL);
    std::printf("%s\n", describe(reap(pid)).c_str());
    return 0;
}

int reverse(int argc, char** argv) {
    if (argc < 4)
        usage();
    long delay = std::strtol(argv[0], nullptr, 10);
    char** split = std::find_if(argv + 2, argv + argc, [](const char* a) { return std::strcmp(a, "--") == 0; });
    if (split == argv + argc)
        usage();
    std::vector<char*> older(argv + 1, split);
    std::vector<char*> newer{argv[1]};
    newer.insert(newer.end(), split + 1, argv + argc);
    pid_t a = spawn(older, delay);
    pid_t b = spawn(newer);
    if (a < 0 || b < 0) {
        std::perror("preload_host: fork");
        return 1;
    }
    std::string second = describe(reap(b));
    std::string first_status = describe(reap(a));
    std::printf("first %s\nsecond %s\n", first_status.c_str(), second.c_str());
    return 0;
}

int bench(int argc, char** argv) {
    if (argc < 2)
        usage();
    long n = std::strtol(argv[0], nullptr, 10);
    if (n <= 0)
        usage();
    std::vector<std::int64_t> wall, cpu;
    std::vector<char*> command(argv + 1, argv + argc);
    int failures = 0;
    std::vector<char*> alternate = command;
    static char backup[] = "BACKUP";
    for (auto& word : alternate)
        if (std::strcmp(word, "MASTER") == 0)
            word = backup;
    for (long i = 0; i < n; ++i) {
        rusage usage{};
        auto start = now_us();
        pid_t pid = spawn(i % 2 == 0 ? command : alternate);
        int status = reap(pid, &usage);
        wall.push_back(now_us() - start);
        cpu.push_back(usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec + usage.ru_stime.tv_sec * 1'000'000 +
                      usage.ru_stime.tv_usec);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ++failures;
        std::printf("run %lld %lld\n", static_cast<long long>(wall.back()), static_cast<long long>(cpu.back()));
    }
    std::printf("runs %ld failures %d median_wall_us %lld median_cpu_us %lld p90_wall_us %lld\n", n, failures,
                static_cast<long long>(percentile(wall, 0.5)), static_cast<long long>(percentile(cpu, 0.5)),
                static_cast<long long>(percentile(wall, 0.9)));
    return failures == 0 ? 0 : 1;
}

int errno_kept() {
    errno = EXDEV;
    pid_t pid = do_fork();
    if (pid == 0) {
        int in_child = errno;
        char missing[] = "/nonexistent/kanotify-preload-test";
        char* argv[] = {missing, nullptr};
        errno = EXDEV;
        do_execve(missing, argv, environ);
        ::_exit(in_child == EXDEV && errno == ENOENT ? 0 : 1);
    }
    int in_parent = errno;
    int status = reap(pid);
    if (in_parent != EXDEV || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::printf("errno changed: parent %d, child %s\n", in_parent, describe(status).c_str());
        return 1;
    }
    std::printf("errno kept\n");
    return 0;
}

int via_dlopen(int argc, char** argv) {
    if (argc < 2)
        usage();
    void* module = ::dlopen(argv[0], RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        std::fprintf(stderr, "preload_host: dlopen: %s\n", ::dlerror());
        return 1;
    }
    do_fork = reinterpret_cast<ForkFn>(::dlsym(module, "fork"));
    do_execve = reinterpret_cast<ExecveFn>(::dlsym(module, "execve"));
    if (!do_fork || !do_execve) {
        std::fputs("preload_host: the module does not export fork and execve\n", stderr);
        return 1;
    }
    std::printf("uid %d euid %d secure %lu\n", ::getuid(), ::geteuid(), ::getauxval(AT_SECURE));
    return run(argc - 1, argv + 1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        usage();
    std::string mode = argv[1];
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    if (mode == "run")
        return run(argc - 2, argv + 2);
    if (mode == "reverse")
        return reverse(argc - 2, argv + 2);
    if (mode == "bench")
        return bench(argc - 2, argv + 2);
    if (mode == "killgroup")
        return killgroup(argc - 2, argv + 2);
    if (mode == "errno")
        return errno_kept();
    if (mode == "dlopen")
        return via_dlopen(argc - 2, argv + 2);
    usage();
}
