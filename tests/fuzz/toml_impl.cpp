// SPDX-License-Identifier: GPL-2.0-or-later
// toml++'s implementation, compiled into the libFuzzer config target only.
// Debian ships toml++ as a prebuilt shared library, which libFuzzer cannot
// see into and AddressSanitizer does not instrument; these definitions take
// the place of the library's (the executable's own symbols win), so the
// fuzzer is guided by coverage of the TOML parser itself. The replay build
// keeps using the system library, exactly as kanotify does.
#undef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 0
#define TOML_IMPLEMENTATION 1
#include <toml++/toml.h>
