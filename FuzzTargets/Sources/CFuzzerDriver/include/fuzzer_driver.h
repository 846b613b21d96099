#ifndef FUZZER_DRIVER_H
#define FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for a program that has its own main (a Swift
/// executable does): parses libFuzzer's flags from argv and runs `callback`
/// on every input. Built without libFuzzer, a stand-in runs `callback` once
/// on each file named in argv (a crash input replayed in a debugger).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/// Writes `size` bytes to a new file at `path` (a seed); 0 on success, else -1
/// after saying why on standard error.
int fuzz_write_file(const char *path, const uint8_t *data, size_t size);

#endif
