#include "system_crc32c.h"
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

// Reflected Castagnoli polynomial.
#define CRC32C_POLYNOMIAL 0x82F63B78u

// Slicing-by-8 tables: eight bytes per step without the instruction.
static uint32_t crc32c_tables[8][256];
static int crc32c_use_hardware;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_initialize(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (CRC32C_POLYNOMIAL & (0u - (crc & 1u)));
        crc32c_tables[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        for (int slice = 1; slice < 8; slice++) {
            uint32_t previous = crc32c_tables[slice - 1][byte];
            crc32c_tables[slice][byte] = (previous >> 8) ^ crc32c_tables[0][previous & 0xff];
        }
    }
#if defined(__x86_64__)
    unsigned int eax, ebx, ecx, edx;
    crc32c_use_hardware = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2) != 0;
#endif
}

static uint32_t crc32c_software(uint32_t crc, const unsigned char *bytes, size_t length) {
    while (length > 0 && ((uintptr_t)bytes & 7) != 0) {
        crc = (crc >> 8) ^ crc32c_tables[0][(crc ^ *bytes++) & 0xff];
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        word ^= crc;  // little-endian: the low four bytes meet the CRC
        crc = crc32c_tables[7][word & 0xff] ^ crc32c_tables[6][(word >> 8) & 0xff] ^
              crc32c_tables[5][(word >> 16) & 0xff] ^ crc32c_tables[4][(word >> 24) & 0xff] ^
              crc32c_tables[3][(word >> 32) & 0xff] ^ crc32c_tables[2][(word >> 40) & 0xff] ^
              crc32c_tables[1][(word >> 48) & 0xff] ^ crc32c_tables[0][word >> 56];
        bytes += 8;
        length -= 8;
    }
    while (length-- > 0) crc = (crc >> 8) ^ crc32c_tables[0][(crc ^ *bytes++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    uint64_t crc64 = crc;
    while (length > 0 && ((uintptr_t)bytes & 7) != 0) {
        crc64 = _mm_crc32_u8((uint32_t)crc64, *bytes++);
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        crc64 = _mm_crc32_u64(crc64, word);
        bytes += 8;
        length -= 8;
    }
    while (length-- > 0) crc64 = _mm_crc32_u8((uint32_t)crc64, *bytes++);
    return (uint32_t)crc64;
}
#endif

uint32_t CSystemSupport_crc32c(uint32_t crc, const void *data, size_t length) {
    pthread_once(&crc32c_once, crc32c_initialize);
#if defined(__x86_64__)
    if (crc32c_use_hardware) return ~crc32c_hardware(~crc, data, length);
#endif
    return ~crc32c_software(~crc, data, length);
}

uint32_t CSystemSupport_crc32c_table(uint32_t crc, const void *data, size_t length) {
    pthread_once(&crc32c_once, crc32c_initialize);
    return ~crc32c_software(~crc, data, length);
}

int CSystemSupport_crc32c_hardware(void) {
    pthread_once(&crc32c_once, crc32c_initialize);
    return crc32c_use_hardware;
}
