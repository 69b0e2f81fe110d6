/* Hexadecimal as LoRaWAN Backend Interfaces and key files write it. */
#ifndef HEX_H
#define HEX_H

#include <stddef.h>
#include <stdint.h>

/* Decode hex, either case, with an optional 0x prefix. Returns the byte count, or -1 for an odd
 * length, a non-hex character, or more than max bytes. */
long hex_decode(const char *s, uint8_t *out, size_t max);
/* Decode exactly n bytes; -1 otherwise. */
int hex_decode_exact(const char *s, uint8_t *out, size_t n);
/* Upper-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

#endif
