/*
 * CRC32C of byte ranges (see crc32c.c for why this polynomial).
 *
 * Chainable: tdm_crc32c(tdm_crc32c(0, a, n), b, m) is the CRC of a then b.
 */
#ifndef TANDEM_CODEC_CRC32C_H
#define TANDEM_CODEC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Fastest implementation for this CPU. */
uint32_t tdm_crc32c(uint32_t crc, const void *data, size_t n);
/* The table implementation, exposed so tests can compare both paths. */
uint32_t tdm_crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
