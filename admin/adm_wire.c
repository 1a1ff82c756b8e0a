/*
 * adm_wire.c - encoding and decoding of admin socket frames.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include <sodium.h>

#include "admin/admin.h"
#include "common/bytes.h"

void
adm_msg_init(struct adm_msg *m)
{
	memset(m, 0, sizeof(*m));
	wb_init_secret(&m->out);
	wb_init_secret(&m->err);
}

void
adm_msg_cleanup(struct adm_msg *m)
{
	int i;

	for (i = 0; i < m->argc; i++) {
		sodium_memzero(m->argv[i], strlen(m->argv[i]));
		free(m->argv[i]);
	}
	for (i = 0; i < m->num_att; i++) {
		if (m->att[i].data != NULL)
			sodium_memzero(m->att[i].data, m->att[i].len);
		free(m->att[i].data);
	}
	/* replies can carry a TOTP secret shown once */
	wb_wipe(&m->out);
	wb_wipe(&m->err);
	memset(m, 0, sizeof(*m));
}

int
adm_msg_attach(struct adm_msg *m, const char *name, const void *data,
    size_t len)
{
	struct adm_attach *a;

	if (m->num_att == ADM_MAX_ATTACH || strlen(name) > ADM_ATTACH_NAME_MAX)
		return 0;
	a = &m->att[m->num_att];
	if ((a->data = malloc(len ? len : 1)) == NULL)
		return 0;
	if (len)
		memcpy(a->data, data, len);
	a->len = len;
	snprintf(a->name, sizeof(a->name), "%s", name);
	m->num_att++;
	return 1;
}

const struct adm_attach *
adm_msg_get(const struct adm_msg *m, const char *name)
{
	int i;

	for (i = 0; i < m->num_att; i++)
		if (strcmp(m->att[i].name, name) == 0)
			return &m->att[i];
	return NULL;
}

static void
put_attach(struct wb *b, const struct adm_msg *m)
{
	int i;

	wb_u16(b, (uint16_t)m->num_att);
	for (i = 0; i < m->num_att; i++) {
		wb_u8(b, (uint8_t)strlen(m->att[i].name));
		wb_str(b, m->att[i].name);
		wb_u32(b, (uint32_t)m->att[i].len);
		wb_put(b, m->att[i].data, m->att[i].len);
	}
}

/* Reserves the 4-byte length prefix and fills it in at the end. */
static int
finish(struct wb *b, size_t start)
{
	size_t body;

	if (!wb_ok(b))
		return 0;
	body = b->len - start - 4;
	if (body > ADM_MAX_REPLY)
		return 0;
	be32_put(b->data + start, (uint32_t)body);
	return 1;
}

int
adm_request_encode(struct wb *b, const struct adm_msg *m)
{
	size_t start = b->len;
	int i;

	wb_u32(b, 0);
	wb_u8(b, ADM_VERSION);
	wb_u16(b, (uint16_t)m->argc);
	for (i = 0; i < m->argc; i++) {
		size_t l = strlen(m->argv[i]);

		if (l > UINT16_MAX)
			return 0;
		wb_u16(b, (uint16_t)l);
		wb_put(b, m->argv[i], l);
	}
	put_attach(b, m);
	return finish(b, start) && b->len - start - 4 <= ADM_MAX_REQUEST;
}

int
adm_reply_encode(struct wb *b, const struct adm_msg *m)
{
	size_t start = b->len;

	wb_u32(b, 0);
	wb_u8(b, ADM_VERSION);
	wb_u8(b, (uint8_t)m->code);
	wb_u32(b, (uint32_t)m->out.len);
	wb_put(b, m->out.data, m->out.len);
	wb_u32(b, (uint32_t)m->err.len);
	wb_put(b, m->err.data, m->err.len);
	put_attach(b, m);
	return finish(b, start);
}

static int
get_attach(struct rd *r, struct adm_msg *m, char *err, size_t err_len)
{
	uint16_t n;
	int i;

	if (!rd_u16(r, &n) || n > ADM_MAX_ATTACH) {
		snprintf(err, err_len, "bad attachment count");
		return 0;
	}
	for (i = 0; i < n; i++) {
		uint8_t nl;
		char name[ADM_ATTACH_NAME_MAX + 1];
		struct rd data;

		if (!rd_u8(r, &nl) || nl > ADM_ATTACH_NAME_MAX ||
		    !rd_copy(r, name, nl)) {
			snprintf(err, err_len, "bad attachment name");
			return 0;
		}
		name[nl] = '\0';
		if (!rd_u32_prefixed(r, &data) ||
		    !adm_msg_attach(m, name, data.p, data.len)) {
			snprintf(err, err_len, "bad attachment");
			return 0;
		}
	}
	return 1;
}

int
adm_request_parse(struct adm_msg *m, const uint8_t *p, size_t len, char *err,
    size_t err_len)
{
	struct rd r;
	uint8_t ver;
	uint16_t argc;
	int i;

	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || ver != ADM_VERSION) {
		snprintf(err, err_len, "unsupported admin protocol version");
		return 0;
	}
	if (!rd_u16(&r, &argc) || argc > ADM_MAX_ARGS) {
		snprintf(err, err_len, "bad argument count");
		return 0;
	}
	for (i = 0; i < argc; i++) {
		struct rd a;

		if (!rd_u16_prefixed(&r, &a) ||
		    memchr(a.p, '\0', a.len) != NULL) {
			snprintf(err, err_len, "bad argument %d", i);
			return 0;
		}
		if ((m->argv[i] = strndup((const char *)a.p, a.len)) == NULL)
			return 0;
		m->argc++;
	}
	if (!get_attach(&r, m, err, err_len))
		return 0;
	if (rd_left(&r) != 0) {
		snprintf(err, err_len, "trailing bytes in request");
		return 0;
	}
	return 1;
}

int
adm_reply_parse(struct adm_msg *m, const uint8_t *p, size_t len, char *err,
    size_t err_len)
{
	struct rd r, out, er;
	uint8_t ver, code;

	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || ver != ADM_VERSION || !rd_u8(&r, &code) ||
	    !rd_u32_prefixed(&r, &out) || !rd_u32_prefixed(&r, &er)) {
		snprintf(err, err_len, "malformed reply from micad");
		return 0;
	}
	m->code = code;
	wb_put(&m->out, out.p, out.len);
	wb_put(&m->err, er.p, er.len);
	if (!get_attach(&r, m, err, err_len))
		return 0;
	return wb_ok(&m->out) && wb_ok(&m->err);
}

const char *
adm_reason_name(int reason)
{
	switch (reason) {
	case 0: return "unspecified";
	case 1: return "keyCompromise";
	case 2: return "cACompromise";
	case 3: return "affiliationChanged";
	case 4: return "superseded";
	case 5: return "cessationOfOperation";
	case 6: return "certificateHold";
	case 8: return "removeFromCRL";
	case 9: return "privilegeWithdrawn";
	case 10: return "aACompromise";
	default: return "unknown";
	}
}

int
adm_reason_parse(const char *name)
{
	static const int allowed[] = { 0, 1, 3, 4, 5, 9 };
	size_t i;

	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (strcmp(name, adm_reason_name(allowed[i])) == 0)
			return allowed[i];
	return -1;
}
