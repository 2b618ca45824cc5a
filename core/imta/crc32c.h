/*
 * crc32c.h - CRC-32C (Castagnoli), for checking records that a crash may
 * have torn.  Not a cryptographic checksum: it detects accidental damage
 * (torn writes, stale blocks), not tampering.  Thread-safe.
 */
#ifndef IMTA_CRC32C_H
#define IMTA_CRC32C_H

#include <glib.h>

G_BEGIN_DECLS

/* The CRC-32C of `length` bytes at `data`, continuing from `crc` (0 to
 * start).  imta_crc32c(imta_crc32c(0, a), b) equals the CRC of a then b. */
guint32 imta_crc32c(guint32 crc, const void *data, gsize length);

/* The same, never with the CPU's crc32 instruction: what machines without
 * it compute, so that both ways can be checked against each other. */
guint32 imta_crc32c_portable(guint32 crc, const void *data, gsize length);

G_END_DECLS

#endif
