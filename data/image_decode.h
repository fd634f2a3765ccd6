/// \file
/// image_decode.h — JPEG and PNG files to float CHW images (data/dataset.h's Image), for the image
/// folders (image_folder.h). JPEGs go through libjpeg-turbo's TurboJPEG API when pfq is built with
/// it (Meson feature `turbojpeg`), which can also decode at a reduced scale in the DCT domain (1/2,
/// 1/4, 1/8, like PIL's draft mode); training's crop windows alone through its libjpeg API
/// (jpeg_decode_window_u8). PNGs, and JPEGs in a build without it, through stb_image. Other formats
/// are refused. Colour handling matches PIL's convert("RGB"), torchvision's ImageFolder loader.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pfq::data {

/// Bounds checked before a file is read or decoded.
struct DecodeLimits {
  /// Images whose header claims more pixels are rejected before decoding (memory bound).
  int64_t max_pixels = int64_t{1} << 26;
  /// Files larger than this are rejected before being read.
  int64_t max_file_bytes = int64_t{1} << 28;
};

/// Given the image's full height and width (from its header), the smallest factor 0 < f <= 1 by
/// which the decoder may shrink it; the decoder picks the smallest DCT scale 1/2^k >= f (JPEG with
/// TurboJPEG only; everything else decodes at full size).
using SourceScaleFn = std::function<double(int64_t height, int64_t width)>;

/// Given the picture's height and width as it will be decoded (after the source scale's
/// shrinking), the window of it that will be used (Transform::source_window): a JPEG decoder that
/// can decode a window only (jpeg_window_compiled()) then stores no more than that, rounded out to
/// whole iMCU columns (ImageU8's top / left / full size say where it lies).
using SourceWindowFn = std::function<CropBox(int64_t height, int64_t width)>;

/// Decodes JPEG or PNG bytes into 3-channel float CHW in [0, 1]. Grey is replicated, alpha is
/// dropped (not composited), CMYK / YCCK JPEGs are converted as PIL does, 16-bit PNG samples keep
/// their high byte (PIL's 16-bit RGB; PIL clips 16-bit grey instead: docs/pretrained.md). Throws
/// pfq::Error naming `path` and the decoder's reason (corrupt, truncated, too large, not an image).
Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeLimits& limits = {},
                         const SourceScaleFn& source_scale = {});

/// The same as 8-bit RGB (decode_image_bytes is to_float of it; transforms.h); with a
/// `source_window`, a JPEG may come back holding only that window of the picture (its pixels
/// those of the whole decode at the same scale; docs/performance.md).
ImageU8 decode_image_bytes_u8(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeLimits& limits = {},
                              const SourceScaleFn& source_scale = {}, const SourceWindowFn& source_window = {});

/// The whole file through decode_image_bytes (read after checking its size against the limit).
Image decode_image_file(const std::string& path, int64_t max_pixels = int64_t{1} << 26,
                        int64_t max_file_bytes = int64_t{1} << 28);
/// The file's bytes; throws pfq::Error naming `path` when it is larger than max_file_bytes or unreadable.
std::vector<uint8_t> read_image_file(const std::string& path, int64_t max_file_bytes);

/// True for the extensions listed as images: .jpg .jpeg .png (any case).
bool has_image_extension(const std::string& path);

/// Whether JPEGs are decoded by libjpeg-turbo (the build found TurboJPEG) or by stb_image.
bool turbojpeg_compiled();

// ---- the TurboJPEG decoder (data/jpeg_turbo.cpp; unavailable unless turbojpeg_compiled()) ----
/// A JPEG's size, from its frame header.
struct JpegHeader {
  /// Dimensions in pixels.
  ///@{
  int64_t height = 0, width = 0;
  ///@}
};
/// Width and height from a JPEG's frame header; throws pfq::Error naming `path` when unreadable.
JpegHeader turbojpeg_header(const std::vector<uint8_t>& bytes, const std::string& path);
/// The smallest of TurboJPEG's scales 1, 1/2, 1/4, 1/8 that is >= min_scale, as {num, denom}
/// (its other M/8 scales decode slower than full size on libjpeg-turbo 2.1: left out).
std::pair<int, int> turbojpeg_scale(double min_scale);
/// Decodes at the given scale (from turbojpeg_scale) to float CHW in [0, 1]: accurate integer
/// IDCT and fancy upsampling (libjpeg's defaults, as PIL and djpeg decode).
Image turbojpeg_decode(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale = {1, 1});
/// The same as 8-bit RGB.
ImageU8 turbojpeg_decode_u8(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale = {1, 1});

// ---- window decoding with libjpeg-turbo's libjpeg API (data/jpeg_window.cpp) ----
/// Whether jpeg_decode_window_u8 is available (the build found libjpeg-turbo's jpeglib.h with
/// jpeg_crop_scanline: Meson feature `turbojpeg`, Debian libjpeg62-turbo-dev).
bool jpeg_window_compiled();
/// Decodes the rows and columns of `window` (in the coordinates of the picture scaled by
/// `scale`, inside it) and little more: columns from one left of the window, moved left to the
/// iMCU grid (jpeg_crop_scanline), to one right of it (so that neither edge of the fancy
/// upsampler's shortened rows lies in the window), rows above it skipped (jpeg_skip_scanlines),
/// rows below not decoded. The stored pixels equal turbojpeg_decode_u8's at
/// the same scale (tests/data/test_jpeg_window.cpp). Errors and warnings as turbojpeg_decode_u8's,
/// except that damage wholly below the window's rows goes unseen.
ImageU8 jpeg_decode_window_u8(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale,
                              const CropBox& window);

}  // namespace pfq::data
