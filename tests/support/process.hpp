// SPDX-License-Identifier: GPL-2.0-or-later
// Runs the built kanotify binary as keepalived would: fork, exec with an
// argument vector, collect the exit status and what it printed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace kanotify::test {

struct Run {
    int status = -1;  // exit code, or 128 + signal
    std::string out;
    std::string err;
};

inline pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
                   const std::vector<std::string>& extra_env = {}) {
    pid_t child = ::fork();
    if (child != 0)
        return child;
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0)
        ::_exit(127);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : extra_env)
        ::putenv(const_cast<char*>(e.c_str()));
    ::execv(args[0], args.data());
    ::_exit(127);
}

inline int wait_status(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline Run run(const TempDir& tmp, const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    auto out = tmp.str("stdout"), err = tmp.str("stderr");
    Run result;
    result.status = wait_status(spawn(argv, out, err, env));
    result.out = read_file(out);
    result.err = read_file(err);
    return result;
}

}  // namespace kanotify::test
