/*
 * sign_proto.c - frame codec of the signer protocol (see sign_proto.h).
 */
#include <stdio.h>
#include <string.h>

#include "ca/sign_proto.h"
#include "common/bytes.h"

size_t
sign_body_max(uint16_t type)
{
	switch (type) {
	case SIGN_T_HELLO:
	case SIGN_T_OCSP_NEWKEY:
	case SIGN_T_OCSP_COMMIT:
		return 0;	/* empty body */
	case SIGN_T_CERT:
	case SIGN_T_OCSP_CERT:
		return SIGN_CERT_MAX;
	case SIGN_T_CRL:
		return SIGN_CRL_MAX;
	case SIGN_T_OCSP:
		return SIGN_OCSP_MAX;
	case SIGN_R_OK:
		return SIGN_CERT_MAX;	/* a signed certificate at most */
	case SIGN_R_ERR:
		return SIGN_SMALL_MAX;
	default:
		return 0;
	}
}

static int
type_known(uint16_t type)
{
	return (type >= SIGN_T_HELLO && type <= SIGN_T_OCSP_COMMIT) ||
	    type == SIGN_R_OK || type == SIGN_R_ERR;
}

const char *
sign_type_name(uint16_t type)
{
	static const char *names[] = { "?", "hello", "cert", "crl", "ocsp",
	    "ocsp-newkey", "ocsp-cert", "ocsp-commit" };

	if (type >= SIGN_T_HELLO && type <= SIGN_T_OCSP_COMMIT)
		return names[type];
	if (type == SIGN_R_OK)
		return "ok";
	if (type == SIGN_R_ERR)
		return "error";
	return "?";
}

enum sign_parse_rc
sign_frame_parse(struct sign_frame *out, size_t *out_used, const uint8_t *buf,
    size_t len, char *err, size_t err_len)
{
	struct rd r;
	uint32_t flen, id;
	uint16_t type, flags;
	const uint8_t *body;

	*out_used = 0;
	if (len < SIGN_HDR_LEN)
		return SIGN_PARSE_SHORT;
	rd_init(&r, buf, SIGN_HDR_LEN);
	if (!rd_u32(&r, &flen) || !rd_u16(&r, &type) || !rd_u16(&r, &flags) ||
	    !rd_u32(&r, &id))
		return SIGN_PARSE_SHORT;	/* cannot happen: 12 bytes */
	if (flen < SIGN_HDR_LEN - 4) {
		snprintf(err, err_len, "frame length %u below the header",
		    (unsigned)flen);
		return SIGN_PARSE_BAD;
	}
	if (!type_known(type)) {
		snprintf(err, err_len, "unknown frame type %u",
		    (unsigned)type);
		return SIGN_PARSE_BAD;
	}
	if (flags != 0) {
		snprintf(err, err_len, "frame flags %#x not 0",
		    (unsigned)flags);
		return SIGN_PARSE_BAD;
	}
	if ((size_t)flen - (SIGN_HDR_LEN - 4) > sign_body_max(type)) {
		snprintf(err, err_len, "%s frame body of %zu bytes over its "
		    "limit of %zu", sign_type_name(type),
		    (size_t)flen - (SIGN_HDR_LEN - 4), sign_body_max(type));
		return SIGN_PARSE_BAD;
	}
	*out_used = (size_t)flen + 4;
	rd_init(&r, buf + SIGN_HDR_LEN, len - SIGN_HDR_LEN);
	if (!rd_bytes(&r, &body, (size_t)flen - (SIGN_HDR_LEN - 4)))
		return SIGN_PARSE_SHORT;
	out->type = type;
	out->id = id;
	out->body = body;
	out->body_len = (size_t)flen - (SIGN_HDR_LEN - 4);
	return SIGN_PARSE_OK;
}

enum sign_parse_rc
sign_batch_parse(struct sign_frame *out, size_t max, size_t *out_n,
    size_t *out_used, uint16_t type, const uint8_t *buf, size_t len,
    char *err, size_t err_len)
{
	struct sign_frame f;
	enum sign_parse_rc prc = SIGN_PARSE_SHORT;
	size_t off = 0, used = 0, n = 0;

	*out_n = 0;
	*out_used = 0;
	if (max > SIGN_BATCH_MAX)
		max = SIGN_BATCH_MAX;
	while (n < max && (prc = sign_frame_parse(&f, &used, buf + off,
	    len - off, err, err_len)) == SIGN_PARSE_OK) {
		if (type != 0 ? f.type != type :
		    f.type != SIGN_R_OK && f.type != SIGN_R_ERR) {
			snprintf(err, err_len, "a %s frame in a batch of %s",
			    sign_type_name(f.type), type != 0 ?
			    sign_type_name(type) : "replies");
			return SIGN_PARSE_BAD;
		}
		out[n++] = f;
		off += used;
	}
	if (n == max)
		prc = SIGN_PARSE_OK;
	if (prc == SIGN_PARSE_BAD)
		return SIGN_PARSE_BAD;
	*out_n = n;
	if (n == 0) {
		*out_used = used;	/* the first frame's length, or 0 */
		return SIGN_PARSE_SHORT;
	}
	*out_used = off;
	return SIGN_PARSE_OK;
}

int
sign_frame_encode(struct wb *out, uint16_t type, uint32_t id,
    const void *body, size_t body_len)
{
	if (!type_known(type) || body_len > sign_body_max(type))
		return 0;
	wb_u32(out, (uint32_t)(body_len + SIGN_HDR_LEN - 4));
	wb_u16(out, type);
	wb_u16(out, 0);
	wb_u32(out, id);
	if (body_len > 0)
		wb_put(out, body, body_len);
	return 1;
}
