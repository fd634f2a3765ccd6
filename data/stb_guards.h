// stb_guards.h — checks run on a JPEG or PNG file's bytes before stb_image parses them
// (data/image_decode.cpp): each refuses, with pfq::Error naming the file and the byte offset, a
// structure that makes Debian 12's stb_image (v2.27, git 2022-09-08) corrupt memory, read
// uninitialised memory or allocate what the file cannot justify. Inputs that showed each defect
// are kept in fuzz/regressions/image/. Files of other formats pass unchecked.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pfq::data {

// JPEG: Huffman tables with more than 256 codes; scans using a Huffman or quantization table no
// segment before them defined; frame components that no scan decodes.
void check_jpeg_for_stb(const std::vector<uint8_t>& bytes, const std::string& path);
// PNG: chunks whose length runs past the end of the file; an empty first IDAT chunk.
void check_png_for_stb(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace pfq::data
