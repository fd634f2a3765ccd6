// jpeg_turbo.cpp — JPEG decoding with libjpeg-turbo's TurboJPEG API (image_decode.h): one
// decompressor per thread, DCT-domain scaling, CMYK/YCCK converted to RGB as PIL does. Compiled
// to stubs that throw when the build has no TurboJPEG (turbojpeg_compiled() is false then).
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "data/image_decode.h"
#include "data/jpeg_common.h"
#include "data/transforms.h"

#ifdef PFQ_WITH_TURBOJPEG
#include <turbojpeg.h>
#endif

namespace pfq::data {

#ifdef PFQ_WITH_TURBOJPEG

bool turbojpeg_compiled() { return true; }

namespace {

// A TurboJPEG decompressor owned by the calling thread (the loader's workers decode in parallel;
// a handle must not be shared between threads).
tjhandle thread_decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  PFQ_CHECK(handle.h, "TurboJPEG: cannot create a decompressor: ", tjGetErrorStr2(nullptr));
  return handle.h;
}

// TurboJPEG's message is the first warning's (or a later fatal error's: TurboJPEG 2.1 reports
// TJERR_WARNING for a fatal error too once any warning came before it, so the message decides).
using jpeg_detail::is_benign_warning;

struct TurboHeader {
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
};

TurboHeader read_turbo_header(tjhandle h, const std::vector<uint8_t>& bytes, const std::string& path) {
  TurboHeader t;
  // a warning (e.g. extraneous bytes before a marker) still reads the header, as PIL does
  if (tjDecompressHeader3(h, bytes.data(), static_cast<unsigned long>(bytes.size()), &t.width, &t.height, &t.subsamp,
                          &t.colorspace) != 0)
    PFQ_CHECK(is_benign_warning(tjGetErrorStr2(h)) && t.width > 0 && t.height > 0, path,
              ": cannot decode image (corrupt JPEG header): ", tjGetErrorStr2(h));
  return t;
}

}  // namespace

JpegHeader turbojpeg_header(const std::vector<uint8_t>& bytes, const std::string& path) {
  const TurboHeader t = read_turbo_header(thread_decompressor(), bytes, path);
  return {t.height, t.width};
}

std::pair<int, int> turbojpeg_scale(double min_scale) {
  int n = 0;
  const tjscalingfactor* f = tjGetScalingFactors(&n);
  std::pair<int, int> best{1, 1};
  double best_value = 1.0;
  for (int i = 0; f && i < n; ++i) {
    // 1/2, 1/4, 1/8 only (PIL's draft scales): libjpeg-turbo 2.1 has SIMD IDCTs for these, and
    // its 3/8..7/8 ones are plain C, slower than the full-size decode (docs/performance.md)
    const bool power_of_two = f[i].num == 1 && (f[i].denom == 2 || f[i].denom == 4 || f[i].denom == 8);
    const double v = static_cast<double>(f[i].num) / f[i].denom;
    if (power_of_two && v + 1e-12 >= min_scale && v < best_value) {
      best = {f[i].num, f[i].denom};
      best_value = v;
    }
  }
  return best;
}

ImageU8 turbojpeg_decode_u8(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale) {
  tjhandle h = thread_decompressor();
  const TurboHeader t = read_turbo_header(h, bytes, path);
  const tjscalingfactor sf{scale.first, scale.second};
  ImageU8 img;
  img.width = TJSCALED(t.width, sf);
  img.height = TJSCALED(t.height, sf);
  const size_t hw = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
  const bool cmyk = t.colorspace == TJCS_CMYK || t.colorspace == TJCS_YCCK;
  // TurboJPEG decodes CMYK files to CMYK only: into a 4-byte buffer, converted below
  std::vector<uint8_t> cmyk_pix(cmyk ? hw * 4 : 0);
  img.hwc.resize(hw * 3);
  uint8_t* dst = cmyk ? cmyk_pix.data() : img.hwc.data();
  if (tjDecompress2(h, bytes.data(), static_cast<unsigned long>(bytes.size()), dst, static_cast<int>(img.width), 0,
                    static_cast<int>(img.height), cmyk ? TJPF_CMYK : TJPF_RGB, 0) != 0) {
    const std::string why = tjGetErrorStr2(h);
    PFQ_CHECK(is_benign_warning(why), path, ": cannot decode image (corrupt JPEG): ", why);
  }
  if (cmyk)
    for (size_t p = 0; p < hw; ++p) {
      const uint8_t* s = &cmyk_pix[p * 4];
      for (int c = 0; c < 3; ++c) img.hwc[p * 3 + static_cast<size_t>(c)] = jpeg_detail::cmyk_channel(s[c], s[3]);
    }
  return img;
}

Image turbojpeg_decode(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale) {
  return to_float(turbojpeg_decode_u8(bytes, path, scale));
}

#else  // no TurboJPEG in this build

bool turbojpeg_compiled() { return false; }

JpegHeader turbojpeg_header(const std::vector<uint8_t>&, const std::string& path) {
  PFQ_FAIL(path, ": turbojpeg_header: pfq was built without TurboJPEG (Meson option turbojpeg; Debian: libturbojpeg0-dev)");
}
std::pair<int, int> turbojpeg_scale(double) { return {1, 1}; }
ImageU8 turbojpeg_decode_u8(const std::vector<uint8_t>&, const std::string& path, std::pair<int, int>) {
  PFQ_FAIL(path, ": turbojpeg_decode: pfq was built without TurboJPEG (Meson option turbojpeg; Debian: libturbojpeg0-dev)");
}
Image turbojpeg_decode(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale) {
  return to_float(turbojpeg_decode_u8(bytes, path, scale));
}

#endif

}  // namespace pfq::data
