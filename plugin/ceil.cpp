// SPDX-License-Identifier: GPL-2.0-or-later
// The statically linked libstdc++ needs one function of libm: ceil(), for
// the hash tables' rehash policy. Defined here (hidden, like everything in
// the module but the interposed calls) so that the module needs libc alone.
#include <cstdint>

extern "C" double ceil(double x) noexcept {
    // Beyond 2^52 every double is an integer; NaN and infinities fail the
    // comparison and come back unchanged, as from libm.
    constexpr double integral = 4503599627370496.0;  // 2^52
    if (!(x > -integral && x < integral))
        return x;
    auto truncated = static_cast<double>(static_cast<std::int64_t>(x));
    if (truncated < x)
        truncated += 1.0;
    // ceil(-0.5) is -0.0.
    return truncated == 0.0 && x < 0.0 ? -0.0 : truncated;
}
