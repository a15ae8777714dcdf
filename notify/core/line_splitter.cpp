// SPDX-License-Identifier: GPL-2.0-or-later
#include "line_splitter.hpp"

namespace kanotify {

void LineSplitter::feed(std::string_view bytes, const Sink& sink) {
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        auto chunk = bytes.substr(0, nl);
        if (discarding_) {
            // Already reported; skip to the end of this overlong line.
        } else if (partial_.size() + chunk.size() > limit_) {
            partial_.clear();
            discarding_ = true;
            sink(chunk.substr(0, 64), true);
        } else {
            partial_.append(chunk);
        }
        if (nl == std::string_view::npos)
            return;
        if (!discarding_)
            sink(partial_, false);
        partial_.clear();
        discarding_ = false;
        bytes.remove_prefix(nl + 1);
    }
}

}  // namespace kanotify
