// SPDX-License-Identifier: GPL-2.0-or-later
// toml++'s implementation, compiled into the libFuzzer config target only.
// Debian ships toml++ as a prebuilt shared library, which libFuzzer cannot
// see into and AddressSanitizer does not instrument; these definitions take
// the place of the library's (the executable's own symbols win), so the
// fuzzer is guided by coverage of the TOML parser itself. The replay build
// keeps using the system library, exactly as kanotify does.
//
// The library kanotify links is a release build: its internal assertions
// are compiled out. They are here too, so that this copy behaves like that
// one. (toml++ 3.3.0's parse_key() asserts a precondition that
// parse_table_header() does not ensure, e.g. for "[\0]" or "[[[1]]]"; the
// release library reports a parse error, see crashers/config/README.md.)
#define TOML_ASSERT(expr) static_cast<void>(0)
#undef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 0
#define TOML_IMPLEMENTATION 1
#include <toml++/toml.h>
