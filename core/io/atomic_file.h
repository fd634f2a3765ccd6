// atomic_file.h — crash-safe file replacement (core/io): write a temp file in the target's
// directory, fsync it, rename it over the target, fsync the directory. A crash or kill leaves
// either the old file or the new one, never a mix (at worst a stray ".<name>.tmp.<pid>.<n>").
// Leaves out: preserving the old file's mode/owner (new files get 0666 & ~umask) and locking
// against concurrent writers (the last rename wins).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace pfq::io {

// Appends `size` bytes to the file being written; throws pfq::Error on I/O failure.
using WriteBytes = std::function<void(const void* data, size_t size)>;

// Replaces `path` with `bytes` atomically.
// ensures: on return the new contents are durable; on any failure the old file (if any) is
// untouched, the temp file is removed and pfq::Error names the path and the errno text.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Streaming variant: `producer` calls `write` any number of times (output is buffered).
// An exception thrown by `producer` removes the temp file and propagates unchanged.
void write_file_atomic_streamed(const std::string& path,
                                const std::function<void(const WriteBytes& write)>& producer);

// A data-parallel run writes its files from rank 0 alone: the other ranks call this once at
// start, and both writers above then return without writing (the producer is not called).
void disable_writes_on_this_process();
bool writes_enabled();

}  // namespace pfq::io
