/*
 * proto.h - the mica CA protocol codec (see docs/PROTOCOL.md).
 *
 * Pure functions over byte buffers, no I/O: the server feeds it what a
 * bufferevent has read, the client what SSL_read returned.
 *
 * Frame:  u32 len | u8 version | u8 type | u32 id | TLV...
 *         len counts everything after itself (>= PROTO_HEADER_LEN).
 * TLV:    u16 tag | u16 len | value.  Tags with PROTO_TAG_CRITICAL set must
 *         be understood: an unknown critical tag is an error, an unknown
 *         non-critical tag is skipped.
 */
#ifndef MICA_PROTO_H
#define MICA_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct wb;

#define PROTO_VERSION		1
#define PROTO_LEN_PREFIX	4		/* the u32 length */
#define PROTO_HEADER_LEN	6		/* version, type, id */
#define PROTO_MAX_FRAME_DEFAULT	65536		/* bytes after the prefix */
#define PROTO_MAX_FRAME_LIMIT	(1024 * 1024)	/* cap on any max_frame */
#define PROTO_MAX_FRAME_MIN	1024		/* a server may not go lower */

/* Field limits (bytes). */
#define PROTO_VERSIONS_MAX	16
#define PROTO_ACCOUNT_MAX	64
#define PROTO_PASSWORD_MAX	1024
#define PROTO_OTP_LEN		6
#define PROTO_CSR_MAX		16384
#define PROTO_NOTE_MAX		512
#define PROTO_TEXT_MAX		512
#define PROTO_CERT_MAX		16384
#define PROTO_CHAIN_MAX		8		/* CA certificates in ISSUED */
#define PROTO_SERIAL_LEN	16
#define PROTO_TOKEN_LEN		32
#define PROTO_TOKEN_HEX_LEN	(2 * PROTO_TOKEN_LEN)	/* lowercase, no NUL */
#define PROTO_LIST_MAX		32		/* CERTINFO fields in CERTS */
#define PROTO_SUBJECT_MAX	1024		/* subject Name DER in CERTINFO */
/* CERTINFO: serial 16 | status u8 | notBefore i64 | notAfter i64 |
 * replaced_by 16 | subject Name DER 2..PROTO_SUBJECT_MAX */
#define PROTO_CERTINFO_FIXED	(2 * PROTO_SERIAL_LEN + 1 + 8 + 8)
#define PROTO_CERTINFO_MAX	(PROTO_CERTINFO_FIXED + PROTO_SUBJECT_MAX)
#define PROTO_ENROL_CODE_MAX	64		/* ENROL_CODE text */
#define PROTO_TOTP_SECRET_MIN	10		/* RFC 4226: >= 128 bits */
#define PROTO_TOTP_SECRET_MAX	64
#define PROTO_NONCE_LEN		32		/* CHALLENGE's nonce */
#define PROTO_SIG_MAX		1024		/* RENEW's signature */

/* Message types: requests (client -> server) below 0x80, replies above. */
enum proto_type {
	PROTO_HELLO = 0x01,		/* VERSIONS */
	PROTO_LOGIN = 0x02,		/* ACCOUNT, PASSWORD, OTP */
	PROTO_REISSUE = 0x03,		/* SERIAL, CSR, REASON, [NOTE] */
	PROTO_WAIT = 0x04,		/* REQUEST */
	PROTO_FETCH = 0x05,		/* REQUEST, TOKEN */
	PROTO_STATUS = 0x06,		/* REQUEST, TOKEN */
	PROTO_LIST = 0x07,		/* (no fields) */
	/* 0x20..0x27: requests added in the issue 14 round */
	PROTO_REQUEST = 0x20,		/* CSR, [NOTE]: a first certificate */
	/* the account (0x10..0x17 / 0x90..0x97) */
	PROTO_PASSWD = 0x10,		/* NEW_PASSWORD */
	PROTO_ENROLL = 0x11,		/* ACCOUNT, ENROL_CODE, NEW_PASSWORD */
	PROTO_CHALLENGE = 0x18,		/* (no fields) */
	PROTO_RENEW = 0x19,		/* CERT, CSR, SIGNATURE */
	PROTO_OK = 0x80,		/* (no fields) */
	PROTO_SERVER_HELLO = 0x81,	/* VERSION, MAX_FRAME */
	PROTO_ACCEPTED = 0x82,		/* REQUEST, STATE, [TOKEN] */
	PROTO_ISSUED = 0x83,		/* REQUEST, CERT, CHAIN x 1..8 */
	PROTO_REJECTED = 0x84,		/* REQUEST, TEXT */
	PROTO_ERROR = 0x85,		/* CODE, TEXT */
	PROTO_CERTS = 0x86,		/* TOTAL, CERTINFO x 0..32 */
	PROTO_ENROLLED = 0x90,		/* TOTP_SECRET */
	PROTO_NONCE = 0x98,		/* NONCE */
	PROTO_RENEWED = 0x99,		/* CERT, CHAIN x 1..8 */
};

/* TLV tags. */
#define PROTO_TAG_CRITICAL	0x8000
enum proto_tag {
	PROTO_T_VERSIONS = 0x0001,	/* u8 list, 1..16 */
	PROTO_T_VERSION = 0x0002,	/* u8 */
	PROTO_T_MAX_FRAME = 0x0003,	/* u32 */
	PROTO_T_ACCOUNT = 0x0010,	/* 1..64 of A-Z a-z 0-9 . - _ @ */
	PROTO_T_PASSWORD = 0x0011,	/* bytes 1..1024, no NUL */
	PROTO_T_OTP = 0x0012,		/* exactly 6 ASCII digits */
	PROTO_T_SERIAL = 0x0020,	/* 16 bytes */
	PROTO_T_CSR = 0x0021,		/* DER 1..16384 */
	PROTO_T_REASON = 0x0022,	/* u8 enum proto_reason */
	PROTO_T_NOTE = 0x0023,		/* text 0..512, no C0 control, DEL */
	PROTO_T_REQUEST = 0x0030,	/* u64 reissue request id */
	PROTO_T_TOKEN = 0x0031,		/* 32 bytes */
	PROTO_T_STATE = 0x0032,		/* u8 enum proto_state */
	PROTO_T_CERT = 0x0040,		/* DER 1..16384 */
	PROTO_T_CHAIN = 0x0041,		/* DER 1..16384, repeated 1..8 */
	PROTO_T_CODE = 0x0050,		/* u16 enum proto_err, != 0 */
	PROTO_T_TEXT = 0x0051,		/* text 0..512, no C0 control, DEL */
	PROTO_T_TOTAL = 0x0060,		/* u32: the account's certificates */
	PROTO_T_CERTINFO = 0x0061,	/* one certificate, repeated 0..32 */
	PROTO_T_NEW_PASSWORD = 0x0070,	/* bytes 1..1024, no NUL */
	PROTO_T_ENROL_CODE = 0x0071,	/* 1..64 of A-Z a-z 2-7 - */
	PROTO_T_TOTP_SECRET = 0x0072,	/* 10..64 bytes */
	PROTO_T_NONCE = 0x0090,		/* 32 bytes */
	PROTO_T_SIGNATURE = 0x0091,	/* 1..1024 bytes */
};

/* Same values as store.h enum req_reason / enum req_state. */
enum proto_reason {
	PROTO_REASON_LOST = 0,
	PROTO_REASON_COMPROMISED = 1,
	PROTO_REASON_DAMAGED = 2,
};

enum proto_state {
	PROTO_STATE_PENDING = 0,
	PROTO_STATE_APPROVED = 1,
	PROTO_STATE_REJECTED = 2,
	PROTO_STATE_ISSUED = 3,
};

/* Same values as store.h enum cert_status. */
enum proto_cert_status {
	PROTO_CERT_GOOD = 0,
	PROTO_CERT_HOLD = 1,
	PROTO_CERT_REVOKED = 2,
};

/* One CERTINFO field of a CERTS reply. */
struct proto_certinfo {
	uint8_t		serial[PROTO_SERIAL_LEN];
	uint8_t		status;			/* enum proto_cert_status */
	int64_t		not_before;		/* unix seconds */
	int64_t		not_after;		/* >= not_before */
	uint8_t		replaced_by[PROTO_SERIAL_LEN];	/* zero = none */
	uint8_t		subject[PROTO_SUBJECT_MAX];	/* Name DER */
	size_t		subject_len;		/* 2..PROTO_SUBJECT_MAX */
};

/* Error codes carried in ERROR frames (CODE field). */
enum proto_err {
	PROTO_E_MALFORMED = 1,		/* bad frame or field, duplicate or
					 * missing field, bad value */
	PROTO_E_VERSION = 2,		/* unsupported version (fatal) */
	PROTO_E_TYPE = 3,		/* unknown or unexpected type */
	PROTO_E_TOO_LARGE = 4,		/* frame > max (fatal), field too long */
	PROTO_E_NOT_AUTH = 5,		/* LOGIN first */
	PROTO_E_AUTH_FAILED = 6,	/* unknown account, bad password or
					 * code, replayed code: one answer */
	PROTO_E_LOCKED = 7,		/* account locked for a while */
	PROTO_E_BAD_REQUEST = 8,	/* validation: serial, CSR, key, subject */
	PROTO_E_DUPLICATE = 9,		/* an open request exists for serial */
	PROTO_E_NOT_FOUND = 10,		/* unknown request id or bad token */
	PROTO_E_BUSY = 11,		/* rate limited, try later */
	PROTO_E_INTERNAL = 12,		/* server-side failure */
	PROTO_E_CRITICAL = 13,		/* unknown critical TLV tag */
	PROTO_E_STANDBY = 14,		/* a standby: writes go to the
					 * primary (TEXT names it); no retry */
	/* the account (20..27) */
	PROTO_E_REPLAY = 20,		/* right password, code already used:
					 * not counted as a failure */
	PROTO_E_DISABLED = 21,		/* account disabled by an admin */
	PROTO_E_POLICY = 22,		/* new password refused by the policy */
	PROTO_E_PW_EXPIRED = 23,	/* password too old: PASSWD only */
};

/*
 * One decoded (or to-be-encoded) message.  Only the fields of msg->type
 * are meaningful.  Strings are NUL-terminated.  csr, cert and chain[] are
 * malloc'd and owned by the message: proto_msg_cleanup frees them (set
 * them with the proto_msg_set_* helpers, or assign malloc'd memory).
 * password is a secret: proto_msg_cleanup wipes it.
 */
struct proto_msg {
	uint8_t		version;		/* PROTO_VERSION */
	uint8_t		type;			/* enum proto_type */
	uint32_t	id;			/* frame (request) id */

	/* HELLO */
	uint8_t		versions[PROTO_VERSIONS_MAX];
	size_t		num_versions;
	/* SERVER_HELLO */
	uint8_t		chosen_version;
	uint32_t	max_frame;
	/* LOGIN */
	char		account[PROTO_ACCOUNT_MAX + 1];
	char		password[PROTO_PASSWORD_MAX + 1];
	size_t		password_len;
	char		otp[PROTO_OTP_LEN + 1];
	/* REISSUE */
	uint8_t		serial[PROTO_SERIAL_LEN];
	uint8_t		*csr;
	size_t		csr_len;
	uint8_t		reason;			/* enum proto_reason */
	char		note[PROTO_NOTE_MAX + 1];	/* "" = absent */
	/* WAIT, FETCH, STATUS, ACCEPTED, ISSUED, REJECTED */
	uint64_t	request;
	uint8_t		token[PROTO_TOKEN_LEN];	/* FETCH, STATUS, ACCEPTED */
	int		has_token;		/* ACCEPTED only: token present */
	uint8_t		state;			/* enum proto_state */
	/* ISSUED */
	uint8_t		*cert;
	size_t		cert_len;
	uint8_t		*chain[PROTO_CHAIN_MAX];
	size_t		chain_len[PROTO_CHAIN_MAX];
	size_t		num_chain;
	/* ERROR */
	uint16_t	code;			/* enum proto_err */
	/* ERROR, REJECTED */
	char		text[PROTO_TEXT_MAX + 1];
	/* CERTS: certs is malloc'd (PROTO_LIST_MAX entries) on the first
	 * proto_msg_add_certinfo */
	uint32_t	total;
	struct proto_certinfo *certs;
	size_t		num_certs;
	/* PASSWD, ENROLL (secrets: wiped by proto_msg_cleanup) */
	char		new_password[PROTO_PASSWORD_MAX + 1];
	size_t		new_password_len;
	char		enrol_code[PROTO_ENROL_CODE_MAX + 1];
	/* ENROLLED */
	uint8_t		totp_secret[PROTO_TOTP_SECRET_MAX];
	size_t		totp_secret_len;
	/* NONCE */
	uint8_t		nonce[PROTO_NONCE_LEN];
	/* RENEW: sig is malloc'd (proto_msg_set_sig) */
	uint8_t		*sig;
	size_t		sig_len;
};

/* Zeroes m and sets version, type and id. */
void	proto_msg_init(struct proto_msg *m, uint8_t type, uint32_t id);
/* Wipes the password (sodium_memzero), frees csr/cert/chain, zeroes m. */
void	proto_msg_cleanup(struct proto_msg *m);
/* Copy der into the message (replacing any previous value); 0 on ENOMEM
 * or when len is 0 or above the field's limit. */
int	proto_msg_set_csr(struct proto_msg *m, const void *der, size_t len);
int	proto_msg_set_cert(struct proto_msg *m, const void *der, size_t len);
int	proto_msg_set_sig(struct proto_msg *m, const void *sig, size_t len);
/* Appends one CA certificate to chain; 0 also when the chain is full. */
int	proto_msg_add_chain(struct proto_msg *m, const void *der, size_t len);
/* Appends a copy of ci to certs; 0 on ENOMEM or when certs is full
 * (PROTO_LIST_MAX).  The values are checked by proto_encode. */
int	proto_msg_add_certinfo(struct proto_msg *m,
	    const struct proto_certinfo *ci);

enum proto_status {
	PROTO_NEED_MORE = 0,	/* res->need more bytes are needed at least */
	PROTO_FRAME = 1,	/* *out holds a message of res->consumed bytes */
	PROTO_FAIL = 2,		/* res->code / res->text describe the error */
};

struct proto_result {
	size_t		consumed;	/* FRAME, and FAIL with !fatal: the
					 * frame's size, to be skipped */
	size_t		need;		/* NEED_MORE */
	uint16_t	code;		/* FAIL: enum proto_err */
	int		fatal;		/* FAIL: framing is lost (length or
					 * version): send ERROR, then close */
	uint32_t	id;		/* FAIL: the frame id if it was read,
					 * else 0: echo it in the ERROR */
	char		text[128];	/* FAIL: for the ERROR frame and logs;
					 * never contains field values */
};

/*
 * Decodes the first frame in buf[0..len).  max_frame caps the length field
 * (0 = PROTO_MAX_FRAME_DEFAULT; larger than PROTO_MAX_FRAME_LIMIT is
 * clamped).  On PROTO_FRAME *out is filled (call proto_msg_cleanup on it);
 * on anything else *out is left zeroed and needs no cleanup.  Never reads
 * outside buf.  Any version/type/tag the codec knows decodes, whether a
 * request or a reply: the server must itself refuse reply types.
 */
enum proto_status	proto_decode(struct proto_result *res,
			    struct proto_msg *out, const uint8_t *buf,
			    size_t len, uint32_t max_frame);

/*
 * Appends the frame for m to out.  Checks m like the decoder would
 * (required fields, limits, values): returns 0 and appends nothing when
 * m is not valid or memory ran out, else 1.
 */
int	proto_encode(struct wb *out, const struct proto_msg *m);
/* Appends an ERROR frame (text is truncated to PROTO_TEXT_MAX). */
int	proto_encode_error(struct wb *out, uint32_t id, uint16_t code,
	    const char *text);
/* Appends an OK frame. */
int	proto_encode_ok(struct wb *out, uint32_t id);

/* 1 if type is a request a client may send (HELLO .. LIST, PASSWD,
 * ENROLL, CHALLENGE, RENEW, REQUEST). */
int		 proto_type_is_request(uint8_t type);
/* Static names: "HELLO", ..., "unknown". */
const char	*proto_type_name(uint8_t type);
/* Static English text for an error code ("malformed", ...). */
const char	*proto_err_name(uint16_t code);
/* Static names for reasons and states ("lost", "pending", ...). */
const char	*proto_reason_name(uint8_t reason);
const char	*proto_state_name(uint8_t state);
/* Parses "lost|compromised|damaged"; returns the reason or -1. */
int		 proto_reason_parse(const char *name);

/*
 * Replaces C0 controls and DEL in s by spaces, in place, so that a text
 * from elsewhere (an admin's rejection reason, an error message) encodes
 * as a TEXT field.
 */
void	proto_text_sanitize(char *s);
/* 1 if name is a valid ACCOUNT: 1..64 of A-Z a-z 0-9 . - _ @ (the names
 * mica-admin accepts). */
int	proto_account_valid(const char *name);
/*
 * Copies at most max_in bytes of the text in (NUL-terminated or not) to
 * out for a log line: printable ASCII except '"' and backslash as is, every
 * other byte as \xNN; "..." marks a truncation.  out is always
 * NUL-terminated (out_len > 0).
 */
void	proto_log_escape(char *out, size_t out_len, const char *in,
	    size_t max_in);

/*
 * RENEW's proof of possession: the bytes the current certificate's key
 * signs, PROTO_RENEW_TBS_LEN of them: the context "mica-renew-v1" and a
 * NUL, the server's NONCE, SHA-256 of the CERT value, SHA-256 of the CSR
 * value (docs/PROTOCOL.md, RENEW).
 */
#define PROTO_RENEW_CTX		"mica-renew-v1"
#define PROTO_RENEW_TBS_LEN	(sizeof(PROTO_RENEW_CTX) + PROTO_NONCE_LEN + 64)
void	proto_renew_tbs(uint8_t out[PROTO_RENEW_TBS_LEN],
	    const uint8_t nonce[PROTO_NONCE_LEN], const uint8_t *cert,
	    size_t cert_len, const uint8_t *csr, size_t csr_len);

/* Token as lowercase hex: out must hold PROTO_TOKEN_HEX_LEN + 1 bytes. */
void	proto_token_hex(char *out, const uint8_t token[PROTO_TOKEN_LEN]);
/* Parses exactly 64 hex digits (either case); 0 on anything else. */
int	proto_token_parse(uint8_t token[PROTO_TOKEN_LEN], const char *text);

#endif
