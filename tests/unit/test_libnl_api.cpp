// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include <net/if.h>

#include "libnl_api.hpp"

using namespace kanotify;

TEST_CASE("libnl is loaded on demand with every function of the table resolved", "[libnl]") {
    auto api = libnl_api();
    REQUIRE(api.has_value());
    const LibnlApi& nl = **api;
#define CHECK_RESOLVED(name) CHECK(nl.name != nullptr);
    KANOTIFY_LIBNL_CORE_FUNCTIONS(CHECK_RESOLVED)
    KANOTIFY_LIBNL_ROUTE_FUNCTIONS(CHECK_RESOLVED)
#undef CHECK_RESOLVED
    // A second call hands back the same table.
    auto again = libnl_api();
    REQUIRE(again.has_value());
    CHECK(*again == *api);
}

TEST_CASE("libnl through the table reads this namespace's loopback link and its addresses", "[libnl]") {
    auto api = libnl_api();
    REQUIRE(api.has_value());
    const LibnlApi& nl = **api;
    NlSocketPtr sk(nl.nl_socket_alloc(), NlSocketCloser{&nl});
    REQUIRE(sk);
    REQUIRE(nl.nl_connect(sk.get(), NETLINK_ROUTE) == 0);

    nl_cache* raw = nullptr;
    REQUIRE(nl.rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &raw) == 0);
    NlCachePtr links(raw, NlCacheCloser{&nl});
    RtnlLinkPtr lo(nl.rtnl_link_get_by_name(links.get(), "lo"), RtnlLinkCloser{&nl});
    REQUIRE(lo);
    CHECK(nl.rtnl_link_get_ifindex(lo.get()) == static_cast<int>(::if_nametoindex("lo")));
    CHECK((nl.rtnl_link_get_flags(lo.get()) & IFF_LOOPBACK) != 0);

    raw = nullptr;
    REQUIRE(nl.rtnl_addr_alloc_cache(sk.get(), &raw) == 0);
    NlCachePtr addresses(raw, NlCacheCloser{&nl});
    // Every address object carries its interface and a local address of
    // the family it claims.
    int seen = 0;
    for (nl_object* o = nl.nl_cache_get_first(addresses.get()); o; o = nl.nl_cache_get_next(o)) {
        auto* a = reinterpret_cast<rtnl_addr*>(o);
        CHECK(nl.rtnl_addr_get_ifindex(a) > 0);
        nl_addr* local = nl.rtnl_addr_get_local(a);
        REQUIRE(local);
        CHECK(nl.nl_addr_get_family(local) == nl.rtnl_addr_get_family(a));
        CHECK(nl.nl_addr_get_len(local) == (nl.rtnl_addr_get_family(a) == AF_INET ? 4u : 16u));
        ++seen;
    }
    CHECK(seen == nl.nl_cache_nitems(addresses.get()));
}

TEST_CASE("libnl error codes become messages naming the failed step", "[libnl]") {
    auto api = libnl_api();
    REQUIRE(api.has_value());
    auto e = libnl_error(**api, "cannot connect", -NLE_PERM);
    CHECK(e.value().message.find("cannot connect: ") == 0);
    CHECK(e.value().message.size() > std::string("cannot connect: ").size());
}
