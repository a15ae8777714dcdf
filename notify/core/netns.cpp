// SPDX-License-Identifier: GPL-2.0-or-later
#include "netns.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "effective_capability.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

Result<void> validate_netns(const std::string& netns) {
    if (netns.empty() || netns.size() > 255 || netns.find('\0') != std::string::npos)
        return make_error(ErrorKind::invalid, fmt::format("namespace {} is empty or too long", quote(netns)));
    if (netns.front() == '/') {
        // A path may hold any byte but these: they would break the log
        // lines it appears in (neutron's log file is read line by line).
        for (char c : netns)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                return make_error(ErrorKind::invalid, fmt::format("namespace path {} contains {}", quote(netns),
                                                                  quote(std::string_view(&c, 1))));
        if (netns.find("/../") != std::string::npos || netns.ends_with("/.."))
            return make_error(ErrorKind::invalid, fmt::format("namespace path {} contains \"..\"", quote(netns)));
        return {};
    }
    for (char c : netns) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == ':' || c == '-';
        if (!ok)
            return make_error(ErrorKind::invalid,
                              fmt::format("namespace {} contains {}: a name under /run/netns is made of "
                                          "A-Z a-z 0-9 _ . : - (or give an absolute path)",
                                          quote(netns), quote(std::string_view(&c, 1))));
    }
    if (netns == "." || netns == "..")
        return make_error(ErrorKind::invalid, fmt::format("namespace {} is not a name", quote(netns)));
    return {};
}

Result<void> validate_interface(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return make_error(ErrorKind::invalid,
                          fmt::format("interface {} must be 1 to {} bytes long", quote(name), IFNAMSIZ - 1));
    if (name == "." || name == "..")
        return make_error(ErrorKind::invalid, fmt::format("interface {} is not a name", quote(name)));
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (c == '/' || c == ':' || u <= 0x20 || u >= 0x7f)
            return make_error(ErrorKind::invalid, fmt::format("interface {} contains {}", quote(name),
                                                              quote(std::string_view(&c, 1))));
    }
    return {};
}

namespace {

// Another process's namespace (/proc/PID/ns/net) is opened under a ptrace
// access check, which a process with fewer capabilities than the target
// (root keeping only a few) passes only with CAP_SYS_PTRACE.
Result<UniqueFd> open_netns(const std::string& path) {
    std::optional<EffectiveCapability> raise;
    if (path.starts_with("/proc/"))
        raise.emplace(std::initializer_list<unsigned>{CAP_SYS_PTRACE});
    UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target)
        return system_error(fmt::format("cannot open network namespace {}", quote(path)), errno);
    return target;
}

}  // namespace

Result<void> in_netns(const std::string& netns, const std::function<void()>& body) {
    if (netns.empty()) {
        body();
        return {};
    }
    if (auto ok = validate_netns(netns); !ok)
        return tl::unexpected(ok.error());
    auto path = netns.front() == '/' ? netns : "/run/netns/" + netns;
    auto target = open_netns(path);
    if (!target)
        return tl::unexpected(target.error());
    UniqueFd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!own)
        return system_error("cannot open our own network namespace", errno);
    // CAP_SYS_ADMIN for each setns() alone: the body runs without it.
    {
        EffectiveCapability raise({CAP_SYS_ADMIN});
        if (::setns(target->get(), CLONE_NEWNET) != 0)
            return system_error(fmt::format("cannot enter network namespace {}", quote(path)), errno);
    }
    body();
    // Staying in the wrong namespace would misdirect everything after this:
    // there is no safe way to continue.
    EffectiveCapability raise({CAP_SYS_ADMIN});
    if (::setns(own.get(), CLONE_NEWNET) != 0)
        std::abort();
    return {};
}

Result<UniqueFd> socket_in_netns(const std::string& netns, int domain, int type, int protocol) {
    UniqueFd fd;
    int socket_errno = 0;
    // A socket belongs to the namespace it was created in, for its lifetime.
    auto entered = in_netns(netns, [&] {
        fd.reset(::socket(domain, type | SOCK_CLOEXEC, protocol));
        socket_errno = errno;
    });
    if (!entered)
        return tl::unexpected(entered.error());
    if (!fd)
        return system_error(netns.empty() ? std::string("cannot create a socket")
                                          : fmt::format("cannot create a socket in network namespace {}",
                                                        quote(netns.front() == '/' ? netns : "/run/netns/" + netns)),
                            socket_errno);
    return fd;
}

Result<int> interface_index(int fd, const std::string& interface) {
    if (auto ok = validate_interface(interface); !ok)
        return tl::unexpected(ok.error());
    ifreq request{};
    std::memcpy(request.ifr_name, interface.data(), interface.size());
    if (::ioctl(fd, SIOCGIFINDEX, &request) != 0) {
        if (errno == ENODEV)
            return 0;
        return system_error(fmt::format("cannot look up interface {}", quote(interface)), errno);
    }
    return request.ifr_ifindex;
}

}  // namespace kanotify
