// SPDX-License-Identifier: GPL-2.0-or-later
// A main() for a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput
// once over every file given, or over every regular file in each directory
// given (sorted, not recursive). This is how the committed corpora are
// replayed in every test run, with any compiler. A directory that is
// missing or empty is an error: a test that replays nothing proves nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool run_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::cerr << "replay: cannot open " << path << '\n';
        return false;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        std::cerr << "replay: cannot read " << path << '\n';
        return false;
    }
    // A copy of exactly the file's size, so that a read past the end is
    // caught by AddressSanitizer where the build has it.
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " CORPUS_DIR_OR_FILE...\n";
        return 2;
    }
    std::size_t ran = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        fs::path arg(argv[i]);
        std::error_code ec;
        auto status = fs::status(arg, ec);
        if (ec || !fs::exists(status)) {
            std::cerr << "replay: " << arg << " does not exist\n";
            ok = false;
            continue;
        }
        if (!fs::is_directory(status)) {
            if (run_file(arg))
                ++ran;
            else
                ok = false;
            continue;
        }
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(arg, ec))
            if (entry.is_regular_file())
                files.push_back(entry.path());
        if (ec) {
            std::cerr << "replay: cannot list " << arg << ": " << ec.message() << '\n';
            ok = false;
            continue;
        }
        if (files.empty()) {
            std::cerr << "replay: " << arg << " holds no inputs\n";
            ok = false;
            continue;
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            if (run_file(file))
                ++ran;
            else
                ok = false;
        }
    }
    std::cout << "replay: " << ran << " inputs ran" << (ok ? "" : ", with errors") << '\n';
    return ok ? 0 : 1;
}
