// jpeg_common.h — what the two libjpeg-turbo decoders share (jpeg_turbo.cpp: TurboJPEG, whole
// pictures; jpeg_window.cpp: the libjpeg API, crop windows): which warnings still give a whole
// image, and PIL's CMYK conversion. Internal to data/ (not installed).
#pragma once
#include <cstdint>
#include <string>

namespace pfq::data::jpeg_detail {

// Whether libjpeg's (first) warning message is one of jerror.h's JWRN_* after which the image is
// whole, as PIL accepts it. "Premature end of JPEG file" (a truncated file: grey rows) is not
// accepted, as PIL refuses it.
inline bool is_benign_warning(const std::string& m) {
  for (const char* w : {"Corrupt JPEG data: ", "Warning: unknown JFIF revision", "Unknown Adobe color transform",
                        "Inconsistent progression sequence", "Invalid SOS parameters for sequential JPEG"})
    if (m.rfind(w, 0) == 0) return m.find("premature end") == std::string::npos;
  return false;
}

// PIL's cmyk2rgb (libImaging/Convert.c) on the inverted CMYK that Adobe JPEGs store and PIL reads
// as "CMYK;I": with c, k the stored (inverted) values, r = k - (255 - c) * k / 255 rounded as
// PIL's MULDIV255, i.e. c * k / 255.
inline uint8_t cmyk_channel(uint8_t stored_c, uint8_t stored_k) {
  const int nk = stored_k;       // 255 - K
  const int c = 255 - stored_c;  // C
  const int t = c * nk + 128;
  const int v = nk - ((t + (t >> 8)) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : v);
}

}  // namespace pfq::data::jpeg_detail
