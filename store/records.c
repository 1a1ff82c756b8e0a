/*
 * records.c - encoders and bounded decoders for the store's records.
 *
 * Layouts (version 1, all integers big-endian, times as two's complement
 * u64, "s16" = u16 length + bytes, "b32" = u32 length + bytes):
 *
 * cert     ver status reason not_before not_after revoked_at invalidity
 *          change_seq issued_at replaces[16] replaced_by[16] s16 account
 *          b32 der
 * rev      ver serial[16] status reason when invalidity
 * account  ver failed(u32) locked_until last_totp_step created
 *          s16 pwhash s16 totp_secret s16 subject
 *   version 2 (schema 4; the secret sealed, common/totpseal.h):
 *          ver=2 failed(u32) locked_until last_totp_step created
 *          pw_changed enrol_expires flags(u8) enrol_hash[32]
 *          s16 pwhash s16 totp_sealed s16 subject
 *   version 3: version 2 and s16 sans (the SANs a CSR of the account may
 *          carry, never empty: an account without a list is written as
 *          version 2, so each record has one encoding)
 * request  ver state reason held lost[16] new[16] token_hash[32] created
 *          decided s16 account s16 decided_by s16 note s16 why b32 csr
 * audit    ver when s16 actor s16 action s16 subject s16 details
 *          prev[32] hash[32]
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bytes.h"
#include "store/store.h"
#include "store/store_extra.h"

/* Length of a NUL-terminated string in a char[cap] field, or cap if the
 * field has no terminator (an invalid record to encode). */
static size_t
field_len(const char *s, size_t cap)
{
	return strnlen(s, cap);
}

static int
put_str(struct wb *b, const char *s, size_t cap)
{
	size_t n = field_len(s, cap);

	if (n >= cap || n > UINT16_MAX)
		return 0;
	wb_u16(b, (uint16_t)n);
	wb_put(b, s, n);
	return 1;
}

static int
get_str(struct rd *r, char *out, size_t cap)
{
	struct rd s;

	if (!rd_u16_prefixed(r, &s) || s.len >= cap)
		return 0;
	if (s.len > 0) {
		if (memchr(s.p, '\0', s.len) != NULL)
			return 0;
		memcpy(out, s.p, s.len);
	}
	out[s.len] = '\0';
	return 1;
}

static int
get_i64(struct rd *r, int64_t *out)
{
	uint64_t v;

	if (!rd_u64(r, &v))
		return 0;
	*out = (int64_t)v;
	return 1;
}

static int
status_ok(uint8_t status)
{
	return status <= CERT_REVOKED;
}

static int
reason_ok(uint8_t reason)
{
	return reason <= REASON_AA_COMPROMISE && reason != 7;
}

/* Encodes a cert record; 0 if a field is out of range. */
int
store_rec_cert_encode(struct wb *b, const struct cert_rec *c)
{
	if (!status_ok(c->st.status) || !reason_ok(c->st.reason) ||
	    c->der_len > STORE_DER_MAX || (c->der_len > 0 && c->der == NULL))
		return 0;
	wb_u8(b, STORE_REC_VERSION);
	wb_u8(b, c->st.status);
	wb_u8(b, c->st.reason);
	wb_u64(b, (uint64_t)c->st.not_before);
	wb_u64(b, (uint64_t)c->st.not_after);
	wb_u64(b, (uint64_t)c->st.revoked_at);
	wb_u64(b, (uint64_t)c->st.invalidity);
	wb_u64(b, c->st.change_seq);
	wb_u64(b, (uint64_t)c->issued_at);
	wb_put(b, c->replaces, STORE_SERIAL_LEN);
	wb_put(b, c->replaced_by, STORE_SERIAL_LEN);
	if (!put_str(b, c->account, sizeof(c->account)))
		return 0;
	wb_u32(b, (uint32_t)c->der_len);
	wb_put(b, c->der, c->der_len);
	return wb_ok(b);
}

static int
cert_state_rd(struct rd *r, struct cert_state *st)
{
	uint8_t ver;

	memset(st, 0, sizeof(*st));
	if (!rd_u8(r, &ver) || ver != STORE_REC_VERSION ||
	    !rd_u8(r, &st->status) || !rd_u8(r, &st->reason) ||
	    !get_i64(r, &st->not_before) || !get_i64(r, &st->not_after) ||
	    !get_i64(r, &st->revoked_at) || !get_i64(r, &st->invalidity) ||
	    !rd_u64(r, &st->change_seq))
		return 0;
	return status_ok(st->status) && reason_ok(st->reason);
}

/* Decodes the fixed part of a cert record into out. */
int
store_rec_cert_state_decode(struct cert_state *out, const uint8_t *p,
    size_t len)
{
	struct rd r;

	rd_init(&r, p, len);
	return cert_state_rd(&r, out);
}

/* Decodes a whole cert record; out->der borrows from p. */
int
store_rec_cert_decode(struct cert_rec *out,
    const uint8_t serial[STORE_SERIAL_LEN], const uint8_t *p, size_t len)
{
	struct rd r, der;

	memset(out, 0, sizeof(*out));
	memcpy(out->serial, serial, STORE_SERIAL_LEN);
	rd_init(&r, p, len);
	if (!cert_state_rd(&r, &out->st) || !get_i64(&r, &out->issued_at) ||
	    !rd_copy(&r, out->replaces, STORE_SERIAL_LEN) ||
	    !rd_copy(&r, out->replaced_by, STORE_SERIAL_LEN) ||
	    !get_str(&r, out->account, sizeof(out->account)) ||
	    !rd_u32_prefixed(&r, &der) || der.len > STORE_DER_MAX ||
	    rd_left(&r) != 0)
		goto bad;
	out->der = (uint8_t *)der.p;
	out->der_len = der.len;
	return 1;
bad:
	memset(out, 0, sizeof(*out));
	return 0;
}

/* Encodes a revocation event (the seq is the key, not in the value). */
int
store_rec_rev_encode(struct wb *b, const struct rev_event *e)
{
	if (!status_ok(e->status) || !reason_ok(e->reason))
		return 0;
	wb_u8(b, STORE_REC_VERSION);
	wb_put(b, e->serial, STORE_SERIAL_LEN);
	wb_u8(b, e->status);
	wb_u8(b, e->reason);
	wb_u64(b, (uint64_t)e->when);
	wb_u64(b, (uint64_t)e->invalidity);
	return wb_ok(b);
}

/* Decodes a revocation event stored under seq. */
int
store_rec_rev_decode(struct rev_event *out, uint64_t seq, const uint8_t *p,
    size_t len)
{
	struct rd r;
	uint8_t ver;

	memset(out, 0, sizeof(*out));
	out->seq = seq;
	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || ver != STORE_REC_VERSION ||
	    !rd_copy(&r, out->serial, STORE_SERIAL_LEN) ||
	    !rd_u8(&r, &out->status) || !rd_u8(&r, &out->reason) ||
	    !get_i64(&r, &out->when) || !get_i64(&r, &out->invalidity) ||
	    rd_left(&r) != 0 || !status_ok(out->status) ||
	    !reason_ok(out->reason)) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	return 1;
}

/* Encodes an account as version 2, or 3 with a SAN list (the name is the key, not in
 * the value); 0 for a record with a clear secret or a bad field. */
int
store_rec_account_encode(struct wb *b, const struct account_rec *a)
{
	int with_sans = a->sans[0] != '\0';

	if (a->totp_clear || a->totp_sealed_len > STORE_TOTP_SEALED_MAX ||
	    (a->flags & ~STORE_ACCT_FLAGS) != 0)
		return 0;
	wb_u8(b, with_sans ? STORE_ACCOUNT_VERSION_SANS :
	    STORE_ACCOUNT_VERSION);
	wb_u32(b, a->failed);
	wb_u64(b, (uint64_t)a->locked_until);
	wb_u64(b, a->last_totp_step);
	wb_u64(b, (uint64_t)a->created);
	wb_u64(b, (uint64_t)a->pw_changed);
	wb_u64(b, (uint64_t)a->enrol_expires);
	wb_u8(b, a->flags);
	wb_put(b, a->enrol_hash, STORE_HASH_LEN);
	if (!put_str(b, a->pwhash, sizeof(a->pwhash)))
		return 0;
	wb_u16(b, (uint16_t)a->totp_sealed_len);
	wb_put(b, a->totp_sealed, a->totp_sealed_len);
	if (!put_str(b, a->subject, sizeof(a->subject)))
		return 0;
	if (with_sans && !put_str(b, a->sans, sizeof(a->sans)))
		return 0;
	return wb_ok(b);
}

/* The fields of version 2 between created and pwhash. */
static int
account_v2_rd(struct rd *r, struct account_rec *out)
{
	return get_i64(r, &out->pw_changed) &&
	    get_i64(r, &out->enrol_expires) && rd_u8(r, &out->flags) &&
	    (out->flags & ~STORE_ACCT_FLAGS) == 0 &&
	    rd_copy(r, out->enrol_hash, STORE_HASH_LEN);
}

/* Decodes an account whose key (name) is key[key_len]: version 2, or
 * version 1 with totp_clear set (see store.h). */
int
store_rec_account_decode(struct account_rec *out, const uint8_t *key,
    size_t key_len, const uint8_t *p, size_t len)
{
	struct rd r, totp;
	size_t totp_len = 0, cap;
	uint8_t ver;

	sodium_memzero(out, sizeof(*out));
	if (key_len == 0 || key_len > STORE_NAME_MAX ||
	    memchr(key, '\0', key_len) != NULL)
		goto bad;
	memcpy(out->name, key, key_len);
	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || (ver != 1 && ver != STORE_ACCOUNT_VERSION &&
	    ver != STORE_ACCOUNT_VERSION_SANS) ||
	    !rd_u32(&r, &out->failed) || !get_i64(&r, &out->locked_until) ||
	    !rd_u64(&r, &out->last_totp_step) ||
	    !get_i64(&r, &out->created))
		goto bad;
	if (ver >= STORE_ACCOUNT_VERSION && !account_v2_rd(&r, out))
		goto bad;
	cap = ver == 1 ? STORE_TOTP_MAX : STORE_TOTP_SEALED_MAX;
	if (!get_str(&r, out->pwhash, sizeof(out->pwhash)) ||
	    !rd_u16_prefixed(&r, &totp) ||
	    (totp_len = rd_left(&totp)) > cap ||
	    !rd_copy(&totp, out->totp_sealed, totp_len) ||
	    !get_str(&r, out->subject, sizeof(out->subject)))
		goto bad;
	/* version 3: the SAN list, never empty (one encoding per record) */
	if (ver == STORE_ACCOUNT_VERSION_SANS &&
	    (!get_str(&r, out->sans, sizeof(out->sans)) ||
	    out->sans[0] == '\0'))
		goto bad;
	if (rd_left(&r) != 0)
		goto bad;
	out->totp_sealed_len = totp_len;
	if (ver == 1) {
		out->totp_clear = 1;
		out->pw_changed = out->created;
	}
	return 1;
bad:
	sodium_memzero(out, sizeof(*out));
	return 0;
}

/* Encodes a request (the id is the key, not in the value). */
int
store_rec_request_encode(struct wb *b, const struct request_rec *q)
{
	if (q->state > REQ_ISSUED || q->reason > REQREASON_DAMAGED ||
	    q->held > 1 || q->csr_len > STORE_DER_MAX ||
	    (q->csr_len > 0 && q->csr == NULL))
		return 0;
	wb_u8(b, STORE_REC_VERSION);
	wb_u8(b, q->state);
	wb_u8(b, q->reason);
	wb_u8(b, q->held);
	wb_put(b, q->lost_serial, STORE_SERIAL_LEN);
	wb_put(b, q->new_serial, STORE_SERIAL_LEN);
	wb_put(b, q->token_hash, STORE_HASH_LEN);
	wb_u64(b, (uint64_t)q->created);
	wb_u64(b, (uint64_t)q->decided);
	if (!put_str(b, q->account, sizeof(q->account)) ||
	    !put_str(b, q->decided_by, sizeof(q->decided_by)) ||
	    !put_str(b, q->note, sizeof(q->note)) ||
	    !put_str(b, q->why, sizeof(q->why)))
		return 0;
	wb_u32(b, (uint32_t)q->csr_len);
	wb_put(b, q->csr, q->csr_len);
	return wb_ok(b);
}

/* Decodes a request stored under id; out->csr borrows from p. */
int
store_rec_request_decode(struct request_rec *out, uint64_t id,
    const uint8_t *p, size_t len)
{
	struct rd r, csr;
	uint8_t ver;

	memset(out, 0, sizeof(*out));
	out->id = id;
	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || ver != STORE_REC_VERSION ||
	    !rd_u8(&r, &out->state) || !rd_u8(&r, &out->reason) ||
	    !rd_u8(&r, &out->held) ||
	    !rd_copy(&r, out->lost_serial, STORE_SERIAL_LEN) ||
	    !rd_copy(&r, out->new_serial, STORE_SERIAL_LEN) ||
	    !rd_copy(&r, out->token_hash, STORE_HASH_LEN) ||
	    !get_i64(&r, &out->created) || !get_i64(&r, &out->decided) ||
	    !get_str(&r, out->account, sizeof(out->account)) ||
	    !get_str(&r, out->decided_by, sizeof(out->decided_by)) ||
	    !get_str(&r, out->note, sizeof(out->note)) ||
	    !get_str(&r, out->why, sizeof(out->why)) ||
	    !rd_u32_prefixed(&r, &csr) || csr.len > STORE_DER_MAX ||
	    rd_left(&r) != 0 || out->state > REQ_ISSUED ||
	    out->reason > REQREASON_DAMAGED || out->held > 1) {
		memset(out, 0, sizeof(*out));
		out->id = 0;
		return 0;
	}
	out->csr = (uint8_t *)csr.p;
	out->csr_len = csr.len;
	return 1;
}

/* Encodes an audit record (the seq is the key, not in the value). */
int
store_rec_audit_encode(struct wb *b, const struct audit_rec *a)
{
	wb_u8(b, STORE_REC_VERSION);
	wb_u64(b, (uint64_t)a->when);
	if (!put_str(b, a->actor, sizeof(a->actor)) ||
	    !put_str(b, a->action, sizeof(a->action)) ||
	    !put_str(b, a->subject, sizeof(a->subject)) ||
	    !put_str(b, a->details, sizeof(a->details)))
		return 0;
	wb_put(b, a->prev, STORE_HASH_LEN);
	wb_put(b, a->hash, STORE_HASH_LEN);
	return wb_ok(b);
}

/* Decodes an audit record stored under seq. */
int
store_rec_audit_decode(struct audit_rec *out, uint64_t seq, const uint8_t *p,
    size_t len)
{
	struct rd r;
	uint8_t ver;

	memset(out, 0, sizeof(*out));
	out->seq = seq;
	rd_init(&r, p, len);
	if (!rd_u8(&r, &ver) || ver != STORE_REC_VERSION ||
	    !get_i64(&r, &out->when) ||
	    !get_str(&r, out->actor, sizeof(out->actor)) ||
	    !get_str(&r, out->action, sizeof(out->action)) ||
	    !get_str(&r, out->subject, sizeof(out->subject)) ||
	    !get_str(&r, out->details, sizeof(out->details)) ||
	    !rd_copy(&r, out->prev, STORE_HASH_LEN) ||
	    !rd_copy(&r, out->hash, STORE_HASH_LEN) || rd_left(&r) != 0) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	return 1;
}

/* BLAKE2b-256 over prev and the canonical encoding of the fields. */
int
store_audit_hash(uint8_t out[STORE_HASH_LEN], const struct audit_rec *a)
{
	struct wb b;
	int rc = 0;

	wb_init(&b);
	wb_put(&b, a->prev, STORE_HASH_LEN);
	wb_u64(&b, a->seq);
	wb_u64(&b, (uint64_t)a->when);
	if (!put_str(&b, a->actor, sizeof(a->actor)) ||
	    !put_str(&b, a->action, sizeof(a->action)) ||
	    !put_str(&b, a->subject, sizeof(a->subject)) ||
	    !put_str(&b, a->details, sizeof(a->details)) || !wb_ok(&b))
		goto out;
	if (crypto_generichash(out, STORE_HASH_LEN, b.data, b.len, NULL,
	    0) != 0)
		goto out;
	rc = 1;
out:
	wb_cleanup(&b);
	return rc;
}
