// SPDX-License-Identifier: GPL-2.0-or-later
// libnl-3 and libnl-route-3, loaded when something configured needs them
// (an announcement, an address watch) and not before.
//
// The argv front-end is a fresh process per transition and must keep
// loading libc and libm only (BENCHMARKS.md), so neither library is linked:
// this table is filled with dlopen() and dlsym() on first use, as
// sd_bus_api.hpp does for libsystemd. Types and prototypes come from
// Debian's libnl-3-dev / libnl-route-3-dev headers, so every call through
// the table is checked at compile time against the real API.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/socket.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <memory>

#include "kanotify/error.hpp"

namespace kanotify {

struct LibnlApi {
// libnl-3.so.200: sockets, messages, caches, objects, addresses.
#define KANOTIFY_LIBNL_CORE_FUNCTIONS(X)                                                                               \
    X(nl_socket_alloc)                                                                                                 \
    X(nl_socket_free)                                                                                                  \
    X(nl_socket_set_fd)                                                                                                \
    X(nl_connect)                                                                                                      \
    X(nl_close)                                                                                                        \
    X(nl_socket_add_memberships)                                                                                       \
    X(nl_socket_drop_memberships)                                                                                      \
    X(nl_socket_disable_seq_check)                                                                                     \
    X(nl_socket_modify_cb)                                                                                             \
    X(nl_socket_get_fd)                                                                                                \
    X(nl_socket_set_nonblocking)                                                                                       \
    X(nl_socket_set_buffer_size)                                                                                       \
    X(nl_socket_set_msg_buf_size)                                                                                      \
    X(nl_recvmsgs_default)                                                                                             \
    X(nl_msg_parse)                                                                                                    \
    X(nlmsg_hdr)                                                                                                       \
    X(nl_geterror)                                                                                                     \
    X(nl_cache_foreach)                                                                                                \
    X(nl_cache_get_first)                                                                                              \
    X(nl_cache_get_next)                                                                                               \
    X(nl_cache_nitems)                                                                                                 \
    X(nl_cache_refill)                                                                                                 \
    X(nl_cache_free)                                                                                                   \
    X(nl_object_get_type)                                                                                              \
    X(nl_object_get_msgtype)                                                                                           \
    X(nl_object_get)                                                                                                   \
    X(nl_object_put)                                                                                                   \
    X(nl_addr_get_binary_addr)                                                                                         \
    X(nl_addr_get_family)                                                                                              \
    X(nl_addr_get_len)                                                                                                 \
    X(nl_addr_get_prefixlen)

// libnl-route-3.so.200: links and addresses (rtnetlink).
#define KANOTIFY_LIBNL_ROUTE_FUNCTIONS(X)                                                                              \
    X(rtnl_link_alloc_cache)                                                                                           \
    X(rtnl_link_get_kernel)                                                                                            \
    X(rtnl_link_get)                                                                                                   \
    X(rtnl_link_get_by_name)                                                                                           \
    X(rtnl_link_put)                                                                                                   \
    X(rtnl_link_get_ifindex)                                                                                           \
    X(rtnl_link_get_name)                                                                                              \
    X(rtnl_link_get_flags)                                                                                             \
    X(rtnl_link_get_operstate)                                                                                         \
    X(rtnl_link_get_carrier)                                                                                           \
    X(rtnl_link_get_addr)                                                                                              \
    X(rtnl_link_get_arptype)                                                                                           \
    X(rtnl_link_get_mtu)                                                                                               \
    X(rtnl_addr_alloc_cache)                                                                                           \
    X(rtnl_addr_get_ifindex)                                                                                           \
    X(rtnl_addr_get_family)                                                                                            \
    X(rtnl_addr_get_prefixlen)                                                                                         \
    X(rtnl_addr_get_scope)                                                                                             \
    X(rtnl_addr_get_flags)                                                                                             \
    X(rtnl_addr_get_local)                                                                                             \
    X(rtnl_addr_get_peer)                                                                                              \
    X(rtnl_addr_get_label)

#define KANOTIFY_LIBNL_POINTER(name) decltype(&::name) name = nullptr;
    KANOTIFY_LIBNL_CORE_FUNCTIONS(KANOTIFY_LIBNL_POINTER)
    KANOTIFY_LIBNL_ROUTE_FUNCTIONS(KANOTIFY_LIBNL_POINTER)
#undef KANOTIFY_LIBNL_POINTER
};

// The process-wide table, loaded on first use (thread-safe); an error when
// libnl-3-200 or libnl-route-3-200 is not installed or lacks a function.
// Later calls return the same table or the same error.
[[nodiscard]] Result<const LibnlApi*> libnl_api();

// Owners releasing through the loaded table.
struct NlSocketCloser {
    const LibnlApi* api;
    void operator()(nl_sock* sk) const noexcept { api->nl_socket_free(sk); }
};
struct NlCacheCloser {
    const LibnlApi* api;
    void operator()(nl_cache* cache) const noexcept { api->nl_cache_free(cache); }
};
struct RtnlLinkCloser {
    const LibnlApi* api;
    void operator()(rtnl_link* link) const noexcept { api->rtnl_link_put(link); }
};
using NlSocketPtr = std::unique_ptr<nl_sock, NlSocketCloser>;
using NlCachePtr = std::unique_ptr<nl_cache, NlCacheCloser>;
using RtnlLinkPtr = std::unique_ptr<rtnl_link, RtnlLinkCloser>;

// libnl's negative error codes (NLE_*) as an Error, with context.
[[nodiscard]] tl::unexpected<Error> libnl_error(const LibnlApi& api, const char* context, int nle);

}  // namespace kanotify
