/*
 * bytes.h - bounded reader for untrusted bytes, growable write buffer,
 * hex and serial helpers.  Every byte from outside goes through struct rd:
 * its getters fail (return 0) when the input is short and never move past
 * the end.
 */
#ifndef MICA_BYTES_H
#define MICA_BYTES_H

#include <stddef.h>
#include <stdint.h>

struct rd {
	const uint8_t	*p;
	size_t		 len;
};

void	rd_init(struct rd *, const void *, size_t);
size_t	rd_left(const struct rd *);
int	rd_u8(struct rd *, uint8_t *);
int	rd_u16(struct rd *, uint16_t *);
int	rd_u32(struct rd *, uint32_t *);
int	rd_u64(struct rd *, uint64_t *);
/* Borrows the next n bytes (pointer into the input). */
int	rd_bytes(struct rd *, const uint8_t **out, size_t n);
int	rd_copy(struct rd *, void *out, size_t n);
/* Reads a u16/u32 length then that many bytes into a sub-reader. */
int	rd_u16_prefixed(struct rd *, struct rd *out);
int	rd_u32_prefixed(struct rd *, struct rd *out);
int	rd_skip(struct rd *, size_t n);

/* Growable buffer; after an allocation failure every put is a no-op and
 * wb_ok() returns 0, so callers check once at the end. */
struct wb {
	uint8_t	*data;
	size_t	 len;
	size_t	 cap;
	int	 failed;
	int	 secret;	/* 1: growth never leaves a copy behind */
};

void	wb_init(struct wb *);
/* A buffer for secrets: growing it wipes the old block (no realloc). */
void	wb_init_secret(struct wb *);
void	wb_cleanup(struct wb *);
/* Wipes the whole allocation (sodium_memzero), then frees it. */
void	wb_wipe(struct wb *);
int	wb_ok(const struct wb *);
int	wb_reserve(struct wb *, size_t);
void	wb_put(struct wb *, const void *, size_t);
void	wb_u8(struct wb *, uint8_t);
void	wb_u16(struct wb *, uint16_t);
void	wb_u32(struct wb *, uint32_t);
void	wb_u64(struct wb *, uint64_t);
void	wb_str(struct wb *, const char *);	/* no NUL */
/* Hands the data to the caller (free() it) and resets the buffer. */
uint8_t	*wb_steal(struct wb *, size_t *out_len);

uint16_t	be16_get(const uint8_t *);
uint32_t	be32_get(const uint8_t *);
uint64_t	be64_get(const uint8_t *);
void		be16_put(uint8_t *, uint16_t);
void		be32_put(uint8_t *, uint32_t);
void		be64_put(uint8_t *, uint64_t);

/* The value of one hex digit (either case), or -1. */
int	hex_digit(int c);
/* Uppercase hex without separators; out must hold 2*len+1 bytes. */
void	hex_encode(char *out, const uint8_t *in, size_t len);
/*
 * Parses a serial in any hex form ("0A:1b", "0x0a1b", "a1b", with spaces
 * or colons) into a 16-byte big-endian serial, left-padded with zeros.
 * Returns 0 when the text is not hex or does not fit in 16 bytes.
 */
int	serial_parse(uint8_t out[16], const char *text);
#define SERIAL_LEN	16
#define SERIAL_HEX_LEN	(2 * SERIAL_LEN + 1)
/* Serial as OpenSSL prints it: uppercase hex, leading zero bytes dropped. */
void	serial_hex(char out[SERIAL_HEX_LEN], const uint8_t serial[SERIAL_LEN]);

#endif
