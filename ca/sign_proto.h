/*
 * sign_proto.h - the messages between micad's network process and its
 * signer process (ca/sign_proc.c), over a socketpair.
 *
 * Frame (all integers big-endian):
 *
 *   u32 len      bytes after this field: 8 + body length
 *   u16 type     SIGN_T_* (request) or SIGN_R_OK / SIGN_R_ERR (reply)
 *   u16 flags    0 (anything else is a malformed frame)
 *   u32 id       request id chosen by the client, echoed in the reply
 *   body
 *
 * Requests are pipelined: the client sends several before reading a reply
 * (each OCSP responder thread has its own request in flight); the signer
 * reads every complete frame it has, answers them in order and writes
 * the replies in one write.  Every type has its own body limit, checked
 * from the header before the body is buffered: the only large one is a
 * TBSCertList (SIGN_CRL_MAX, 128 MiB: about 2.5 million entries of 50
 * bytes; a CRL of 10^6 entries is 40-50 MB).
 */
#ifndef MICA_SIGN_PROTO_H
#define MICA_SIGN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"

#define SIGN_HDR_LEN	12		/* len + type + flags + id */
#define SIGN_CRL_MAX	(128u * 1024 * 1024)	/* TBSCertList DER */
#define SIGN_OCSP_MAX	(1024u * 1024)		/* ResponseData DER */
#define SIGN_CERT_MAX	(64u * 1024)		/* certificate DER */
#define SIGN_SMALL_MAX	4096		/* errors, key info, public keys */
#define SIGN_BATCH_MAX	32		/* OCSP frames answered per write */

enum sign_type {
	SIGN_T_HELLO = 1,	/* -> where the keys live (text) */
	SIGN_T_CERT = 2,	/* certificate (placeholder signature: the
				 * signer signs its TBS) ->
				 * the signed certificate DER */
	SIGN_T_CRL = 3,		/* TBSCertList DER -> signature */
	SIGN_T_OCSP = 4,	/* ResponseData DER -> signature */
	SIGN_T_OCSP_NEWKEY = 5,	/* -> SubjectPublicKeyInfo DER of a new
				 * OCSP signer key (kept pending) */
	SIGN_T_OCSP_CERT = 6,	/* the OCSP signer certificate for the
				 * pending key -> signed DER */
	SIGN_T_OCSP_COMMIT = 7,	/* install the pending key -> empty */
	SIGN_R_OK = 0x8000,
	SIGN_R_ERR = 0x8001,	/* body: the reason, text */
};

struct sign_frame {
	uint16_t	 type;
	uint32_t	 id;
	const uint8_t	*body;		/* points into the parsed buffer */
	size_t		 body_len;
};

enum sign_parse_rc {
	SIGN_PARSE_OK = 0,	/* *out filled, *out_used bytes consumed */
	SIGN_PARSE_SHORT,	/* incomplete: *out_used = the whole frame's
				 * length when the header is there, else 0 */
	SIGN_PARSE_BAD,		/* malformed: close the connection */
};

/* The body limit of a frame type; 0 for an unknown type. */
size_t	sign_body_max(uint16_t type);
/* "cert", "crl", ... for logs; "?" when unknown. */
const char *sign_type_name(uint16_t type);
/*
 * Parses the frame at the start of buf.  The header is checked (known
 * type, flags 0, length within the type's limit) before the body is
 * waited for, so a peer cannot make the reader buffer more than the
 * limit.  On SIGN_PARSE_BAD err holds the reason.
 */
enum sign_parse_rc sign_frame_parse(struct sign_frame *out, size_t *out_used,
	    const uint8_t *buf, size_t len, char *err, size_t err_len);
/*
 * A batch: the complete frames at the start of buf, at most max of them
 * (max <= SIGN_BATCH_MAX), each of type `type` (or, with type 0, each a
 * reply: SIGN_R_OK or SIGN_R_ERR).  On SIGN_PARSE_OK out[0..*out_n)
 * hold them and *out_used is the bytes they take; SIGN_PARSE_SHORT when
 * not even one is complete (*out_used = the first frame's length once
 * its header is there, as sign_frame_parse); SIGN_PARSE_BAD (err) when
 * one is malformed or of another type, even after good ones: the
 * connection is closed.
 */
enum sign_parse_rc sign_batch_parse(struct sign_frame *out, size_t max,
	    size_t *out_n, size_t *out_used, uint16_t type, const uint8_t *buf,
	    size_t len, char *err, size_t err_len);
/* Appends one frame to out (wb_ok tells).  0 when body_len is over the
 * type's limit or the type is unknown. */
int	sign_frame_encode(struct wb *out, uint16_t type, uint32_t id,
	    const void *body, size_t body_len);

#endif
