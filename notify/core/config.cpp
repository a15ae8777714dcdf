// SPDX-License-Identifier: GPL-2.0-or-later
// kanotify.toml, read with toml++. Each table is walked key by key: a known
// key of the wrong type and an unknown key are both errors that name the key
// and the table, so a typo never silently turns an action off.
#include "kanotify/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <functional>
#include <string>

#include <fmt/format.h>

// toml++ header-only (see notify/CMakeLists.txt), its internal assertions
// compiled out as in Debian's release build of the library.
#define TOML_HEADER_ONLY 1
#define TOML_ASSERT(expr) static_cast<void>(0)
#include <toml++/toml.h>

#include "kanotify/event.hpp"
#include "ip_address.hpp"
#include "netns.hpp"
#include "systemd_units.hpp"
#include "unique_fd.hpp"

namespace kanotify {

namespace {

constexpr std::size_t max_config_bytes = 1024 * 1024;

class TableReader {
  public:
    TableReader(const toml::table& table, std::string where) : table_(table), where_(std::move(where)) {}

    // Calls `handle` for each key; `handle` returns false for unknown keys.
    Result<void> each(const std::function<Result<bool>(const std::string&, const toml::node&)>& handle) const {
        for (const auto& [key, node] : table_) {
            auto known = handle(std::string(key.str()), node);
            if (!known)
                return tl::unexpected(known.error());
            if (!*known)
                return error(std::string(key.str()), "is not a known setting");
        }
        return {};
    }

    [[nodiscard]] tl::unexpected<Error> error(const std::string& key, const std::string& what) const {
        return make_error(ErrorKind::config, fmt::format("{}: {} {}", where_, quote(key), what));
    }

    Result<bool> read(const std::string& key, const toml::node& node, std::string& out) const {
        auto value = node.value<std::string>();
        if (!node.is_string() || !value)
            return error(key, "must be a string");
        if (value->find('\0') != std::string::npos)
            return error(key, "must not contain a NUL byte");
        out = *value;
        return true;
    }
    Result<bool> read(const std::string& key, const toml::node& node, bool& out) const {
        if (!node.is_boolean())
            return error(key, "must be true or false");
        out = *node.value<bool>();
        return true;
    }
    Result<bool> read(const std::string& key, const toml::node& node, std::int64_t& out, std::int64_t min,
                      std::int64_t max) const {
        if (!node.is_integer())
            return error(key, "must be an integer");
        auto v = *node.value<std::int64_t>();
        if (v < min || v > max)
            return error(key, fmt::format("must be between {} and {}, not {}", min, max, v));
        out = v;
        return true;
    }
    Result<bool> read(const std::string& key, const toml::node& node, std::vector<std::string>& out) const {
        const auto* array = node.as_array();
        if (!array)
            return error(key, "must be an array of strings");
        std::vector<std::string> values;
        for (const auto& item : *array) {
            std::string s;
            if (auto ok = read(key, item, s); !ok)
                return tl::unexpected(ok.error());
            values.push_back(std::move(s));
        }
        out = std::move(values);
        return true;
    }
    Result<bool> read(const std::string& key, const toml::node& node, std::vector<Argv>& out) const {
        const auto* array = node.as_array();
        if (!array)
            return error(key, "must be an array of argument vectors, e.g. [[\"/usr/sbin/x\", \"--y\"]]");
        std::vector<Argv> vectors;
        for (const auto& item : *array) {
            Argv argv;
            if (!item.is_array())
                return error(key, "must be an array of argument vectors, e.g. [[\"/usr/sbin/x\", \"--y\"]]");
            if (auto ok = read(key, item, argv); !ok)
                return tl::unexpected(ok.error());
            if (argv.empty() || argv.front().empty() || argv.front().front() != '/')
                return error(key, "needs each command as an absolute path followed by its arguments");
            vectors.push_back(std::move(argv));
        }
        out = std::move(vectors);
        return true;
    }

    [[nodiscard]] const std::string& where() const { return where_; }

  private:
    const toml::table& table_;
    std::string where_;
};

Result<bool> one_of(const TableReader& r, const std::string& key, const toml::node& node, std::string& out,
                    std::initializer_list<std::string_view> allowed) {
    std::string value;
    if (auto ok = r.read(key, node, value); !ok)
        return ok;
    for (auto a : allowed)
        if (value == a) {
            out = value;
            return true;
        }
    return r.error(key, fmt::format("has the unknown value {}", quote(value)));
}

Result<bool> bus_address(const TableReader& r, const std::string& key, const toml::node& node, std::string& out,
                         bool user_allowed) {
    std::string value;
    if (auto ok = r.read(key, node, value); !ok)
        return ok;
    if (value == "system" || (user_allowed && value == "user") || value.starts_with("unix:")) {
        out = value;
        return true;
    }
    return r.error(key, fmt::format("must be \"system\"{} or a D-Bus address such as \"unix:path=/run/x\", not {}",
                                    user_allowed ? ", \"user\"" : "", quote(value)));
}

const toml::table* as_table(const TableReader& r, const std::string& key, const toml::node& node,
                            Result<bool>& status) {
    const auto* table = node.as_table();
    if (!table)
        status = r.error(key, "must be a table");
    return table;
}

constexpr std::int64_t big = std::int64_t{1} << 40;

Result<void> read_garp(const toml::table& t, const std::string& where, GarpSettings& g) {
    TableReader r(t, where);
    g.enabled = true;
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "mode") return one_of(r, k, n, g.mode, {"request", "reply", "both"});
        if (k == "count") return r.read(k, n, g.count, 0, 1000);
        if (k == "interval_ms") return r.read(k, n, g.interval_ms, 0, 3600000);
        if (k == "delay_ms") return r.read(k, n, g.delay_ms, 0, 3600000);
        if (k == "refresh_s") return r.read(k, n, g.refresh_s, 0, 86400);
        if (k == "rate_pps") return r.read(k, n, g.rate_pps, 1, 1000000);
        return false;
    });
}

Result<void> read_dbus(const toml::table& t, const std::string& where, DbusSettings& d) {
    TableReader r(t, where);
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "bus") return bus_address(r, k, n, d.bus, true);
        if (k == "signal") return r.read(k, n, d.signal);
        if (k == "destination") return r.read(k, n, d.destination);
        if (k == "name") return r.read(k, n, d.name);
        if (k == "timeout_ms") return r.read(k, n, d.timeout_ms, 1, 3600000);
        if (k == "retries") return r.read(k, n, d.retries, 0, 100);
        return false;
    });
}

Result<void> read_socket(const toml::table& t, const std::string& where, SocketSettings& s) {
    TableReader r(t, where);
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "path") return r.read(k, n, s.path);
        if (k == "owner_uid") return r.read(k, n, s.owner_uid, -1, 0xfffffffe);
        if (k == "timeout_ms") return r.read(k, n, s.timeout_ms, 1, 3600000);
        if (k == "retries") return r.read(k, n, s.retries, 0, 100);
        return false;
    });
}

Result<void> read_conntrackd(const toml::table& t, const std::string& where, ConntrackdSettings& c) {
    TableReader r(t, where);
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "enabled") return r.read(k, n, c.enabled);
        if (k == "config") return r.read(k, n, c.config);
        return false;
    });
}

Result<void> read_hooks(const toml::table& t, const std::string& where, HookSettings& h) {
    TableReader r(t, where);
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "master" || k == "backup" || k == "fault" || k == "stop" || k == "deleted" ||
            k == "master_rx_lower_pri" || k == "any")
            return r.read(k, n, h.by_state[k]);
        if (k == "timeout_ms") return r.read(k, n, h.timeout_ms, 1, 86400000);
        if (k == "coalesce") return r.read(k, n, h.coalesce);
        if (k == "keepalived_args") return r.read(k, n, h.keepalived_args);
        if (k == "user") return r.read(k, n, h.user);
        return false;
    });
}

Result<void> read_systemd(const toml::table& t, const std::string& where, SystemdSettings& s) {
    TableReader r(t, where);
    return r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "bus") return bus_address(r, k, n, s.bus, false);
        if (k == "timeout_ms") return r.read(k, n, s.timeout_ms, 1, 86400000);
        return false;
    });
}

// The tables that exist both globally and per instance.
Result<bool> read_shared_table(const TableReader& r, const std::string& k, const toml::node& n,
                               InstanceSettings& s) {
    Result<bool> status = true;
    auto sub = [&](auto reader, auto& target) -> Result<bool> {
        const auto* table = as_table(r, k, n, status);
        if (!table)
            return status;
        if (auto ok = reader(*table, r.where() + "." + k, target); !ok)
            return tl::unexpected(ok.error());
        return true;
    };
    if (k == "garp") return sub(read_garp, s.garp);
    if (k == "dbus") return sub(read_dbus, s.dbus);
    if (k == "socket") return sub(read_socket, s.socket);
    if (k == "conntrackd") return sub(read_conntrackd, s.conntrackd);
    if (k == "hooks") return sub(read_hooks, s.hooks);
    if (k == "systemd") return sub(read_systemd, s.systemd);
    return false;
}

Result<void> read_instance(const toml::table& t, const std::string& where, InstanceSettings& s) {
    TableReader r(t, where);
    auto read = r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
        if (k == "namespace") return r.read(k, n, s.netns);
        if (k == "interface") return r.read(k, n, s.interface);
        if (k == "addresses") return r.read(k, n, s.addresses);
        if (k == "router_id") return r.read(k, n, s.router_id);
        if (k == "units") return r.read(k, n, s.units);
        if (k == "target") return r.read(k, n, s.target);
        return read_shared_table(r, k, n, s);
    });
    if (!read)
        return read;
    if (auto ok = validate_instance_settings(s); !ok)
        return make_error(ErrorKind::config, fmt::format("{}: {}", where, ok.error().message));
    return {};
}

// Tables whose actions this version does not perform yet: read, validated,
// and reported, never silently ignored.
constexpr std::string_view future_tables[] = {"conntrackd"};

void note_future(const toml::table& t, const std::string& where, std::vector<std::string>& out) {
    for (auto key : future_tables)
        if (t.contains(key))
            out.push_back(fmt::format("{}[{}]", where, key));
}

Result<void> read_top(const toml::table& t, const std::string& origin, Config& c) {
    TableReader r(t, origin);
    note_future(t, "", c.not_yet_acted_on);
    if (const auto* instances = t["instance"].as_table())
        for (const auto& [key, node] : *instances)
            if (const auto* table = node.as_table())
                note_future(*table, fmt::format("instance.{} ", key.str()), c.not_yet_acted_on);
    // Instances inherit the global tables, so read those first.
    if (auto ok = r.each([&](const std::string& k, const toml::node& n) -> Result<bool> {
            if (k == "instance")
                return true;
            if (k == "state_dir") return r.read(k, n, c.state_dir);
            if (k == "neutron_state_names") return one_of(r, k, n, c.neutron_state_names, {"current", "legacy"});
            Result<bool> status = true;
            if (k == "log") {
                const auto* table = as_table(r, k, n, status);
                if (!table) return status;
                TableReader lr(*table, origin + ": log");
                auto ok2 = lr.each([&](const std::string& lk, const toml::node& ln) -> Result<bool> {
                    if (lk == "file") return lr.read(lk, ln, c.log_file);
                    if (lk == "level") return one_of(lr, lk, ln, c.log_level, {"debug", "info", "notice", "warning", "error"});
                    return false;
                });
                if (!ok2) return tl::unexpected(ok2.error());
                return true;
            }
            if (k == "journal") {
                const auto* table = as_table(r, k, n, status);
                if (!table) return status;
                TableReader jr(*table, origin + ": journal");
                auto ok2 = jr.each([&](const std::string& jk, const toml::node& jn) -> Result<bool> {
                    if (jk == "max_bytes") return jr.read(jk, jn, c.journal.max_bytes, 4096, big);
                    if (jk == "keep") return jr.read(jk, jn, c.journal.keep, 1, 1000);
                    return false;
                });
                if (!ok2) return tl::unexpected(ok2.error());
                return true;
            }
            if (k == "fifo") {
                const auto* table = as_table(r, k, n, status);
                if (!table) return status;
                TableReader fr(*table, origin + ": fifo");
                auto ok2 = fr.each([&](const std::string& fk, const toml::node& fn) -> Result<bool> {
                    if (fk == "grace_ms") return fr.read(fk, fn, c.fifo.grace_ms, 0, 1800);
                    if (fk == "checker_lines") return fr.read(fk, fn, c.fifo.checker_lines);
                    return false;
                });
                if (!ok2) return tl::unexpected(ok2.error());
                return true;
            }
            if (k == "metrics") {
                const auto* table = as_table(r, k, n, status);
                if (!table) return status;
                TableReader mr(*table, origin + ": metrics");
                auto ok2 = mr.each([&](const std::string& mk, const toml::node& mn) -> Result<bool> {
                    if (mk == "textfile") return mr.read(mk, mn, c.metrics_textfile);
                    return false;
                });
                if (!ok2) return tl::unexpected(ok2.error());
                return true;
            }
            return read_shared_table(r, k, n, c.defaults);
        });
        !ok)
        return ok;
    if (!c.metrics_textfile.empty() && c.metrics_textfile.front() != '/')
        return make_error(ErrorKind::config, fmt::format("{}: metrics textfile {} must be an absolute path", origin,
                                                         quote(c.metrics_textfile)));
    if (auto ok = validate_instance_settings(c.defaults); !ok)
        return make_error(ErrorKind::config, fmt::format("{}: {}", origin, ok.error().message));
    const auto* instances = t["instance"].as_table();
    if (!instances && t.contains("instance"))
        return r.error("instance", "must be a table of [instance.NAME] tables");
    if (!instances)
        return {};
    for (const auto& [key, node] : *instances) {
        std::string name(key.str());
        if (auto ok = validate_name(name); !ok)
            // Quoted: the key is not a valid name, it may hold a line break.
            return make_error(ErrorKind::config,
                              fmt::format("{}: [instance.{}]: {}", origin, quote(name), ok.error().message));
        const auto* table = node.as_table();
        if (!table)
            return r.error("instance." + name, "must be a table");
        InstanceSettings settings = c.defaults;
        if (auto ok = read_instance(*table, origin + ": instance." + name, settings); !ok)
            return ok;
        c.instances.emplace(std::move(name), std::move(settings));
    }
    return {};
}

}  // namespace

Result<void> validate_instance_settings(const InstanceSettings& settings) {
    if (!settings.netns.empty())
        if (auto ok = validate_netns(settings.netns); !ok)
            return ok;
    if (!settings.interface.empty())
        if (auto ok = validate_interface(settings.interface); !ok)
            return ok;
    for (const auto& address : settings.addresses)
        if (auto ok = parse_ip_address(address); !ok)
            return tl::unexpected(ok.error());
    // It goes into an HTTP header: the name rules keep CR, LF and friends out.
    if (!settings.router_id.empty())
        if (auto ok = validate_name(settings.router_id); !ok)
            return make_error(ErrorKind::invalid, fmt::format("router_id: {}", ok.error().message));
    for (const auto* bus_name : {&settings.dbus.destination, &settings.dbus.name}) {
        if (bus_name->empty())
            continue;
        const auto& d = *bus_name;
        bool ok = d.size() <= 255 && d.find('.') != std::string::npos && d.front() != '.' && d.back() != '.';
        for (char c : d)
            ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.' || c == ':');
        if (!ok)
            return make_error(ErrorKind::invalid, fmt::format("dbus destination {} is not a D-Bus bus name",
                                                              quote(d)));
    }
    for (const auto& unit : settings.units)
        if (auto ok = validate_unit_name(unit); !ok)
            return ok;
    if (!settings.socket.path.empty() && settings.socket.path.front() != '/')
        return make_error(ErrorKind::invalid,
                          fmt::format("socket path {} must be absolute", quote(settings.socket.path)));
    return {};
}

const InstanceSettings& Config::for_instance(const std::string& name) const {
    auto it = instances.find(name);
    return it == instances.end() ? defaults : it->second;
}

Result<Config> parse_config(std::string_view text, const std::string& origin) {
    Config config;
    config.source_path = origin;
    // Every setting is ASCII (paths, names, addresses). toml++ 3.3.0 reaches
    // undefined behaviour on some non-ASCII characters outside strings
    // (upstream issues 190 and 295), so none get that far.
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80 || c == 0) {
            std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(i), '\n'));
            return make_error(ErrorKind::config,
                              fmt::format("{}:{}: byte 0x{:02x}: the configuration must be ASCII", origin, line, c));
        }
    }
    try {
        auto table = toml::parse(text, origin);
        if (auto ok = read_top(table, origin, config); !ok)
            return tl::unexpected(ok.error());
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        return make_error(ErrorKind::config,
                          fmt::format("{}:{}:{}: {}", origin, where.line, where.column, e.description()));
    }
    if (config.state_dir.empty() || config.state_dir.front() != '/')
        return make_error(ErrorKind::config, fmt::format("{}: state_dir must be an absolute path, not {}", origin,
                                                         quote(config.state_dir)));
    return config;
}

Result<Config> load_config(const LoadOptions& options) {
    UniqueFd fd(::open(options.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        int err = errno;
        if (err == ENOENT && !options.required) {
            Config defaults;
            return defaults;
        }
        auto e = system_error(fmt::format("cannot open configuration {}", quote(options.path)), err);
        e.value().kind = options.required ? ErrorKind::config : ErrorKind::system;
        return e;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return system_error(fmt::format("cannot stat configuration {}", quote(options.path)), errno);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorKind::config, fmt::format("configuration {} is not a regular file", quote(options.path)));
    // Like keepalived's script security: whoever can write the configuration
    // decides what root runs, so only root may be able to.
    if (options.enforce_owner && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0))
        return make_error(ErrorKind::config,
                          fmt::format("refusing configuration {}: running as root, it must be owned by root and "
                                      "writable by no one else (owner uid {}, mode {:04o}); fix with "
                                      "chown root: and chmod go-w",
                                      quote(options.path), st.st_uid, st.st_mode & 07777));
    if (st.st_size > static_cast<off_t>(max_config_bytes))
        return make_error(ErrorKind::config, fmt::format("configuration {} is larger than {} bytes",
                                                         quote(options.path), max_config_bytes));
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::read(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(fmt::format("cannot read configuration {}", quote(options.path)), errno);
        if (n == 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    text.resize(done);
    return parse_config(text, options.path);
}

}  // namespace kanotify
