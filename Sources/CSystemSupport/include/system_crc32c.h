// CSystemSupport, CRC32C part: the Castagnoli CRC (iSCSI, ext4, RFC 3720)
// the agent's spool frames its records with. In C because the fast path is
// SSE4.2's crc32 instruction, which Swift cannot emit; a table does the same
// where the instruction is missing.
#ifndef SYSTEM_CRC32C_H
#define SYSTEM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

// CRC32C of `length` bytes, continuing from `crc` (0 to start): the usual
// ~0 start and final ~ are applied inside, as zlib's crc32() does, so
// crc32c(crc32c(0, a), b) == crc32c(0, a ++ b).
uint32_t CSystemSupport_crc32c(uint32_t crc, const void *data, size_t length);

// The same with the table, whatever the processor: for tests of both paths.
uint32_t CSystemSupport_crc32c_table(uint32_t crc, const void *data, size_t length);

// 1 when CSystemSupport_crc32c uses the processor's crc32 instruction.
int CSystemSupport_crc32c_hardware(void);

#endif
