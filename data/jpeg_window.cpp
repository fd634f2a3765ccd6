// jpeg_window.cpp — jpeg_decode_window_u8 (image_decode.h): a crop window of a JPEG through
// libjpeg-turbo's libjpeg API, DCT-scaled (scale_num / scale_denom), columns cut with
// jpeg_crop_scanline, rows above skipped with jpeg_skip_scanlines, rows below never decoded
// (jpeg_abort_decompress). libjpeg reports fatal errors through error_exit, which must not
// return: a setjmp / longjmp pair inside decode_rows, whose frame holds no C++ object, turns them
// into pfq::Error naming the file. Compiled on its own (not in libpfq's unity groups): jpeglib.h's
// macros (LOCAL, GLOBAL, TRUE, ...) stay out of other files. Stubs when the build has no libjpeg.
#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <string>

#include "core/error.h"
#include "data/image_decode.h"
#include "data/jpeg_common.h"

#ifdef PFQ_WITH_LIBJPEG
#include <jpeglib.h>
#endif

namespace pfq::data {

#ifdef PFQ_WITH_LIBJPEG

bool jpeg_window_compiled() { return true; }

namespace {

// libjpeg's error manager first (libjpeg hands back its address), then what the handlers keep.
struct ErrorState {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char fatal[JMSG_LENGTH_MAX];
  char first_warning[JMSG_LENGTH_MAX];
  bool warned;
};

void on_fatal(j_common_ptr c) {
  ErrorState* e = reinterpret_cast<ErrorState*>(c->err);
  (*c->err->format_message)(c, e->fatal);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) keep the first one's text, judged after decoding as TurboJPEG's message
// is (it, too, is the first warning's); trace messages (level >= 0) are dropped.
void on_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  ErrorState* e = reinterpret_cast<ErrorState*>(c->err);
  if (!e->warned) (*c->err->format_message)(c, e->first_warning);
  e->warned = true;
  ++c->err->num_warnings;
}

// The decompressor and its error manager, destroyed whatever happens (a pfq::Error or bad_alloc
// thrown while decoding passes through decode_rows, which holds nothing to destroy).
struct Decompressor {
  jpeg_decompress_struct cinfo{};
  ErrorState err{};
  bool created = false;
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// What decode_rows is asked for and what it reports back.
struct Job {
  const std::vector<uint8_t>* bytes;
  int scale_num, scale_denom;
  JDIMENSION expect_h, expect_w;  // the scaled picture, as TurboJPEG computed it
  JDIMENSION x0, x1, y0, y1;      // picture columns [x0, x1) and rows [y0, y1) to decode
  JDIMENSION stored_left = 0, stored_width = 0;
  ImageU8* out;
  std::vector<uint8_t>* cmyk;   // CMYK / YCCK files: the window's 4-byte pixels, converted after
  std::vector<JSAMPROW>* rows;  // one pointer per window row
};

// The libjpeg calls. Returns false after a fatal libjpeg error (d.err.fatal holds its message):
// only plain data lives in this frame, so longjmp back into it skips no destructor.
bool decode_rows(Decompressor& d, Job& job) {
  jpeg_decompress_struct& cinfo = d.cinfo;
  cinfo.err = jpeg_std_error(&d.err.mgr);
  d.err.mgr.error_exit = on_fatal;
  d.err.mgr.emit_message = on_message;
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  d.created = true;
  jpeg_mem_src(&cinfo, job.bytes->data(), static_cast<unsigned long>(job.bytes->size()));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // TurboJPEG's TJPF_CMYK / TJPF_RGB
  cinfo.scale_num = static_cast<unsigned int>(job.scale_num);
  cinfo.scale_denom = static_cast<unsigned int>(job.scale_denom);
  cinfo.dct_method = JDCT_ISLOW;      // TurboJPEG's default (no TJFLAG_FASTDCT)
  cinfo.do_fancy_upsampling = TRUE;   // nor TJFLAG_FASTUPSAMPLE
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_height != job.expect_h || cinfo.output_width != job.expect_w) {
    std::snprintf(d.err.fatal, sizeof d.err.fatal, "libjpeg decodes %ux%u pixels, the header says %ux%u",
                  cinfo.output_width, cinfo.output_height, job.expect_w, job.expect_h);
    return false;
  }
  JDIMENSION xoff = job.x0, width = job.x1 - job.x0;
  jpeg_crop_scanline(&cinfo, &xoff, &width);  // xoff moves left to the iMCU grid
  job.stored_left = xoff;
  job.stored_width = width;
  ImageU8& out = *job.out;
  out.height = job.y1 - job.y0;
  out.width = width;
  const size_t pixels = static_cast<size_t>(out.height) * width;
  out.hwc.resize(pixels * 3);
  if (cmyk) job.cmyk->resize(pixels * 4);
  uint8_t* base = cmyk ? job.cmyk->data() : out.hwc.data();
  job.rows->resize(static_cast<size_t>(out.height));
  for (size_t y = 0; y < job.rows->size(); ++y) (*job.rows)[y] = base + y * width * (cmyk ? 4 : 3);
  if (job.y0 > 0) jpeg_skip_scanlines(&cinfo, job.y0);
  // all rows asked for at once: libjpeg then writes 4:2:0's row pairs straight into the output
  while (cinfo.output_scanline < job.y1) {
    const JDIMENSION done = cinfo.output_scanline - job.y0;
    if (jpeg_read_scanlines(&cinfo, job.rows->data() + done, job.y1 - cinfo.output_scanline) == 0) {
      std::snprintf(d.err.fatal, sizeof d.err.fatal, "libjpeg stopped at row %u", cinfo.output_scanline);
      return false;
    }
  }
  jpeg_abort_decompress(&cinfo);  // the rows below are not needed
  if (cmyk)
    for (size_t p = 0; p < pixels; ++p)
      for (size_t c = 0; c < 3; ++c) out.hwc[p * 3 + c] = jpeg_detail::cmyk_channel(base[p * 4 + c], base[p * 4 + 3]);
  return true;
}

}  // namespace

ImageU8 jpeg_decode_window_u8(const std::vector<uint8_t>& bytes, const std::string& path, std::pair<int, int> scale,
                              const CropBox& window) {
  const JpegHeader hd = turbojpeg_header(bytes, path);
  // the scaled size as libjpeg computes it (jdiv_round_up), TurboJPEG's TJSCALED
  const int64_t H = (hd.height * scale.first + scale.second - 1) / scale.second;
  const int64_t W = (hd.width * scale.first + scale.second - 1) / scale.second;
  PFQ_CHECK(window.height > 0 && window.width > 0 && window.top >= 0 && window.left >= 0 &&
                window.top + window.height <= H && window.left + window.width <= W,
            path, ": JPEG window ", window.height, "x", window.width, " at (", window.top, ", ", window.left,
            ") outside the ", H, "x", W, " picture (scale ", scale.first, "/", scale.second, ")");
  ImageU8 out;
  std::vector<uint8_t> cmyk;
  std::vector<JSAMPROW> rows;
  Job job{};
  job.bytes = &bytes;
  job.scale_num = scale.first;
  job.scale_denom = scale.second;
  job.expect_h = static_cast<JDIMENSION>(H);
  job.expect_w = static_cast<JDIMENSION>(W);
  // one column more on each side than the window: the fancy upsampler treats the decoded
  // columns' first and last as picture edges, which they are not (libjpeg.txt, "Decompressing
  // partial scanlines"); with them outside the window, its pixels are the whole decode's
  job.x0 = static_cast<JDIMENSION>(std::max<int64_t>(0, window.left - 1));
  job.x1 = static_cast<JDIMENSION>(std::min<int64_t>(W, window.left + window.width + 1));
  job.y0 = static_cast<JDIMENSION>(window.top);
  job.y1 = static_cast<JDIMENSION>(window.top + window.height);
  job.out = &out;
  job.cmyk = &cmyk;
  job.rows = &rows;
  Decompressor d;
  if (!decode_rows(d, job)) {
    PFQ_FAIL(path, ": cannot decode image (corrupt JPEG): ", d.err.fatal);
  }
  if (d.err.warned)
    PFQ_CHECK(jpeg_detail::is_benign_warning(d.err.first_warning), path, ": cannot decode image (corrupt JPEG): ",
              d.err.first_warning);
  out.top = window.top;
  out.left = job.stored_left;
  out.full_height = H;
  out.full_width = W;
  return out;
}

#else  // no libjpeg in this build

bool jpeg_window_compiled() { return false; }

ImageU8 jpeg_decode_window_u8(const std::vector<uint8_t>&, const std::string& path, std::pair<int, int>, const CropBox&) {
  PFQ_FAIL(path, ": jpeg_decode_window_u8: pfq was built without libjpeg-turbo's libjpeg API (Meson option turbojpeg;"
                 " Debian: libjpeg62-turbo-dev)");
}

#endif

}  // namespace pfq::data
