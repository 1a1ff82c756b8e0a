/*
 * proto.c - the mica CA protocol codec: frames and TLV fields over byte
 * buffers, no I/O.  The rules are in docs/PROTOCOL.md; both directions
 * are table-driven from the same field and message definitions, so the
 * encoder refuses exactly what the decoder would refuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bytes.h"
#include "ca/proto.h"

/* Field definitions: value length bounds (min == max: fixed length). */
struct fdef {
	uint16_t	 tag;
	const char	*name;
	uint16_t	 min;
	uint16_t	 max;
};

static const struct fdef fdefs[] = {
	{ PROTO_T_VERSIONS,	"VERSIONS",	1, PROTO_VERSIONS_MAX },
	{ PROTO_T_VERSION,	"VERSION",	1, 1 },
	{ PROTO_T_MAX_FRAME,	"MAX_FRAME",	4, 4 },
	{ PROTO_T_ACCOUNT,	"ACCOUNT",	1, PROTO_ACCOUNT_MAX },
	{ PROTO_T_PASSWORD,	"PASSWORD",	1, PROTO_PASSWORD_MAX },
	{ PROTO_T_OTP,		"OTP",		PROTO_OTP_LEN, PROTO_OTP_LEN },
	{ PROTO_T_SERIAL,	"SERIAL",	PROTO_SERIAL_LEN,
	    PROTO_SERIAL_LEN },
	{ PROTO_T_CSR,		"CSR",		1, PROTO_CSR_MAX },
	{ PROTO_T_REASON,	"REASON",	1, 1 },
	{ PROTO_T_NOTE,		"NOTE",		0, PROTO_NOTE_MAX },
	{ PROTO_T_REQUEST,	"REQUEST",	8, 8 },
	{ PROTO_T_TOKEN,	"TOKEN",	PROTO_TOKEN_LEN, PROTO_TOKEN_LEN },
	{ PROTO_T_STATE,	"STATE",	1, 1 },
	{ PROTO_T_CERT,		"CERT",		1, PROTO_CERT_MAX },
	{ PROTO_T_CHAIN,	"CHAIN",	1, PROTO_CERT_MAX },
	{ PROTO_T_CODE,		"CODE",		2, 2 },
	{ PROTO_T_TEXT,		"TEXT",		0, PROTO_TEXT_MAX },
	{ PROTO_T_TOTAL,	"TOTAL",	4, 4 },
	{ PROTO_T_CERTINFO,	"CERTINFO",	PROTO_CERTINFO_FIXED + 2,
	    PROTO_CERTINFO_MAX },
	{ PROTO_T_NEW_PASSWORD,	"NEW_PASSWORD",	1, PROTO_PASSWORD_MAX },
	{ PROTO_T_ENROL_CODE,	"ENROL_CODE",	1, PROTO_ENROL_CODE_MAX },
	{ PROTO_T_TOTP_SECRET,	"TOTP_SECRET",	PROTO_TOTP_SECRET_MIN,
	    PROTO_TOTP_SECRET_MAX },
	{ PROTO_T_NONCE,	"NONCE",	PROTO_NONCE_LEN, PROTO_NONCE_LEN },
	{ PROTO_T_SIGNATURE,	"SIGNATURE",	1, PROTO_SIG_MAX },
};

#define MDEF_FIELDS_MAX	4

/* A message: its fields in encoding order; req 1 = required. */
struct mdef {
	uint8_t		 type;
	const char	*name;
	size_t		 num_fields;
	struct {
		uint16_t	tag;
		uint8_t		req;
	}		 f[MDEF_FIELDS_MAX];
};

static const struct mdef mdefs[] = {
	{ PROTO_HELLO, "HELLO", 1, { { PROTO_T_VERSIONS, 1 } } },
	{ PROTO_LOGIN, "LOGIN", 3, { { PROTO_T_ACCOUNT, 1 },
	    { PROTO_T_PASSWORD, 1 }, { PROTO_T_OTP, 1 } } },
	{ PROTO_REISSUE, "REISSUE", 4, { { PROTO_T_SERIAL, 1 },
	    { PROTO_T_CSR, 1 }, { PROTO_T_REASON, 1 }, { PROTO_T_NOTE, 0 } } },
	{ PROTO_WAIT, "WAIT", 1, { { PROTO_T_REQUEST, 1 } } },
	{ PROTO_FETCH, "FETCH", 2, { { PROTO_T_REQUEST, 1 },
	    { PROTO_T_TOKEN, 1 } } },
	{ PROTO_STATUS, "STATUS", 2, { { PROTO_T_REQUEST, 1 },
	    { PROTO_T_TOKEN, 1 } } },
	{ PROTO_OK, "OK", 0, { { 0, 0 } } },
	{ PROTO_SERVER_HELLO, "SERVER_HELLO", 2, { { PROTO_T_VERSION, 1 },
	    { PROTO_T_MAX_FRAME, 1 } } },
	{ PROTO_ACCEPTED, "ACCEPTED", 3, { { PROTO_T_REQUEST, 1 },
	    { PROTO_T_STATE, 1 }, { PROTO_T_TOKEN, 0 } } },
	{ PROTO_ISSUED, "ISSUED", 3, { { PROTO_T_REQUEST, 1 },
	    { PROTO_T_CERT, 1 }, { PROTO_T_CHAIN, 1 } } },
	{ PROTO_REJECTED, "REJECTED", 2, { { PROTO_T_REQUEST, 1 },
	    { PROTO_T_TEXT, 1 } } },
	{ PROTO_ERROR, "ERROR", 2, { { PROTO_T_CODE, 1 },
	    { PROTO_T_TEXT, 1 } } },
	{ PROTO_LIST, "LIST", 0, { { 0, 0 } } },
	{ PROTO_CERTS, "CERTS", 2, { { PROTO_T_TOTAL, 1 },
	    { PROTO_T_CERTINFO, 0 } } },
	{ PROTO_REQUEST, "REQUEST", 2, { { PROTO_T_CSR, 1 },
	    { PROTO_T_NOTE, 0 } } },
	{ PROTO_PASSWD, "PASSWD", 1, { { PROTO_T_NEW_PASSWORD, 1 } } },
	{ PROTO_ENROLL, "ENROLL", 3, { { PROTO_T_ACCOUNT, 1 },
	    { PROTO_T_ENROL_CODE, 1 }, { PROTO_T_NEW_PASSWORD, 1 } } },
	{ PROTO_ENROLLED, "ENROLLED", 1, { { PROTO_T_TOTP_SECRET, 1 } } },
	{ PROTO_CHALLENGE, "CHALLENGE", 0, { { 0, 0 } } },
	{ PROTO_RENEW, "RENEW", 3, { { PROTO_T_CERT, 1 }, { PROTO_T_CSR, 1 },
	    { PROTO_T_SIGNATURE, 1 } } },
	{ PROTO_NONCE, "NONCE", 1, { { PROTO_T_NONCE, 1 } } },
	{ PROTO_RENEWED, "RENEWED", 2, { { PROTO_T_CERT, 1 },
	    { PROTO_T_CHAIN, 1 } } },
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct fdef *
fdef_find(uint16_t tag)
{
	size_t i;

	for (i = 0; i < NELEM(fdefs); i++)
		if (fdefs[i].tag == tag)
			return &fdefs[i];
	return NULL;
}

static const struct mdef *
mdef_find(uint8_t type)
{
	size_t i;

	for (i = 0; i < NELEM(mdefs); i++)
		if (mdefs[i].type == type)
			return &mdefs[i];
	return NULL;
}

/* How often a field may appear in one message: CHAIN and CERTINFO
 * repeat, every other field appears at most once. */
static size_t
tag_max_count(uint16_t tag)
{
	switch (tag) {
	case PROTO_T_CHAIN:
		return PROTO_CHAIN_MAX;
	case PROTO_T_CERTINFO:
		return PROTO_LIST_MAX;
	}
	return 1;
}

/* Index of tag in the message's field list, or -1. */
static int
mdef_index(const struct mdef *md, uint16_t tag)
{
	size_t i;

	for (i = 0; i < md->num_fields; i++)
		if (md->f[i].tag == tag)
			return (int)i;
	return -1;
}

static void
set_fail(struct proto_result *res, uint16_t code, int fatal,
    const char *fmt, const char *a, const char *b)
{
	res->code = code;
	res->fatal = fatal;
	snprintf(res->text, sizeof(res->text), fmt, a, b);
}

static int
name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
	    c == '@';
}

/*
 * The parts of a CERTINFO value whose length field_check has checked:
 * status, validity order and a subject that at least starts as a DER
 * SEQUENCE (the client parses it with d2i_X509_NAME).  NULL if good.
 */
static const char *
certinfo_check(const uint8_t *v)
{
	const uint8_t	*p = v + PROTO_SERIAL_LEN;
	int64_t		 nb, na;

	if (p[0] > PROTO_CERT_REVOKED)
		return "unknown certificate status";
	nb = (int64_t)be64_get(p + 1);
	na = (int64_t)be64_get(p + 9);
	if (na < nb)
		return "notAfter before notBefore";
	if (v[PROTO_CERTINFO_FIXED] != 0x30)
		return "subject is not a DER Name";
	return NULL;
}

/*
 * Checks one field value against its definition; the value comes from a
 * bounded reader (decoder) or from the message (encoder).  Returns 0 and
 * fills res on a bad value.
 */
static int
field_check(struct proto_result *res, const struct mdef *md,
    const struct fdef *fd, const uint8_t *v, size_t n)
{
	const char *bad = NULL;
	size_t i;

	if (n > fd->max && fd->min != fd->max) {
		set_fail(res, PROTO_E_TOO_LARGE, 0, "%s: %s field too long",
		    md->name, fd->name);
		return 0;
	}
	if (n < fd->min || n > fd->max) {
		set_fail(res, PROTO_E_MALFORMED, 0,
		    "%s: %s field has a bad length", md->name, fd->name);
		return 0;
	}
	switch (fd->tag) {
	case PROTO_T_VERSION:
		if (v[0] == 0)
			bad = "version 0";
		break;
	case PROTO_T_MAX_FRAME:
		if (be32_get(v) < PROTO_MAX_FRAME_MIN)
			bad = "below the minimum";
		break;
	case PROTO_T_ACCOUNT:
		/* The names mica-admin accepts, nothing a log or terminal
		 * could take for syntax. */
		for (i = 0; i < n; i++)
			if (!name_char(v[i]))
				bad = "field: only A-Z a-z 0-9 . - _ @ allowed";
		break;
	case PROTO_T_PASSWORD:
	case PROTO_T_NEW_PASSWORD:
		if (n > 0 && memchr(v, '\0', n) != NULL)
			bad = "field contains NUL";
		break;
	case PROTO_T_ENROL_CODE:
		/* RFC 4648 base32 letters in either case, '-' between
		 * groups */
		for (i = 0; i < n; i++)
			if (!((v[i] >= 'A' && v[i] <= 'Z') ||
			    (v[i] >= 'a' && v[i] <= 'z') ||
			    (v[i] >= '2' && v[i] <= '7') || v[i] == '-'))
				bad = "field: only A-Z a-z 2-7 - allowed";
		break;
	case PROTO_T_NOTE:
	case PROTO_T_TEXT:
		/* Shown on the admin's terminal and logged: no line breaks,
		 * no escape sequences. */
		for (i = 0; i < n; i++)
			if (v[i] < 0x20 || v[i] == 0x7f)
				bad = "field contains a control character";
		break;
	case PROTO_T_OTP:
		for (i = 0; i < n; i++)
			if (v[i] < '0' || v[i] > '9')
				bad = "not 6 digits";
		break;
	case PROTO_T_REASON:
		if (v[0] > PROTO_REASON_DAMAGED)
			bad = "unknown reason";
		break;
	case PROTO_T_STATE:
		if (v[0] > PROTO_STATE_ISSUED)
			bad = "unknown state";
		break;
	case PROTO_T_CODE:
		if (be16_get(v) == 0)
			bad = "code 0";
		break;
	case PROTO_T_CERTINFO:
		bad = certinfo_check(v);
		break;
	}
	if (bad != NULL) {
		res->code = PROTO_E_MALFORMED;
		res->fatal = 0;
		snprintf(res->text, sizeof(res->text), "%s: %s %s", md->name,
		    fd->name, bad);
		return 0;
	}
	return 1;
}

static int
blob_copy(uint8_t **dst, size_t *dst_len, const void *src, size_t len)
{
	uint8_t *p;

	if (len == 0 || (p = malloc(len)) == NULL)
		return 0;
	memcpy(p, src, len);
	free(*dst);
	*dst = p;
	*dst_len = len;
	return 1;
}

static void
certinfo_unpack(struct proto_certinfo *ci, const uint8_t *v, size_t n)
{
	memset(ci, 0, sizeof(*ci));
	memcpy(ci->serial, v, PROTO_SERIAL_LEN);
	v += PROTO_SERIAL_LEN;
	ci->status = v[0];
	ci->not_before = (int64_t)be64_get(v + 1);
	ci->not_after = (int64_t)be64_get(v + 9);
	memcpy(ci->replaced_by, v + 17, PROTO_SERIAL_LEN);
	ci->subject_len = n - PROTO_CERTINFO_FIXED;
	memcpy(ci->subject, v + 17 + PROTO_SERIAL_LEN, ci->subject_len);
}

/* Packs ci into out (PROTO_CERTINFO_MAX bytes); returns the length, or a
 * length field_check refuses when subject_len is out of range. */
static size_t
certinfo_pack(uint8_t *out, const struct proto_certinfo *ci)
{
	size_t	sl = ci->subject_len;

	if (sl > PROTO_SUBJECT_MAX)
		return PROTO_CERTINFO_MAX + 1;
	memcpy(out, ci->serial, PROTO_SERIAL_LEN);
	out[PROTO_SERIAL_LEN] = ci->status;
	be64_put(out + PROTO_SERIAL_LEN + 1, (uint64_t)ci->not_before);
	be64_put(out + PROTO_SERIAL_LEN + 9, (uint64_t)ci->not_after);
	memcpy(out + PROTO_SERIAL_LEN + 17, ci->replaced_by,
	    PROTO_SERIAL_LEN);
	if (sl > 0)
		memcpy(out + PROTO_CERTINFO_FIXED, ci->subject, sl);
	return PROTO_CERTINFO_FIXED + sl;
}

static int
certinfo_store(struct proto_msg *m, const uint8_t *v, size_t n)
{
	struct proto_certinfo ci;

	certinfo_unpack(&ci, v, n);
	return proto_msg_add_certinfo(m, &ci);
}

/* Stores a checked value in m; 0 only when memory ran out. */
static int
field_store(struct proto_msg *m, uint16_t tag, const uint8_t *v, size_t n)
{
	switch (tag) {
	case PROTO_T_VERSIONS:
		memcpy(m->versions, v, n);
		m->num_versions = n;
		break;
	case PROTO_T_VERSION:
		m->chosen_version = v[0];
		break;
	case PROTO_T_MAX_FRAME:
		m->max_frame = be32_get(v);
		break;
	case PROTO_T_ACCOUNT:
		memcpy(m->account, v, n);
		m->account[n] = '\0';
		break;
	case PROTO_T_PASSWORD:
		memcpy(m->password, v, n);
		m->password[n] = '\0';
		m->password_len = n;
		break;
	case PROTO_T_OTP:
		memcpy(m->otp, v, n);
		m->otp[n] = '\0';
		break;
	case PROTO_T_SERIAL:
		memcpy(m->serial, v, n);
		break;
	case PROTO_T_CSR:
		return proto_msg_set_csr(m, v, n);
	case PROTO_T_REASON:
		m->reason = v[0];
		break;
	case PROTO_T_NOTE:
		if (n > 0)
			memcpy(m->note, v, n);
		m->note[n] = '\0';
		break;
	case PROTO_T_REQUEST:
		m->request = be64_get(v);
		break;
	case PROTO_T_TOKEN:
		memcpy(m->token, v, n);
		m->has_token = 1;
		break;
	case PROTO_T_STATE:
		m->state = v[0];
		break;
	case PROTO_T_CERT:
		return proto_msg_set_cert(m, v, n);
	case PROTO_T_CHAIN:
		return proto_msg_add_chain(m, v, n);
	case PROTO_T_CODE:
		m->code = be16_get(v);
		break;
	case PROTO_T_TOTAL:
		m->total = be32_get(v);
		break;
	case PROTO_T_CERTINFO:
		return certinfo_store(m, v, n);
	case PROTO_T_NEW_PASSWORD:
		memcpy(m->new_password, v, n);
		m->new_password[n] = '\0';
		m->new_password_len = n;
		break;
	case PROTO_T_ENROL_CODE:
		memcpy(m->enrol_code, v, n);
		m->enrol_code[n] = '\0';
		break;
	case PROTO_T_TOTP_SECRET:
		memcpy(m->totp_secret, v, n);
		m->totp_secret_len = n;
		break;
	case PROTO_T_NONCE:
		memcpy(m->nonce, v, n);
		break;
	case PROTO_T_SIGNATURE:
		return proto_msg_set_sig(m, v, n);
	case PROTO_T_TEXT:
		if (n > 0)
			memcpy(m->text, v, n);
		m->text[n] = '\0';
		break;
	}
	return 1;
}

void
proto_msg_init(struct proto_msg *m, uint8_t type, uint32_t id)
{
	memset(m, 0, sizeof(*m));
	m->version = PROTO_VERSION;
	m->type = type;
	m->id = id;
}

void
proto_msg_cleanup(struct proto_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->csr);
	free(m->cert);
	for (i = 0; i < PROTO_CHAIN_MAX; i++)
		free(m->chain[i]);
	free(m->certs);
	free(m->sig);
	/* password and token are secrets: wipe everything */
	sodium_memzero(m, sizeof(*m));
}

int
proto_msg_set_csr(struct proto_msg *m, const void *der, size_t len)
{
	if (len > PROTO_CSR_MAX)
		return 0;
	return blob_copy(&m->csr, &m->csr_len, der, len);
}

int
proto_msg_set_cert(struct proto_msg *m, const void *der, size_t len)
{
	if (len > PROTO_CERT_MAX)
		return 0;
	return blob_copy(&m->cert, &m->cert_len, der, len);
}

int
proto_msg_set_sig(struct proto_msg *m, const void *sig, size_t len)
{
	if (len > PROTO_SIG_MAX)
		return 0;
	return blob_copy(&m->sig, &m->sig_len, sig, len);
}

int
proto_msg_add_chain(struct proto_msg *m, const void *der, size_t len)
{
	size_t i = m->num_chain;

	if (i >= PROTO_CHAIN_MAX || len > PROTO_CERT_MAX)
		return 0;
	if (!blob_copy(&m->chain[i], &m->chain_len[i], der, len))
		return 0;
	m->num_chain++;
	return 1;
}

int
proto_msg_add_certinfo(struct proto_msg *m, const struct proto_certinfo *ci)
{
	if (m->num_certs >= PROTO_LIST_MAX)
		return 0;
	if (m->certs == NULL &&
	    (m->certs = calloc(PROTO_LIST_MAX, sizeof(*m->certs))) == NULL)
		return 0;
	m->certs[m->num_certs++] = *ci;
	return 1;
}

/* Parses the TLVs of one frame body into m (already initialised). */
static int
decode_fields(struct proto_result *res, struct proto_msg *m,
    const struct mdef *md, struct rd *body)
{
	const struct fdef *fd;
	const uint8_t *v;
	uint32_t seen = 0;
	uint16_t tag, vlen;
	size_t i;
	int idx;

	while (rd_left(body) > 0) {
		if (!rd_u16(body, &tag) || !rd_u16(body, &vlen)) {
			set_fail(res, PROTO_E_MALFORMED, 0,
			    "%s: truncated field header", md->name, "");
			return 0;
		}
		if (!rd_bytes(body, &v, vlen)) {
			set_fail(res, PROTO_E_MALFORMED, 0,
			    "%s: field runs past the end of the frame",
			    md->name, "");
			return 0;
		}
		if ((idx = mdef_index(md, tag)) < 0) {
			if (tag & PROTO_TAG_CRITICAL) {
				set_fail(res, PROTO_E_CRITICAL, 0,
				    "%s: unknown critical field", md->name, "");
				return 0;
			}
			continue;	/* unknown non-critical: skipped */
		}
		fd = fdef_find(tag);
		if ((seen & (1u << idx)) && tag_max_count(tag) == 1) {
			set_fail(res, PROTO_E_MALFORMED, 0,
			    "%s: duplicate %s field", md->name, fd->name);
			return 0;
		}
		if ((tag == PROTO_T_CHAIN && m->num_chain >= PROTO_CHAIN_MAX) ||
		    (tag == PROTO_T_CERTINFO &&
		    m->num_certs >= PROTO_LIST_MAX)) {
			set_fail(res, PROTO_E_TOO_LARGE, 0,
			    "%s: too many %s fields", md->name, fd->name);
			return 0;
		}
		if (!field_check(res, md, fd, v, vlen))
			return 0;
		if (!field_store(m, tag, v, vlen)) {
			set_fail(res, PROTO_E_INTERNAL, 0,
			    "%s: out of memory", md->name, "");
			return 0;
		}
		seen |= 1u << idx;
	}
	for (i = 0; i < md->num_fields; i++) {
		if (md->f[i].req && !(seen & (1u << i))) {
			set_fail(res, PROTO_E_MALFORMED, 0,
			    "%s: missing %s field", md->name,
			    fdef_find(md->f[i].tag)->name);
			return 0;
		}
	}
	return 1;
}

enum proto_status
proto_decode(struct proto_result *res, struct proto_msg *out,
    const uint8_t *buf, size_t len, uint32_t max_frame)
{
	const struct mdef *md;
	const uint8_t *p;
	struct rd r, body;
	uint32_t flen, id;
	uint8_t version, type;

	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	if (max_frame == 0)
		max_frame = PROTO_MAX_FRAME_DEFAULT;
	if (max_frame > PROTO_MAX_FRAME_LIMIT)
		max_frame = PROTO_MAX_FRAME_LIMIT;

	rd_init(&r, buf, len);
	if (!rd_u32(&r, &flen)) {
		res->need = PROTO_LEN_PREFIX - len;
		return PROTO_NEED_MORE;
	}
	if (flen > max_frame) {
		set_fail(res, PROTO_E_TOO_LARGE, 1, "frame too large%s%s",
		    "", "");
		return PROTO_FAIL;
	}
	if (flen < PROTO_HEADER_LEN) {
		set_fail(res, PROTO_E_MALFORMED, 1,
		    "frame shorter than its header%s%s", "", "");
		return PROTO_FAIL;
	}
	if (!rd_bytes(&r, &p, flen)) {
		res->need = flen - rd_left(&r);
		return PROTO_NEED_MORE;
	}
	res->consumed = PROTO_LEN_PREFIX + (size_t)flen;
	rd_init(&body, p, flen);
	if (!rd_u8(&body, &version) || !rd_u8(&body, &type) ||
	    !rd_u32(&body, &id)) {
		/* cannot happen: flen >= PROTO_HEADER_LEN */
		set_fail(res, PROTO_E_MALFORMED, 1, "short header%s%s", "", "");
		return PROTO_FAIL;
	}
	/* the header is whole: every ERROR from here on echoes its id,
	 * the version's too (PROTOCOL.md, "id") */
	res->id = id;
	if (version != PROTO_VERSION) {
		set_fail(res, PROTO_E_VERSION, 1,
		    "unsupported protocol version%s%s", "", "");
		return PROTO_FAIL;
	}
	if ((md = mdef_find(type)) == NULL) {
		set_fail(res, PROTO_E_TYPE, 0, "unknown message type%s%s",
		    "", "");
		return PROTO_FAIL;
	}
	proto_msg_init(out, type, id);
	if (!decode_fields(res, out, md, &body)) {
		proto_msg_cleanup(out);
		return PROTO_FAIL;
	}
	return PROTO_FRAME;
}

/*
 * Points *v / *n at the value of field tag in m (tmp holds scalars);
 * *present = 0 for an optional field that m does not carry.
 */
static void
field_value(const struct proto_msg *m, uint16_t tag, size_t chain_i,
    uint8_t tmp[PROTO_CERTINFO_MAX], const uint8_t **v, size_t *n,
    int *present)
{
	*v = tmp;
	*n = 0;
	*present = 1;
	switch (tag) {
	case PROTO_T_VERSIONS:
		*v = m->versions;
		*n = m->num_versions;
		break;
	case PROTO_T_VERSION:
		tmp[0] = m->chosen_version;
		*n = 1;
		break;
	case PROTO_T_MAX_FRAME:
		be32_put(tmp, m->max_frame);
		*n = 4;
		break;
	case PROTO_T_ACCOUNT:
		*v = (const uint8_t *)m->account;
		*n = strnlen(m->account, sizeof(m->account));
		break;
	case PROTO_T_PASSWORD:
		*v = (const uint8_t *)m->password;
		*n = m->password_len;
		break;
	case PROTO_T_OTP:
		*v = (const uint8_t *)m->otp;
		*n = strnlen(m->otp, sizeof(m->otp));
		break;
	case PROTO_T_SERIAL:
		*v = m->serial;
		*n = PROTO_SERIAL_LEN;
		break;
	case PROTO_T_CSR:
		*v = m->csr;
		*n = m->csr != NULL ? m->csr_len : 0;
		break;
	case PROTO_T_REASON:
		tmp[0] = m->reason;
		*n = 1;
		break;
	case PROTO_T_NOTE:
		*v = (const uint8_t *)m->note;
		*n = strnlen(m->note, sizeof(m->note));
		*present = *n > 0;
		break;
	case PROTO_T_REQUEST:
		be64_put(tmp, m->request);
		*n = 8;
		break;
	case PROTO_T_TOKEN:
		*v = m->token;
		*n = PROTO_TOKEN_LEN;
		*present = m->type != PROTO_ACCEPTED || m->has_token;
		break;
	case PROTO_T_STATE:
		tmp[0] = m->state;
		*n = 1;
		break;
	case PROTO_T_CERT:
		*v = m->cert;
		*n = m->cert != NULL ? m->cert_len : 0;
		break;
	case PROTO_T_CHAIN:
		*v = m->chain[chain_i];
		*n = m->chain[chain_i] != NULL ? m->chain_len[chain_i] : 0;
		break;
	case PROTO_T_CODE:
		be16_put(tmp, m->code);
		*n = 2;
		break;
	case PROTO_T_TEXT:
		*v = (const uint8_t *)m->text;
		*n = strnlen(m->text, sizeof(m->text));
		break;
	case PROTO_T_TOTAL:
		be32_put(tmp, m->total);
		*n = 4;
		break;
	case PROTO_T_CERTINFO:
		*n = certinfo_pack(tmp, &m->certs[chain_i]);
		break;
	case PROTO_T_NEW_PASSWORD:
		*v = (const uint8_t *)m->new_password;
		*n = m->new_password_len;
		break;
	case PROTO_T_ENROL_CODE:
		*v = (const uint8_t *)m->enrol_code;
		*n = strnlen(m->enrol_code, sizeof(m->enrol_code));
		break;
	case PROTO_T_TOTP_SECRET:
		*v = m->totp_secret;
		*n = m->totp_secret_len;
		break;
	case PROTO_T_NONCE:
		*v = m->nonce;
		*n = PROTO_NONCE_LEN;
		break;
	case PROTO_T_SIGNATURE:
		*v = m->sig;
		*n = m->sig != NULL ? m->sig_len : 0;
		break;
	}
}

static int
encode_field(struct wb *b, const struct proto_msg *m, const struct mdef *md,
    size_t i, size_t chain_i)
{
	struct proto_result res;
	const struct fdef *fd = fdef_find(md->f[i].tag);
	const uint8_t *v;
	uint8_t tmp[PROTO_CERTINFO_MAX];
	size_t n;
	int present;

	field_value(m, fd->tag, chain_i, tmp, &v, &n, &present);
	if (!present)
		return !md->f[i].req;
	if (!field_check(&res, md, fd, v, n))
		return 0;
	wb_u16(b, fd->tag);
	wb_u16(b, (uint16_t)n);
	wb_put(b, v, n);
	return 1;
}

int
proto_encode(struct wb *out, const struct proto_msg *m)
{
	const struct mdef *md;
	struct wb b;
	size_t i, j;
	int rc = 0;

	wb_init(&b);
	if ((md = mdef_find(m->type)) == NULL)
		goto out;
	wb_u32(&b, 0);		/* length, filled in below */
	wb_u8(&b, PROTO_VERSION);
	wb_u8(&b, m->type);
	wb_u32(&b, m->id);
	for (i = 0; i < md->num_fields; i++) {
		if (md->f[i].tag == PROTO_T_CERTINFO) {
			/* 0..PROTO_LIST_MAX, like the decoder */
			if (m->num_certs > PROTO_LIST_MAX ||
			    (m->num_certs > 0 && m->certs == NULL))
				goto out;
			for (j = 0; j < m->num_certs; j++)
				if (!encode_field(&b, m, md, i, j))
					goto out;
			continue;
		}
		if (md->f[i].tag != PROTO_T_CHAIN) {
			if (!encode_field(&b, m, md, i, 0))
				goto out;
			continue;
		}
		if (m->num_chain == 0 || m->num_chain > PROTO_CHAIN_MAX)
			goto out;
		for (j = 0; j < m->num_chain; j++)
			if (!encode_field(&b, m, md, i, j))
				goto out;
	}
	if (!wb_ok(&b) || b.len - PROTO_LEN_PREFIX > PROTO_MAX_FRAME_LIMIT)
		goto out;
	be32_put(b.data, (uint32_t)(b.len - PROTO_LEN_PREFIX));
	wb_put(out, b.data, b.len);
	rc = wb_ok(out);
 out:
	if (b.data != NULL)
		sodium_memzero(b.data, b.cap);	/* may hold a password */
	wb_cleanup(&b);
	return rc;
}

int
proto_encode_error(struct wb *out, uint32_t id, uint16_t code,
    const char *text)
{
	struct proto_msg m;
	int rc;

	proto_msg_init(&m, PROTO_ERROR, id);
	m.code = code;
	snprintf(m.text, sizeof(m.text), "%s", text != NULL ? text : "");
	proto_text_sanitize(m.text);
	rc = proto_encode(out, &m);
	proto_msg_cleanup(&m);
	return rc;
}

int
proto_encode_ok(struct wb *out, uint32_t id)
{
	struct proto_msg m;

	proto_msg_init(&m, PROTO_OK, id);
	return proto_encode(out, &m);
}

int
proto_type_is_request(uint8_t type)
{
	return (type >= PROTO_HELLO && type <= PROTO_LIST) ||
	    type == PROTO_REQUEST || type == PROTO_PASSWD ||
	    type == PROTO_ENROLL || type == PROTO_CHALLENGE ||
	    type == PROTO_RENEW;
}

const char *
proto_type_name(uint8_t type)
{
	const struct mdef *md = mdef_find(type);

	return md != NULL ? md->name : "unknown";
}

const char *
proto_err_name(uint16_t code)
{
	static const char *names[] = {
		"no error", "malformed", "unsupported version",
		"unknown message type", "too large", "not authenticated",
		"authentication failed", "account locked", "bad request",
		"duplicate open request", "not found", "busy",
		"internal error", "unknown critical field",
		"this server is a standby",
	};

	switch (code) {
	case PROTO_E_REPLAY:
		return "code already used";
	case PROTO_E_DISABLED:
		return "account disabled";
	case PROTO_E_POLICY:
		return "password refused by the policy";
	case PROTO_E_PW_EXPIRED:
		return "password expired";
	}
	return code < NELEM(names) ? names[code] : "unknown error";
}

static const char *reason_names[] = { "lost", "compromised", "damaged" };
static const char *state_names[] = {
	"pending", "approved", "rejected", "issued"
};

const char *
proto_reason_name(uint8_t reason)
{
	return reason < NELEM(reason_names) ? reason_names[reason] : "unknown";
}

const char *
proto_state_name(uint8_t state)
{
	return state < NELEM(state_names) ? state_names[state] : "unknown";
}

int
proto_reason_parse(const char *name)
{
	size_t i;

	for (i = 0; i < NELEM(reason_names); i++)
		if (strcmp(name, reason_names[i]) == 0)
			return (int)i;
	return -1;
}

void
proto_token_hex(char *out, const uint8_t token[PROTO_TOKEN_LEN])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < PROTO_TOKEN_LEN; i++) {
		out[2 * i] = digits[token[i] >> 4];
		out[2 * i + 1] = digits[token[i] & 0xf];
	}
	out[PROTO_TOKEN_HEX_LEN] = '\0';
}

int
proto_token_parse(uint8_t token[PROTO_TOKEN_LEN], const char *text)
{
	uint8_t t[PROTO_TOKEN_LEN];
	size_t i;
	int hi, lo, rc = 0;

	if (strlen(text) != PROTO_TOKEN_HEX_LEN)
		goto out;
	for (i = 0; i < PROTO_TOKEN_LEN; i++) {
		hi = hex_digit((unsigned char)text[2 * i]);
		lo = hex_digit((unsigned char)text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		t[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(token, t, sizeof(t));
	rc = 1;
 out:
	sodium_memzero(t, sizeof(t));
	return rc;
}

void
proto_text_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int
proto_account_valid(const char *name)
{
	size_t	i, n = strlen(name);

	if (n == 0 || n > PROTO_ACCOUNT_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!name_char((uint8_t)name[i]))
			return 0;
	return 1;
}

void
proto_log_escape(char *out, size_t out_len, const char *in, size_t max_in)
{
	static const char digits[] = "0123456789abcdef";
	size_t		 o = 0, i;
	unsigned char	 c;
	int		 cut = 0;

	if (out_len == 0)
		return;
	for (i = 0; i < max_in && in[i] != '\0'; i++) {
		c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 + 3 >= out_len) {
				cut = 1;
				break;
			}
			out[o++] = (char)c;
			continue;
		}
		if (o + 4 + 3 >= out_len) {
			cut = 1;
			break;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = digits[c >> 4];
		out[o++] = digits[c & 0xf];
	}
	if (cut && o + 3 < out_len) {
		out[o++] = '.';
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o] = '\0';
}

void
proto_renew_tbs(uint8_t out[PROTO_RENEW_TBS_LEN],
    const uint8_t nonce[PROTO_NONCE_LEN], const uint8_t *cert,
    size_t cert_len, const uint8_t *csr, size_t csr_len)
{
	uint8_t	*p = out;

	memcpy(p, PROTO_RENEW_CTX, sizeof(PROTO_RENEW_CTX));	/* and NUL */
	p += sizeof(PROTO_RENEW_CTX);
	memcpy(p, nonce, PROTO_NONCE_LEN);
	p += PROTO_NONCE_LEN;
	crypto_hash_sha256(p, cert, cert_len);
	p += 32;
	crypto_hash_sha256(p, csr, csr_len);
}
