#include "fuzzer_driver.h"

#include <stdio.h>
#include <stdlib.h>

// Weak: with -sanitize=fuzzer, libFuzzer's own definition replaces this one.
__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t)) {
    for (int index = 1; index < *argc; index++) {
        const char *path = (*argv)[index];
        if (path[0] == '-') continue;  // a libFuzzer flag: meaningless here
        FILE *file = fopen(path, "rb");
        if (!file) {
            fprintf(stderr, "fuzz: cannot open %s\n", path);
            return 1;
        }
        uint8_t *data = NULL;
        size_t size = 0, capacity = 0, got;
        do {
            if (size == capacity) {
                capacity = capacity ? capacity * 2 : 65536;
                uint8_t *grown = realloc(data, capacity);
                if (!grown) { free(data); fclose(file); return 1; }
                data = grown;
            }
            got = fread(data + size, 1, capacity - size, file);
            size += got;
        } while (got > 0);
        fclose(file);
        callback(data, size);
        free(data);
        fprintf(stderr, "fuzz: ran %s (%zu bytes)\n", path, size);
    }
    return 0;
}

int fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *file = fopen(path, "wb");
    if (!file) {
        perror(path);
        return -1;
    }
    size_t written = size ? fwrite(data, 1, size, file) : 0;
    return fclose(file) == 0 && written == size ? 0 : -1;
}
