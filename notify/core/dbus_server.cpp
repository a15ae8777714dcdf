// SPDX-License-Identifier: GPL-2.0-or-later
#include "dbus_server.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include "sd_bus_api.hpp"

namespace kanotify {

namespace {

constexpr const char* root_path = "/org/kanotify";
constexpr const char* instance_prefix = "/org/kanotify/instance";
constexpr const char* group_prefix = "/org/kanotify/group";
constexpr const char* interface_name = "org.kanotify.Instance1";

std::string key_of(Kind kind, const std::string& name) {
    return fmt::format("{}:{}", kind == Kind::group ? "group" : "instance", name);
}

}  // namespace

struct DbusServer::State {
    const SdBusApi* api = nullptr;
    std::string address;
    std::string name;
    std::map<std::string, InstanceProperties> objects;  // node-stable: userdata pointers stay valid
    std::vector<sd_bus_vtable> vtable;                  // registered: lives as long as the bus
    BusPtr bus{nullptr, BusCloser{nullptr}};            // last, so it goes first

    std::string path_of(const InstanceProperties& p) const {
        char* path = nullptr;
        if (api->sd_bus_path_encode(p.kind == Kind::group ? group_prefix : instance_prefix, p.name.c_str(), &path) < 0)
            return {};
        std::string out(path);
        std::free(path);
        return out;
    }
};

namespace {

// Every sd-bus callback: no exception may cross into C.
template <typename Body>
int guarded(Body body) noexcept {
    try {
        return body();
    } catch (...) {
        return -ENOMEM;
    }
}

int find_object(Kind kind, const char* prefix, const char* path, void* userdata, void** found) {
    auto* state = static_cast<DbusServer::State*>(userdata);
    char* name = nullptr;
    if (state->api->sd_bus_path_decode(path, prefix, &name) <= 0 || !name)
        return 0;
    std::string decoded(name);
    std::free(name);
    auto it = state->objects.find(key_of(kind, decoded));
    if (it == state->objects.end())
        return 0;
    *found = &it->second;
    return 1;
}

int find_instance(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error*) {
    return guarded([&] { return find_object(Kind::instance, instance_prefix, path, userdata, found); });
}

int find_group(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error*) {
    return guarded([&] { return find_object(Kind::group, group_prefix, path, userdata, found); });
}

int enumerate(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error*) {
    return guarded([&] {
        auto* state = static_cast<DbusServer::State*>(userdata);
        auto** list = static_cast<char**>(std::calloc(state->objects.size() + 1, sizeof(char*)));
        if (!list)
            return -ENOMEM;
        std::size_t n = 0;
        for (const auto& [key, object] : state->objects) {
            auto path = state->path_of(object);
            if (!path.empty())
                list[n++] = ::strdup(path.c_str());
        }
        *nodes = list;
        return 1;
    });
}

const InstanceProperties& object(void* userdata) {
    return *static_cast<const InstanceProperties*>(userdata);
}

int get_state(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata, sd_bus_error*) {
    const auto* api = *sd_bus_api();
    return api->sd_bus_message_append(reply, "s", object(userdata).state.c_str());
}

int get_priority(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                 sd_bus_error*) {
    const auto* api = *sd_bus_api();
    return api->sd_bus_message_append(reply, "u", object(userdata).priority);
}

int get_last_change(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                    sd_bus_error*) {
    const auto* api = *sd_bus_api();
    return api->sd_bus_message_append(reply, "t", object(userdata).last_change_usec);
}

// Everything after the start element, which make_vtable() adds.
const sd_bus_vtable instance_members[] = {
    SD_BUS_PROPERTY("State", "s", get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Priority", "u", get_priority, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastChange", "t", get_last_change, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_SIGNAL("StateChanged", "sssutta{sv}", 0),
    SD_BUS_VTABLE_END,
};

std::vector<sd_bus_vtable> make_vtable(const SdBusApi& api) {
    std::vector<sd_bus_vtable> vtable(1 + std::size(instance_members));
    // sd-bus requires the unused parts of each element's union to be zero.
    std::memset(static_cast<void*>(vtable.data()), 0, sizeof(sd_bus_vtable) * vtable.size());
    vtable[0].type = _SD_BUS_VTABLE_START;
    vtable[0].flags = 0;
    vtable[0].x.start.element_size = sizeof(sd_bus_vtable);
    vtable[0].x.start.features = _SD_BUS_VTABLE_PARAM_NAMES;
    vtable[0].x.start.vtable_format_reference = api.vtable_format;
    std::memcpy(static_cast<void*>(vtable.data() + 1), instance_members, sizeof instance_members);
    return vtable;
}

}  // namespace

namespace {

// Connects, registers the objects and owns the name: at start, and again
// whenever the bus daemon went away.
Result<void> attach(DbusServer::State& state) {
    auto opened = open_bus(*state.api, state.address, 5000000);
    if (!opened)
        return tl::unexpected(opened.error());
    BusPtr bus = std::move(*opened);
    sd_bus* raw = bus.get();
    int r = 0;

    r = state.api->sd_bus_add_fallback_vtable(raw, nullptr, instance_prefix, interface_name, state.vtable.data(),
                                              find_instance, &state);
    if (r >= 0)
        r = state.api->sd_bus_add_fallback_vtable(raw, nullptr, group_prefix, interface_name, state.vtable.data(),
                                                  find_group, &state);
    if (r >= 0)
        r = state.api->sd_bus_add_node_enumerator(raw, nullptr, root_path, enumerate, &state);
    if (r >= 0)
        r = state.api->sd_bus_add_object_manager(raw, nullptr, root_path);
    if (r < 0)
        return make_error(ErrorKind::system, fmt::format("cannot register D-Bus objects: {}", std::strerror(-r)));
    r = state.api->sd_bus_request_name(raw, state.name.c_str(), 0);
    if (r < 0)
        return make_error(ErrorKind::unavailable,
                          fmt::format("cannot own the bus name {}: {}", quote(state.name), std::strerror(-r)));
    state.bus = std::move(bus);
    return {};
}

}  // namespace

Result<std::unique_ptr<DbusServer>> DbusServer::start(const std::string& bus, const std::string& name,
                                                      std::vector<InstanceProperties> initial) {
    auto api = sd_bus_api();
    if (!api)
        return tl::unexpected(api.error());
    std::unique_ptr<DbusServer> server(new DbusServer());
    server->state_ = std::make_unique<State>();
    auto& state = *server->state_;
    state.api = *api;
    state.address = bus;
    state.name = name;
    state.vtable = make_vtable(*state.api);
    for (auto& p : initial)
        state.objects.emplace(key_of(p.kind, p.name), std::move(p));
    if (auto ok = attach(state); !ok)
        return tl::unexpected(ok.error());
    server->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!server->wake_)
        return system_error("cannot create an eventfd", errno);
    server->thread_ = std::thread([s = server.get()] { s->run(); });
    return server;
}

DbusServer::~DbusServer() {
    stopping_ = true;
    if (wake_) {
        std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
    }
    if (thread_.joinable())
        thread_.join();
}

void DbusServer::update(std::vector<InstanceProperties> updates) {
    {
        std::lock_guard lock(mutex_);
        for (auto& u : updates)
            queued_.push_back(std::move(u));
    }
    std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

void DbusServer::run() {
    auto& state = *state_;
    const auto* api = state.api;
    auto last_attempt = std::chrono::steady_clock::now();
    while (!stopping_) {
        if (!state.bus) {
            // The bus daemon went away: try again every second, serving the
            // same objects once it is back. Updates still reach the table.
            pollfd p{wake_.get(), POLLIN, 0};
            if (::poll(&p, 1, 1000) > 0) {
                std::uint64_t count = 0;
                (void)!::read(wake_.get(), &count, sizeof count);
                std::lock_guard lock(mutex_);
                for (auto& u : queued_)
                    state.objects.insert_or_assign(key_of(u.kind, u.name), u);
                queued_.clear();
            }
            if (!stopping_ && std::chrono::steady_clock::now() - last_attempt >= std::chrono::seconds(1)) {
                last_attempt = std::chrono::steady_clock::now();
                (void)attach(state);
            }
            continue;
        }
        sd_bus* bus = state.bus.get();
        int r = api->sd_bus_process(bus, nullptr);
        if (r > 0)
            continue;
        if (r < 0) {
            state.bus.reset();
            continue;
        }
        std::uint64_t timeout_usec = UINT64_MAX;
        (void)api->sd_bus_get_timeout(bus, &timeout_usec);
        int timeout_ms = -1;
        if (timeout_usec != UINT64_MAX) {
            timespec now{};
            clock_gettime(CLOCK_MONOTONIC, &now);
            auto now_usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
            timeout_ms = timeout_usec > now_usec ? static_cast<int>((timeout_usec - now_usec + 999) / 1000) : 0;
        }
        pollfd fds[2] = {{api->sd_bus_get_fd(bus), static_cast<short>(api->sd_bus_get_events(bus)), 0},
                         {wake_.get(), POLLIN, 0}};
        if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
            break;
        if (!(fds[1].revents & POLLIN))
            continue;
        std::uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
        std::vector<InstanceProperties> updates;
        {
            std::lock_guard lock(mutex_);
            updates.swap(queued_);
        }
        for (auto& u : updates) {
            auto key = key_of(u.kind, u.name);
            auto [it, added] = state.objects.insert_or_assign(key, u);
            auto path = state.path_of(it->second);
            if (path.empty())
                continue;
            // A new instance is announced (InterfacesAdded) and, like every
            // other, gets its PropertiesChanged: one per transition.
            if (added)
                (void)api->sd_bus_emit_object_added(bus, path.c_str());
            char* names[] = {const_cast<char*>("State"), const_cast<char*>("Priority"),
                             const_cast<char*>("LastChange"), nullptr};
            (void)api->sd_bus_emit_properties_changed_strv(bus, path.c_str(), interface_name, names);
        }
        (void)api->sd_bus_flush(bus);
    }
}

}  // namespace kanotify
