/*
 * test_proto.c - the CA protocol codec: round trips for every message type
 * and every malformed-frame rule of docs/PROTOCOL.md, with exact codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>

#include "common/bytes.h"
#include "ca/proto.h"

/* ---- raw frame helpers ---- */

static void
raw_begin(struct wb *b, uint8_t version, uint8_t type, uint32_t id)
{
	wb_init(b);
	wb_u32(b, 0);
	wb_u8(b, version);
	wb_u8(b, type);
	wb_u32(b, id);
}

static void
raw_tlv(struct wb *b, uint16_t tag, const void *v, size_t n)
{
	wb_u16(b, tag);
	wb_u16(b, (uint16_t)n);
	wb_put(b, v, n);
}

static void
raw_end(struct wb *b)
{
	assert_true(wb_ok(b));
	be32_put(b->data, (uint32_t)(b->len - 4));
}

static void
raw_login(struct wb *b, const char *acct, const char *pw, const char *otp)
{
	raw_begin(b, 1, PROTO_LOGIN, 7);
	raw_tlv(b, PROTO_T_ACCOUNT, acct, strlen(acct));
	raw_tlv(b, PROTO_T_PASSWORD, pw, strlen(pw));
	raw_tlv(b, PROTO_T_OTP, otp, strlen(otp));
}

/* Decodes b expecting a failure with code; returns the result. */
static struct proto_result
expect_fail(const struct wb *b, uint16_t code, int fatal)
{
	struct proto_result res;
	struct proto_msg m;

	assert_int_equal(proto_decode(&res, &m, b->data, b->len, 0),
	    PROTO_FAIL);
	assert_int_equal(res.code, code);
	assert_int_equal(res.fatal, fatal);
	if (!fatal)
		assert_int_equal(res.consumed, b->len);
	assert_int_equal(m.type, 0);		/* left zeroed */
	assert_null(m.csr);
	return res;
}

/* Encodes m, decodes it back into *out; checks the frame size. */
static void
round_trip(const struct proto_msg *m, struct proto_msg *out)
{
	struct proto_result res;
	struct wb b;

	wb_init(&b);
	assert_int_equal(proto_encode(&b, m), 1);
	assert_int_equal(be32_get(b.data), b.len - 4);
	assert_int_equal(proto_decode(&res, out, b.data, b.len, 0),
	    PROTO_FRAME);
	assert_int_equal(res.consumed, b.len);
	assert_int_equal(out->version, 1);
	assert_int_equal(out->type, m->type);
	assert_int_equal(out->id, m->id);
	wb_cleanup(&b);
}

static const uint8_t der1[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
static const uint8_t der2[] = { 0x30, 0x02, 0x05, 0x00 };

/* ---- round trips ---- */

static void
test_rt_hello(void **state)
{
	struct proto_msg m, o;

	(void)state;
	proto_msg_init(&m, PROTO_HELLO, 1);
	m.versions[0] = 1;
	m.versions[1] = 2;
	m.num_versions = 2;
	round_trip(&m, &o);
	assert_int_equal(o.num_versions, 2);
	assert_int_equal(o.versions[0], 1);
	assert_int_equal(o.versions[1], 2);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_SERVER_HELLO, 1);
	m.chosen_version = 1;
	m.max_frame = 65536;
	round_trip(&m, &o);
	assert_int_equal(o.chosen_version, 1);
	assert_int_equal(o.max_frame, 65536);
	proto_msg_cleanup(&o);
}

static void
test_rt_login(void **state)
{
	struct proto_msg m, o;

	(void)state;
	proto_msg_init(&m, PROTO_LOGIN, 0xdeadbeef);
	strcpy(m.account, "alice");
	strcpy(m.password, "correct horse");
	m.password_len = strlen(m.password);
	strcpy(m.otp, "012345");
	round_trip(&m, &o);
	assert_string_equal(o.account, "alice");
	assert_string_equal(o.password, "correct horse");
	assert_int_equal(o.password_len, 13);
	assert_string_equal(o.otp, "012345");
	proto_msg_cleanup(&o);
	/* cleanup wipes the secret */
	assert_int_equal(o.password[0], 0);
	assert_int_equal(o.password_len, 0);
	proto_msg_cleanup(&m);
}

/* The LOGIN example of docs/PROTOCOL.md, byte for byte. */
/* PASSWD, ENROLL, ENROLLED: round trips and the refusals of their fields */
static void
test_rt_account(void **state)
{
	static const uint8_t nul_pw[] = { 'a', 0, 'b' };
	struct proto_msg m, o;
	struct wb b;
	size_t i;

	(void)state;
	assert_true(proto_type_is_request(PROTO_PASSWD));
	assert_true(proto_type_is_request(PROTO_ENROLL));
	assert_false(proto_type_is_request(PROTO_ENROLLED));
	assert_string_equal(proto_type_name(PROTO_ENROLLED), "ENROLLED");
	assert_string_equal(proto_err_name(PROTO_E_REPLAY),
	    "code already used");
	assert_string_equal(proto_err_name(PROTO_E_POLICY),
	    "password refused by the policy");

	proto_msg_init(&m, PROTO_PASSWD, 3);
	strcpy(m.new_password, "New-Horse-Battery-42");
	m.new_password_len = strlen(m.new_password);
	round_trip(&m, &o);
	assert_string_equal(o.new_password, "New-Horse-Battery-42");
	assert_int_equal(o.new_password_len, 20);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_ENROLL, 4);
	strcpy(m.account, "alice");
	strcpy(m.enrol_code, "abcde-FGHIJ-KLMNO-PQRS7");
	strcpy(m.new_password, "New-Horse-Battery-42");
	m.new_password_len = strlen(m.new_password);
	round_trip(&m, &o);
	assert_string_equal(o.account, "alice");
	assert_string_equal(o.enrol_code, "abcde-FGHIJ-KLMNO-PQRS7");
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_ENROLLED, 4);
	for (i = 0; i < 20; i++)
		m.totp_secret[i] = (uint8_t)i;
	m.totp_secret_len = 20;
	round_trip(&m, &o);
	assert_int_equal(o.totp_secret_len, 20);
	assert_memory_equal(o.totp_secret, m.totp_secret, 20);
	proto_msg_cleanup(&o);

	/* the encoder refuses what the decoder refuses */
	wb_init(&b);
	m.totp_secret_len = 9;
	assert_int_equal(proto_encode(&b, &m), 0);
	proto_msg_init(&m, PROTO_ENROLL, 4);
	strcpy(m.account, "alice");
	strcpy(m.enrol_code, "ABCD1");
	strcpy(m.new_password, "x");
	m.new_password_len = 1;
	assert_int_equal(proto_encode(&b, &m), 0);
	proto_msg_init(&m, PROTO_PASSWD, 3);
	assert_int_equal(proto_encode(&b, &m), 0);	/* no password */
	assert_int_equal(b.len, 0);
	wb_cleanup(&b);

	/* decoder: a NUL in NEW_PASSWORD, a bad code letter, no code */
	raw_begin(&b, 1, PROTO_PASSWD, 3);
	raw_tlv(&b, PROTO_T_NEW_PASSWORD, nul_pw, sizeof(nul_pw));
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_ENROLL, 3);
	raw_tlv(&b, PROTO_T_ACCOUNT, "alice", 5);
	raw_tlv(&b, PROTO_T_ENROL_CODE, "AB=CD", 5);
	raw_tlv(&b, PROTO_T_NEW_PASSWORD, "x", 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_ENROLL, 3);
	raw_tlv(&b, PROTO_T_ACCOUNT, "alice", 5);
	raw_tlv(&b, PROTO_T_NEW_PASSWORD, "x", 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
}

static void
test_doc_example(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x00, 0x00, 0x1f, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02,
		0x00, 0x10, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
		0x00, 0x11, 0x00, 0x02, 'p', 'w',
		0x00, 0x12, 0x00, 0x06, '1', '2', '3', '4', '5', '6',
	};
	struct proto_msg m;
	struct wb b;

	(void)state;
	proto_msg_init(&m, PROTO_LOGIN, 2);
	strcpy(m.account, "alice");
	strcpy(m.password, "pw");
	m.password_len = 2;
	strcpy(m.otp, "123456");
	wb_init(&b);
	assert_int_equal(proto_encode(&b, &m), 1);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	wb_cleanup(&b);
	proto_msg_cleanup(&m);
}

static void
test_rt_reissue(void **state)
{
	struct proto_msg m, o;
	int i;

	(void)state;
	proto_msg_init(&m, PROTO_REISSUE, 3);
	for (i = 0; i < PROTO_SERIAL_LEN; i++)
		m.serial[i] = (uint8_t)(0x10 + i);
	assert_int_equal(proto_msg_set_csr(&m, der1, sizeof(der1)), 1);
	m.reason = PROTO_REASON_COMPROMISED;
	strcpy(m.note, "laptop stolen at the airport");
	round_trip(&m, &o);
	assert_memory_equal(o.serial, m.serial, PROTO_SERIAL_LEN);
	assert_int_equal(o.csr_len, sizeof(der1));
	assert_memory_equal(o.csr, der1, sizeof(der1));
	assert_int_equal(o.reason, PROTO_REASON_COMPROMISED);
	assert_string_equal(o.note, "laptop stolen at the airport");
	proto_msg_cleanup(&o);

	/* the note is optional */
	m.note[0] = '\0';
	round_trip(&m, &o);
	assert_string_equal(o.note, "");
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);
}

/* REQUEST (0x20): CSR and an optional NOTE; no CSR, a control character
 * in NOTE, a CSR over the limit or a truncated field are refused. */
static void
test_rt_enroll(void **state)
{
	struct proto_msg m, o;
	struct wb b;
	static uint8_t big[PROTO_CSR_MAX + 1];

	(void)state;
	assert_true(proto_type_is_request(PROTO_REQUEST));
	assert_string_equal(proto_type_name(PROTO_REQUEST), "REQUEST");
	proto_msg_init(&m, PROTO_REQUEST, 5);
	assert_int_equal(proto_msg_set_csr(&m, der1, sizeof(der1)), 1);
	strcpy(m.note, "new starter, desk 4");
	round_trip(&m, &o);
	assert_int_equal(o.csr_len, sizeof(der1));
	assert_memory_equal(o.csr, der1, sizeof(der1));
	assert_string_equal(o.note, "new starter, desk 4");
	proto_msg_cleanup(&o);
	m.note[0] = '\0';
	round_trip(&m, &o);
	assert_string_equal(o.note, "");
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);

	raw_begin(&b, 1, PROTO_REQUEST, 1);	/* no CSR */
	raw_tlv(&b, PROTO_T_NOTE, "x", 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_REQUEST, 1);
	raw_tlv(&b, PROTO_T_CSR, der1, sizeof(der1));
	raw_tlv(&b, PROTO_T_NOTE, "a\nb", 3);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_REQUEST, 1);
	raw_tlv(&b, PROTO_T_CSR, big, sizeof(big));
	raw_end(&b);
	expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_REQUEST, 1);	/* value past the frame */
	wb_u16(&b, PROTO_T_CSR);
	wb_u16(&b, 10);
	wb_put(&b, der1, sizeof(der1));
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
}

/* CHALLENGE, NONCE, RENEW, RENEWED round trips; the encoder refuses a
 * RENEW without SIGNATURE or with one over PROTO_SIG_MAX; the TBS bytes
 * are fixed by the spec. */
static void
test_rt_renew(void **state)
{
	struct proto_msg m, o;
	struct wb b;
	uint8_t sig[PROTO_SIG_MAX + 1], tbs[PROTO_RENEW_TBS_LEN];
	uint8_t nonce[PROTO_NONCE_LEN];
	size_t i;

	(void)state;
	proto_msg_init(&m, PROTO_CHALLENGE, 4);
	round_trip(&m, &o);
	assert_int_equal(o.type, PROTO_CHALLENGE);
	proto_msg_cleanup(&o);
	assert_int_equal(proto_type_is_request(PROTO_CHALLENGE), 1);
	assert_int_equal(proto_type_is_request(PROTO_RENEW), 1);
	assert_int_equal(proto_type_is_request(PROTO_NONCE), 0);
	assert_int_equal(proto_type_is_request(PROTO_RENEWED), 0);
	assert_string_equal(proto_type_name(PROTO_RENEW), "RENEW");

	proto_msg_init(&m, PROTO_NONCE, 4);
	for (i = 0; i < PROTO_NONCE_LEN; i++)
		m.nonce[i] = (uint8_t)i;
	round_trip(&m, &o);
	assert_memory_equal(o.nonce, m.nonce, PROTO_NONCE_LEN);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_RENEW, 5);
	memset(sig, 0x5a, sizeof(sig));
	assert_int_equal(proto_msg_set_cert(&m, der1, sizeof(der1)), 1);
	assert_int_equal(proto_msg_set_csr(&m, der2, sizeof(der2)), 1);
	wb_init(&b);
	assert_int_equal(proto_encode(&b, &m), 0);	/* no SIGNATURE */
	assert_int_equal(proto_msg_set_sig(&m, sig, sizeof(sig)), 0);
	assert_int_equal(proto_msg_set_sig(&m, sig, PROTO_SIG_MAX), 1);
	round_trip(&m, &o);
	assert_int_equal(o.sig_len, PROTO_SIG_MAX);
	assert_memory_equal(o.sig, sig, PROTO_SIG_MAX);
	assert_memory_equal(o.cert, der1, sizeof(der1));
	assert_memory_equal(o.csr, der2, sizeof(der2));
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);

	proto_msg_init(&m, PROTO_RENEWED, 5);
	assert_int_equal(proto_msg_set_cert(&m, der1, sizeof(der1)), 1);
	assert_int_equal(proto_msg_add_chain(&m, der2, sizeof(der2)), 1);
	round_trip(&m, &o);
	assert_int_equal(o.num_chain, 1);
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);

	/* "mica-renew-v1" NUL || nonce || SHA-256(cert) || SHA-256(csr) */
	memset(nonce, 0xa5, sizeof(nonce));
	assert_int_equal(PROTO_RENEW_TBS_LEN, 14 + 32 + 64);
	proto_renew_tbs(tbs, nonce, der1, sizeof(der1), der2, sizeof(der2));
	assert_memory_equal(tbs, "mica-renew-v1\0", 14);
	assert_memory_equal(tbs + 14, nonce, sizeof(nonce));
	/* SHA-256 of the 5 bytes 30 03 02 01 05 */
	{
		uint8_t h[32];

		crypto_hash_sha256(h, der1, sizeof(der1));
		assert_memory_equal(tbs + 46, h, 32);
		crypto_hash_sha256(h, der2, sizeof(der2));
		assert_memory_equal(tbs + 78, h, 32);
	}
}

static void
test_rt_requests(void **state)
{
	static const uint8_t types[] = { PROTO_WAIT, PROTO_FETCH,
	    PROTO_STATUS };
	struct proto_msg m, o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types); i++) {
		proto_msg_init(&m, types[i], (uint32_t)i + 10);
		m.request = 0x0102030405060708ULL;
		memset(m.token, 0xa5, sizeof(m.token));
		round_trip(&m, &o);
		assert_true(o.request == 0x0102030405060708ULL);
		if (types[i] == PROTO_WAIT) {
			assert_int_equal(o.has_token, 0);
		} else {
			assert_int_equal(o.has_token, 1);
			assert_memory_equal(o.token, m.token, PROTO_TOKEN_LEN);
		}
		proto_msg_cleanup(&o);
	}
}

static void
test_rt_replies(void **state)
{
	struct proto_msg m, o;

	(void)state;
	proto_msg_init(&m, PROTO_OK, 4);
	round_trip(&m, &o);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_ACCEPTED, 5);
	m.request = 42;
	m.state = PROTO_STATE_PENDING;
	memset(m.token, 0x3c, sizeof(m.token));
	m.has_token = 1;
	round_trip(&m, &o);
	assert_true(o.request == 42);
	assert_int_equal(o.state, PROTO_STATE_PENDING);
	assert_int_equal(o.has_token, 1);
	assert_memory_equal(o.token, m.token, PROTO_TOKEN_LEN);
	proto_msg_cleanup(&o);
	m.has_token = 0;		/* STATUS answer: no token */
	m.state = PROTO_STATE_ISSUED;
	round_trip(&m, &o);
	assert_int_equal(o.has_token, 0);
	assert_int_equal(o.state, PROTO_STATE_ISSUED);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_ISSUED, 6);
	m.request = 42;
	assert_int_equal(proto_msg_set_cert(&m, der1, sizeof(der1)), 1);
	assert_int_equal(proto_msg_add_chain(&m, der2, sizeof(der2)), 1);
	assert_int_equal(proto_msg_add_chain(&m, der1, sizeof(der1)), 1);
	round_trip(&m, &o);
	assert_int_equal(o.cert_len, sizeof(der1));
	assert_memory_equal(o.cert, der1, sizeof(der1));
	assert_int_equal(o.num_chain, 2);
	assert_int_equal(o.chain_len[0], sizeof(der2));
	assert_memory_equal(o.chain[0], der2, sizeof(der2));
	assert_memory_equal(o.chain[1], der1, sizeof(der1));
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);

	proto_msg_init(&m, PROTO_REJECTED, 7);
	m.request = 43;
	strcpy(m.text, "not your laptop");
	round_trip(&m, &o);
	assert_string_equal(o.text, "not your laptop");
	assert_true(o.request == 43);
	proto_msg_cleanup(&o);

	proto_msg_init(&m, PROTO_ERROR, 8);
	m.code = PROTO_E_AUTH_FAILED;
	strcpy(m.text, "authentication failed");
	round_trip(&m, &o);
	assert_int_equal(o.code, 6);
	assert_string_equal(o.text, "authentication failed");
	proto_msg_cleanup(&o);
}

static void
test_encode_helpers(void **state)
{
	struct proto_result res;
	struct proto_msg o;
	struct wb b;
	size_t first;

	(void)state;
	wb_init(&b);
	assert_int_equal(proto_encode_error(&b, 9, PROTO_E_LOCKED,
	    "account locked"), 1);
	first = b.len;
	assert_int_equal(proto_encode_ok(&b, 10), 1);
	/* two frames back to back decode one after the other */
	assert_int_equal(proto_decode(&res, &o, b.data, b.len, 0),
	    PROTO_FRAME);
	assert_int_equal(res.consumed, first);
	assert_int_equal(o.type, PROTO_ERROR);
	assert_int_equal(o.code, 7);
	assert_int_equal(o.id, 9);
	assert_string_equal(o.text, "account locked");
	proto_msg_cleanup(&o);
	assert_int_equal(proto_decode(&res, &o, b.data + first,
	    b.len - first, 0), PROTO_FRAME);
	assert_int_equal(res.consumed, b.len - first);
	assert_int_equal(res.consumed, 10);
	assert_int_equal(o.type, PROTO_OK);
	assert_int_equal(o.id, 10);
	proto_msg_cleanup(&o);
	wb_cleanup(&b);
}

/* The encoder refuses what the decoder would refuse, appending nothing. */
static void
test_encode_refuses(void **state)
{
	struct proto_msg m;
	struct wb b;

	(void)state;
	wb_init(&b);
	wb_u8(&b, 0xee);
	proto_msg_init(&m, PROTO_LOGIN, 1);
	strcpy(m.account, "alice");
	strcpy(m.password, "pw");
	m.password_len = 2;
	assert_int_equal(proto_encode(&b, &m), 0);	/* no OTP */
	strcpy(m.otp, "12x456");
	assert_int_equal(proto_encode(&b, &m), 0);	/* not digits */
	strcpy(m.otp, "123456");
	m.password_len = PROTO_PASSWORD_MAX + 1;
	assert_int_equal(proto_encode(&b, &m), 0);	/* too long */
	m.password_len = 2;
	assert_int_equal(proto_encode(&b, &m), 1);
	proto_msg_cleanup(&m);

	proto_msg_init(&m, PROTO_ISSUED, 1);
	assert_int_equal(proto_msg_set_cert(&m, der1, sizeof(der1)), 1);
	assert_int_equal(proto_encode(&b, &m), 0);	/* no chain */
	proto_msg_cleanup(&m);
	proto_msg_init(&m, PROTO_REISSUE, 1);
	m.reason = 3;
	assert_int_equal(proto_msg_set_csr(&m, der1, sizeof(der1)), 1);
	assert_int_equal(proto_encode(&b, &m), 0);	/* bad reason */
	proto_msg_cleanup(&m);
	proto_msg_init(&m, 0x7f, 1);
	assert_int_equal(proto_encode(&b, &m), 0);	/* unknown type */
	assert_int_equal(b.data[0], 0xee);
	assert_int_equal(b.len, 1 + 35);	/* only the good LOGIN */
	wb_cleanup(&b);
}

/* ---- framing ---- */

static void
test_need_more(void **state)
{
	struct proto_result res;
	struct proto_msg m;
	struct wb b;
	size_t i;

	(void)state;
	raw_login(&b, "alice", "pw", "123456");
	raw_end(&b);
	for (i = 0; i < b.len; i++) {
		assert_int_equal(proto_decode(&res, &m, b.data, i, 0),
		    PROTO_NEED_MORE);
		if (i < 4)
			assert_int_equal(res.need, 4 - i);
		else
			assert_int_equal(res.need, b.len - i);
	}
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 0),
	    PROTO_FRAME);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
}

static void
test_length_limits(void **state)
{
	static const uint8_t big[4] = { 0x00, 0x01, 0x00, 0x01 };
	static const uint8_t short5[] = { 0, 0, 0, 5, 1, 1, 0, 0, 0 };
	struct proto_result res;
	struct proto_msg m;
	struct wb b;
	char note[500];

	(void)state;
	/* 65537 > default max: refused on the 4 length bytes alone */
	assert_int_equal(proto_decode(&res, &m, big, 4, 0), PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_TOO_LARGE);
	assert_int_equal(res.fatal, 1);
	assert_int_equal(res.id, 0);
	assert_int_equal(proto_decode(&res, &m, big, 4, 65537),
	    PROTO_NEED_MORE);
	assert_int_equal(res.need, 65537);

	/* length below the header */
	assert_int_equal(proto_decode(&res, &m, short5, sizeof(short5), 0),
	    PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_MALFORMED);
	assert_int_equal(res.fatal, 1);

	/* a caller-chosen maximum */
	memset(note, 'n', sizeof(note));
	raw_begin(&b, 1, PROTO_REISSUE, 1);
	raw_tlv(&b, PROTO_T_NOTE, note, sizeof(note));
	raw_tlv(&b, PROTO_T_NOTE, note, sizeof(note));
	raw_end(&b);				/* 6 + 2 * 504 = 1014 */
	assert_int_equal(b.len - 4, 1014);
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 1013),
	    PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_TOO_LARGE);
	assert_int_equal(res.fatal, 1);
	/* at exactly the limit the frame is read (then NOTE is duplicate) */
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 1014),
	    PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_MALFORMED);
	assert_int_equal(res.fatal, 0);
	wb_cleanup(&b);
}

static void
test_bad_version_and_type(void **state)
{
	struct proto_result res;
	struct wb b;

	(void)state;
	raw_login(&b, "alice", "pw", "123456");
	b.data[4] = 2;
	raw_end(&b);
	/* the header is whole, so the ERROR echoes its id (7), not 0 */
	res = expect_fail(&b, PROTO_E_VERSION, 1);
	assert_int_equal(res.id, 7);
	b.data[4] = 0;
	res = expect_fail(&b, PROTO_E_VERSION, 1);
	assert_int_equal(res.id, 7);
	wb_cleanup(&b);
	/* the case an independent client met: HELLO, version 2, id 7 */
	raw_begin(&b, 2, PROTO_HELLO, 7);
	raw_tlv(&b, PROTO_T_VERSIONS, "\x01\x02", 2);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_VERSION, 1);
	assert_int_equal(res.id, 7);
	wb_cleanup(&b);

	raw_begin(&b, 1, 0x7f, 77);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_TYPE, 0);
	assert_int_equal(res.id, 77);
	wb_cleanup(&b);
	raw_begin(&b, 1, 0x00, 78);
	raw_end(&b);
	expect_fail(&b, PROTO_E_TYPE, 0);
	wb_cleanup(&b);
	assert_int_equal(proto_type_is_request(PROTO_STATUS), 1);
	assert_int_equal(proto_type_is_request(PROTO_OK), 0);
}

/*
 * The largest reply: an ISSUED with a CERT and 8 CHAIN entries of 16384
 * bytes each is 6 + 12 + 9 * 16388 = 147510 bytes after len, more than
 * the default MAX_FRAME (which bounds what the server reads, not what it
 * sends); PROTOCOL.md tells clients to accept replies up to 1 MiB.
 */
static void
test_largest_reply(void **state)
{
	struct proto_result res;
	struct proto_msg m, o;
	struct wb b;
	uint8_t *der;
	int i;

	(void)state;
	assert_non_null(der = malloc(PROTO_CERT_MAX));
	memset(der, 0x30, PROTO_CERT_MAX);
	proto_msg_init(&m, PROTO_ISSUED, 9);
	m.request = 1;
	assert_int_equal(proto_msg_set_cert(&m, der, PROTO_CERT_MAX), 1);
	for (i = 0; i < PROTO_CHAIN_MAX; i++)
		assert_int_equal(proto_msg_add_chain(&m, der, PROTO_CERT_MAX),
		    1);
	assert_int_equal(proto_msg_add_chain(&m, der, 1), 0);	/* a 9th */
	wb_init(&b);
	assert_int_equal(proto_encode(&b, &m), 1);
	assert_int_equal(b.len - 4, 147510);
	assert_int_equal(proto_decode(&res, &o, b.data, b.len,
	    PROTO_MAX_FRAME_DEFAULT), PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_TOO_LARGE);
	assert_int_equal(proto_decode(&res, &o, b.data, b.len,
	    PROTO_MAX_FRAME_LIMIT), PROTO_FRAME);
	assert_int_equal(o.num_chain, PROTO_CHAIN_MAX);
	assert_int_equal(o.cert_len, PROTO_CERT_MAX);
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
	free(der);
}

static void
test_bad_tlv(void **state)
{
	struct proto_result res;
	struct wb b;

	(void)state;
	/* one stray byte: truncated field header */
	raw_login(&b, "alice", "pw", "123456");
	wb_u8(&b, 0x00);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_int_equal(res.id, 7);
	assert_string_equal(res.text, "LOGIN: truncated field header");
	wb_cleanup(&b);

	/* three bytes: still a truncated header */
	raw_login(&b, "alice", "pw", "123456");
	wb_u16(&b, PROTO_T_NOTE);
	wb_u8(&b, 0);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);

	/* value length past the end of the frame */
	raw_begin(&b, 1, PROTO_WAIT, 1);
	wb_u16(&b, PROTO_T_REQUEST);
	wb_u16(&b, 9);
	wb_u64(&b, 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text,
	    "WAIT: field runs past the end of the frame");
	wb_cleanup(&b);
}

static void
test_duplicate_missing(void **state)
{
	struct proto_result res;
	struct wb b;

	(void)state;
	raw_login(&b, "alice", "pw", "123456");
	raw_tlv(&b, PROTO_T_ACCOUNT, "bob", 3);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "LOGIN: duplicate ACCOUNT field");
	wb_cleanup(&b);

	raw_begin(&b, 1, PROTO_LOGIN, 1);
	raw_tlv(&b, PROTO_T_ACCOUNT, "alice", 5);
	raw_tlv(&b, PROTO_T_PASSWORD, "pw", 2);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "LOGIN: missing OTP field");
	wb_cleanup(&b);

	raw_begin(&b, 1, PROTO_ISSUED, 1);
	raw_tlv(&b, PROTO_T_REQUEST, "\0\0\0\0\0\0\0\1", 8);
	raw_tlv(&b, PROTO_T_CERT, der1, sizeof(der1));
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "ISSUED: missing CHAIN field");
	wb_cleanup(&b);
}

static void
test_over_long(void **state)
{
	static uint8_t big[PROTO_CSR_MAX + 1];
	struct proto_result res;
	struct wb b;
	int i;

	(void)state;
	memset(big, 'a', sizeof(big));
	raw_login(&b, "alice", "pw", "123456");
	b.len = 10;			/* keep the header only */
	raw_tlv(&b, PROTO_T_ACCOUNT, big, PROTO_ACCOUNT_MAX + 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	assert_string_equal(res.text, "LOGIN: ACCOUNT field too long");
	wb_cleanup(&b);

	raw_begin(&b, 1, PROTO_LOGIN, 1);
	raw_tlv(&b, PROTO_T_PASSWORD, big, PROTO_PASSWORD_MAX + 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	wb_cleanup(&b);

	raw_begin(&b, 1, PROTO_REISSUE, 1);
	raw_tlv(&b, PROTO_T_NOTE, big, PROTO_NOTE_MAX + 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	wb_cleanup(&b);

	raw_begin(&b, 1, PROTO_REISSUE, 1);
	raw_tlv(&b, PROTO_T_CSR, big, PROTO_CSR_MAX + 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	assert_string_equal(res.text, "REISSUE: CSR field too long");
	wb_cleanup(&b);

	/* nine CA certificates */
	raw_begin(&b, 1, PROTO_ISSUED, 1);
	raw_tlv(&b, PROTO_T_REQUEST, "\0\0\0\0\0\0\0\1", 8);
	raw_tlv(&b, PROTO_T_CERT, der1, sizeof(der1));
	for (i = 0; i < PROTO_CHAIN_MAX + 1; i++)
		raw_tlv(&b, PROTO_T_CHAIN, der2, sizeof(der2));
	raw_end(&b);
	expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	wb_cleanup(&b);

	/* a fixed-length field of the wrong length is malformed */
	raw_begin(&b, 1, PROTO_LOGIN, 1);
	raw_tlv(&b, PROTO_T_OTP, "1234567", 7);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "LOGIN: OTP field has a bad length");
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_REISSUE, 1);
	raw_tlv(&b, PROTO_T_SERIAL, big, 15);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
}

static void
test_bad_values(void **state)
{
	struct wb b;
	uint8_t v;

	(void)state;
	raw_login(&b, "alice", "pw", "12a456");
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_login(&b, "al\nce", "pw", "123456");
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_LOGIN, 1);
	raw_tlv(&b, PROTO_T_PASSWORD, "p\0w", 3);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_LOGIN, 1);
	raw_tlv(&b, PROTO_T_ACCOUNT, "", 0);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);

	v = 3;
	raw_begin(&b, 1, PROTO_REISSUE, 1);
	raw_tlv(&b, PROTO_T_REASON, &v, 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	v = 4;
	raw_begin(&b, 1, PROTO_ACCEPTED, 1);
	raw_tlv(&b, PROTO_T_STATE, &v, 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_ERROR, 1);
	raw_tlv(&b, PROTO_T_CODE, "\0\0", 2);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_SERVER_HELLO, 1);
	raw_tlv(&b, PROTO_T_MAX_FRAME, "\0\0\3\377", 4);	/* 1023 */
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
}

/* Decodes a REISSUE whose NOTE is note[0..n) (the other fields valid). */
static struct proto_result
reissue_with_note(const char *note, size_t n, enum proto_status want)
{
	struct proto_result res;
	struct proto_msg m;
	struct wb b;
	uint8_t serial[PROTO_SERIAL_LEN], reason = 0;

	memset(serial, 0x11, sizeof(serial));
	raw_begin(&b, 1, PROTO_REISSUE, 9);
	raw_tlv(&b, PROTO_T_SERIAL, serial, sizeof(serial));
	raw_tlv(&b, PROTO_T_CSR, der1, sizeof(der1));
	raw_tlv(&b, PROTO_T_REASON, &reason, 1);
	raw_tlv(&b, PROTO_T_NOTE, note, n);
	raw_end(&b);
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 0), want);
	if (want == PROTO_FRAME)
		assert_memory_equal(m.note, note, n);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
	return res;
}

static void
test_text_controls(void **state)
{
	static const char *bad_names[] = {
		"al ice", "al\tice", "alice\x7f", "al\"ice", "a=b", "alice\n",
		"\x1b[31m", "ali\xc3\xa9", "a/b", "a,b",
	};
	struct proto_result res;
	struct proto_msg m;
	struct wb b;
	char c[2], name[PROTO_ACCOUNT_MAX + 1];
	size_t i;
	int ch;

	(void)state;
	/* Every C0 control and DEL in NOTE: ERROR 1 naming the field. */
	for (ch = 0; ch < 0x80; ch++) {
		if (ch >= 0x20 && ch != 0x7f)
			continue;
		c[0] = 'x';
		c[1] = (char)ch;
		res = reissue_with_note(c, 2, PROTO_FAIL);
		assert_int_equal(res.code, PROTO_E_MALFORMED);
		assert_int_equal(res.fatal, 0);
		assert_int_equal(res.id, 9);
		assert_string_equal(res.text, "REISSUE: NOTE field contains a "
		    "control character");
	}
	/* The forged-log-line example of the review. */
	res = reissue_with_note("ok\nmicad: info: req=1 reissue approved",
	    38, PROTO_FAIL);
	assert_int_equal(res.code, PROTO_E_MALFORMED);
	/* Printable text and UTF-8 pass. */
	reissue_with_note("laptop stolen ~ \"at\" the caf\xc3\xa9", 30,
	    PROTO_FRAME);
	reissue_with_note("", 0, PROTO_FRAME);

	/* TEXT (ERROR, REJECTED) under the same rule. */
	raw_begin(&b, 1, PROTO_REJECTED, 4);
	raw_tlv(&b, PROTO_T_REQUEST, "\0\0\0\0\0\0\0\1", 8);
	raw_tlv(&b, PROTO_T_TEXT, "no\r\n", 4);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "REJECTED: TEXT field contains a "
	    "control character");
	wb_cleanup(&b);
	/* The encoder refuses what the decoder refuses ... */
	proto_msg_init(&m, PROTO_REJECTED, 4);
	m.request = 1;
	strcpy(m.text, "line one\nline two");
	wb_init(&b);
	assert_int_equal(proto_encode(&b, &m), 0);
	assert_int_equal(b.len, 0);
	/* ... and proto_encode_error / proto_text_sanitize make any text
	 * sendable. */
	assert_int_equal(proto_encode_error(&b, 5, PROTO_E_BAD_REQUEST,
	    "bad\x1b[2J\tthing\x7f"), 1);
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 0),
	    PROTO_FRAME);
	assert_string_equal(m.text, "bad [2J thing ");
	proto_msg_cleanup(&m);
	wb_cleanup(&b);

	/* ACCOUNT: only what mica-admin accepts for names. */
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		raw_login(&b, bad_names[i], "pw", "123456");
		raw_end(&b);
		res = expect_fail(&b, PROTO_E_MALFORMED, 0);
		assert_string_equal(res.text, "LOGIN: ACCOUNT field: only "
		    "A-Z a-z 0-9 . - _ @ allowed");
		wb_cleanup(&b);
		assert_int_equal(proto_account_valid(bad_names[i]), 0);
	}
	raw_login(&b, "Alice.Smith-2_x@example.org", "pw", "123456");
	raw_end(&b);
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 0),
	    PROTO_FRAME);
	assert_string_equal(m.account, "Alice.Smith-2_x@example.org");
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
	assert_int_equal(proto_account_valid("Alice.Smith-2_x@example.org"),
	    1);
	assert_int_equal(proto_account_valid(""), 0);
	memset(name, 'a', sizeof(name));
	name[PROTO_ACCOUNT_MAX] = '\0';
	assert_int_equal(proto_account_valid(name), 1);
	name[0] = '-';
	assert_int_equal(proto_account_valid(name), 1);
}

static void
test_log_escape(void **state)
{
	char out[32];

	(void)state;
	proto_log_escape(out, sizeof(out), "plain text", 100);
	assert_string_equal(out, "plain text");
	proto_log_escape(out, sizeof(out), "a\nb=\"c\"\\", 100);
	assert_string_equal(out, "a\\x0ab=\\x22c\\x22\\x5c");
	proto_log_escape(out, sizeof(out), "\x1b[31m\xc3\xa9", 100);
	assert_string_equal(out, "\\x1b[31m\\xc3\\xa9");
	/* max_in bounds a text that is not NUL-terminated */
	proto_log_escape(out, sizeof(out), "abcdef", 3);
	assert_string_equal(out, "abc");
	/* too long for out: cut, marked, terminated */
	proto_log_escape(out, 12, "0123456789abcdef", 100);
	assert_string_equal(out, "01234567...");
	proto_log_escape(out, 12, "\n\n\n\n", 100);
	assert_string_equal(out, "\\x0a\\x0a...");
	proto_log_escape(out, 1, "abc", 100);
	assert_string_equal(out, "");
}

static void
test_unknown_tags(void **state)
{
	struct proto_result res;
	struct proto_msg m;
	struct wb b;

	(void)state;
	/* unknown critical tag */
	raw_login(&b, "alice", "pw", "123456");
	raw_tlv(&b, 0x8123, "x", 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_CRITICAL, 0);
	assert_int_equal(res.id, 7);
	wb_cleanup(&b);

	/* unknown non-critical tags (and a known one foreign to LOGIN,
	 * even if repeated or empty) are skipped */
	raw_begin(&b, 1, PROTO_LOGIN, 7);
	raw_tlv(&b, 0x0123, "xyz", 3);
	raw_tlv(&b, PROTO_T_ACCOUNT, "alice", 5);
	raw_tlv(&b, PROTO_T_CSR, "", 0);
	raw_tlv(&b, PROTO_T_CSR, "", 0);
	raw_tlv(&b, PROTO_T_PASSWORD, "pw", 2);
	raw_tlv(&b, PROTO_T_OTP, "123456", 6);
	raw_tlv(&b, 0x7fff, NULL, 0);
	raw_end(&b);
	assert_int_equal(proto_decode(&res, &m, b.data, b.len, 0),
	    PROTO_FRAME);
	assert_int_equal(res.consumed, b.len);
	assert_string_equal(m.account, "alice");
	assert_string_equal(m.password, "pw");
	assert_string_equal(m.otp, "123456");
	assert_null(m.csr);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
}

static void
test_names_and_token(void **state)
{
	uint8_t tok[PROTO_TOKEN_LEN], back[PROTO_TOKEN_LEN];
	char hex[PROTO_TOKEN_HEX_LEN + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tok); i++)
		tok[i] = (uint8_t)(i * 7 + 0xa0);
	proto_token_hex(hex, tok);
	assert_string_equal(hex, "a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c"
	    "333a41484f565d646b7279");
	assert_int_equal(proto_token_parse(back, hex), 1);
	assert_memory_equal(back, tok, sizeof(tok));
	hex[0] = 'A';
	assert_int_equal(proto_token_parse(back, hex), 1);
	assert_int_equal(back[0], 0xa0);
	hex[5] = 'g';
	assert_int_equal(proto_token_parse(back, hex), 0);
	assert_int_equal(proto_token_parse(back, "abcd"), 0);

	assert_string_equal(proto_type_name(PROTO_REISSUE), "REISSUE");
	assert_string_equal(proto_type_name(0x55), "unknown");
	assert_string_equal(proto_err_name(PROTO_E_NOT_FOUND), "not found");
	assert_string_equal(proto_err_name(999), "unknown error");
	/* 14: the standby's refusal, after the first release's 1..13 */
	assert_int_equal(PROTO_E_STANDBY, 14);
	assert_string_equal(proto_err_name(PROTO_E_STANDBY),
	    "this server is a standby");
	assert_string_equal(proto_err_name(15), "unknown error");
	assert_int_equal(proto_reason_parse("damaged"), PROTO_REASON_DAMAGED);
	assert_int_equal(proto_reason_parse("bored"), -1);
	assert_string_equal(proto_state_name(PROTO_STATE_REJECTED),
	    "rejected");
}

/* ---- LIST / CERTS ---- */

static void
certinfo_fill(struct proto_certinfo *ci, uint8_t tag)
{
	memset(ci, 0, sizeof(*ci));
	memset(ci->serial, tag, sizeof(ci->serial));
	ci->status = PROTO_CERT_HOLD;
	ci->not_before = -5;		/* before 1970 is a valid time */
	ci->not_after = 1900000000;
	memset(ci->replaced_by, 0x11, sizeof(ci->replaced_by));
	memcpy(ci->subject, der2, sizeof(der2));
	ci->subject_len = sizeof(der2);
}

/* A raw CERTINFO value: fixed part from ci, then subject bytes. */
static size_t
raw_certinfo(uint8_t *out, const struct proto_certinfo *ci)
{
	memcpy(out, ci->serial, 16);
	out[16] = ci->status;
	be64_put(out + 17, (uint64_t)ci->not_before);
	be64_put(out + 25, (uint64_t)ci->not_after);
	memcpy(out + 33, ci->replaced_by, 16);
	memcpy(out + 49, ci->subject, ci->subject_len);
	return 49 + ci->subject_len;
}

static void
test_rt_list(void **state)
{
	struct proto_certinfo ci;
	struct proto_msg m, o;
	size_t i;

	(void)state;
	assert_int_equal(proto_type_is_request(PROTO_LIST), 1);
	assert_int_equal(proto_type_is_request(PROTO_CERTS), 0);
	assert_string_equal(proto_type_name(PROTO_LIST), "LIST");
	assert_string_equal(proto_type_name(PROTO_CERTS), "CERTS");
	proto_msg_init(&m, PROTO_LIST, 3);
	round_trip(&m, &o);
	proto_msg_cleanup(&o);

	/* no certificates: TOTAL 0, no CERTINFO */
	proto_msg_init(&m, PROTO_CERTS, 4);
	round_trip(&m, &o);
	assert_int_equal(o.total, 0);
	assert_int_equal(o.num_certs, 0);
	proto_msg_cleanup(&o);

	/* the full 32, TOTAL above them */
	m.total = 40;
	for (i = 0; i < PROTO_LIST_MAX; i++) {
		certinfo_fill(&ci, (uint8_t)(i + 1));
		assert_int_equal(proto_msg_add_certinfo(&m, &ci), 1);
	}
	assert_int_equal(proto_msg_add_certinfo(&m, &ci), 0);	/* full */
	round_trip(&m, &o);
	assert_int_equal(o.total, 40);
	assert_int_equal(o.num_certs, PROTO_LIST_MAX);
	for (i = 0; i < PROTO_LIST_MAX; i++) {
		assert_int_equal(o.certs[i].serial[0], i + 1);
		assert_int_equal(o.certs[i].status, PROTO_CERT_HOLD);
		assert_true(o.certs[i].not_before == -5);
		assert_true(o.certs[i].not_after == 1900000000);
		assert_int_equal(o.certs[i].replaced_by[15], 0x11);
		assert_int_equal(o.certs[i].subject_len, sizeof(der2));
		assert_memory_equal(o.certs[i].subject, der2, sizeof(der2));
	}
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);

	/* a subject of exactly PROTO_SUBJECT_MAX bytes */
	proto_msg_init(&m, PROTO_CERTS, 5);
	certinfo_fill(&ci, 1);
	memset(ci.subject, 0x30, PROTO_SUBJECT_MAX);
	ci.subject_len = PROTO_SUBJECT_MAX;
	assert_int_equal(proto_msg_add_certinfo(&m, &ci), 1);
	round_trip(&m, &o);
	assert_int_equal(o.certs[0].subject_len, PROTO_SUBJECT_MAX);
	proto_msg_cleanup(&o);
	proto_msg_cleanup(&m);
}

/* The encoder refuses each CERTINFO the decoder refuses. */
static void
test_certs_encode_refuses(void **state)
{
	struct proto_certinfo ci;
	struct proto_msg m;
	struct wb b;

	(void)state;
	wb_init(&b);
	proto_msg_init(&m, PROTO_CERTS, 1);
	certinfo_fill(&ci, 1);
	ci.status = 3;
	assert_int_equal(proto_msg_add_certinfo(&m, &ci), 1);
	assert_int_equal(proto_encode(&b, &m), 0);	/* unknown status */
	m.certs[0].status = PROTO_CERT_GOOD;
	m.certs[0].not_after = -6;
	assert_int_equal(proto_encode(&b, &m), 0);	/* na < nb */
	m.certs[0].not_after = 0;
	m.certs[0].subject[0] = 0x31;
	assert_int_equal(proto_encode(&b, &m), 0);	/* not a SEQUENCE */
	m.certs[0].subject[0] = 0x30;
	m.certs[0].subject_len = 1;
	assert_int_equal(proto_encode(&b, &m), 0);	/* subject too short */
	m.certs[0].subject_len = PROTO_SUBJECT_MAX + 1;
	assert_int_equal(proto_encode(&b, &m), 0);	/* too long */
	m.certs[0].subject_len = 2;
	m.num_certs = PROTO_LIST_MAX + 1;
	assert_int_equal(proto_encode(&b, &m), 0);	/* too many */
	m.num_certs = 1;
	assert_int_equal(b.len, 0);
	assert_int_equal(proto_encode(&b, &m), 1);
	proto_msg_cleanup(&m);
	wb_cleanup(&b);
}

static void
test_certs_malformed(void **state)
{
	struct proto_certinfo ci;
	struct proto_result res;
	uint8_t v[PROTO_CERTINFO_MAX + 8], total[4] = { 0, 0, 0, 1 };
	struct wb b;
	size_t n, i;

	(void)state;
	certinfo_fill(&ci, 7);
	n = raw_certinfo(v, &ci);

	/* LIST carries no fields: a known tag of another message is skipped,
	 * an unknown critical one is ERROR 13 */
	raw_begin(&b, 1, PROTO_LIST, 9);
	raw_tlv(&b, PROTO_T_ACCOUNT, "alice", 5);
	raw_end(&b);
	{
		struct proto_msg o;

		assert_int_equal(proto_decode(&res, &o, b.data, b.len, 0),
		    PROTO_FRAME);
		assert_int_equal(o.type, PROTO_LIST);
		proto_msg_cleanup(&o);
	}
	wb_cleanup(&b);
	raw_begin(&b, 1, PROTO_LIST, 9);
	raw_tlv(&b, 0x8061, "", 0);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_CRITICAL, 0);
	assert_int_equal(res.id, 9);
	wb_cleanup(&b);
	/* truncated: a field header cut short */
	raw_begin(&b, 1, PROTO_LIST, 9);
	wb_u8(&b, 0x00);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);

	/* CERTS without TOTAL */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_CERTINFO, v, n);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "CERTS: missing TOTAL field");
	wb_cleanup(&b);
	/* TOTAL twice */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text, "CERTS: duplicate TOTAL field");
	wb_cleanup(&b);
	/* TOTAL of 3 bytes */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 3);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	/* CERTINFO: one byte short of the minimum */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_tlv(&b, PROTO_T_CERTINFO, v, PROTO_CERTINFO_FIXED + 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text,
	    "CERTS: CERTINFO field has a bad length");
	wb_cleanup(&b);
	/* CERTINFO: one byte too long */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	memset(v + PROTO_CERTINFO_FIXED + 1, 0x30, PROTO_SUBJECT_MAX + 1);
	raw_tlv(&b, PROTO_T_CERTINFO, v, PROTO_CERTINFO_MAX + 1);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	assert_string_equal(res.text, "CERTS: CERTINFO field too long");
	wb_cleanup(&b);
	/* bad status, reversed validity, subject not a SEQUENCE */
	v[16] = 3;
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_tlv(&b, PROTO_T_CERTINFO, v, n);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text,
	    "CERTS: CERTINFO unknown certificate status");
	wb_cleanup(&b);
	v[16] = 2;
	ci.not_after = -6;
	n = raw_certinfo(v, &ci);
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_tlv(&b, PROTO_T_CERTINFO, v, n);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text,
	    "CERTS: CERTINFO notAfter before notBefore");
	wb_cleanup(&b);
	ci.not_after = 0;
	n = raw_certinfo(v, &ci);
	v[PROTO_CERTINFO_FIXED] = 0x04;
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	raw_tlv(&b, PROTO_T_CERTINFO, v, n);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_MALFORMED, 0);
	assert_string_equal(res.text,
	    "CERTS: CERTINFO subject is not a DER Name");
	wb_cleanup(&b);
	v[PROTO_CERTINFO_FIXED] = 0x30;
	/* a CERTINFO whose value runs past the frame */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	wb_u16(&b, PROTO_T_CERTINFO);
	wb_u16(&b, (uint16_t)n);
	wb_put(&b, v, n - 1);
	raw_end(&b);
	expect_fail(&b, PROTO_E_MALFORMED, 0);
	wb_cleanup(&b);
	/* 33 CERTINFO fields */
	raw_begin(&b, 1, PROTO_CERTS, 2);
	raw_tlv(&b, PROTO_T_TOTAL, total, 4);
	for (i = 0; i < PROTO_LIST_MAX + 1; i++)
		raw_tlv(&b, PROTO_T_CERTINFO, v, n);
	raw_end(&b);
	res = expect_fail(&b, PROTO_E_TOO_LARGE, 0);
	assert_string_equal(res.text, "CERTS: too many CERTINFO fields");
	wb_cleanup(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rt_hello),
		cmocka_unit_test(test_rt_login),
		cmocka_unit_test(test_rt_account),
		cmocka_unit_test(test_doc_example),
		cmocka_unit_test(test_rt_reissue),
		cmocka_unit_test(test_rt_enroll),
		cmocka_unit_test(test_rt_renew),
		cmocka_unit_test(test_rt_requests),
		cmocka_unit_test(test_rt_replies),
		cmocka_unit_test(test_encode_helpers),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_need_more),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_bad_version_and_type),
		cmocka_unit_test(test_largest_reply),
		cmocka_unit_test(test_bad_tlv),
		cmocka_unit_test(test_duplicate_missing),
		cmocka_unit_test(test_over_long),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_text_controls),
		cmocka_unit_test(test_log_escape),
		cmocka_unit_test(test_unknown_tags),
		cmocka_unit_test(test_names_and_token),
		cmocka_unit_test(test_rt_list),
		cmocka_unit_test(test_certs_encode_refuses),
		cmocka_unit_test(test_certs_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
