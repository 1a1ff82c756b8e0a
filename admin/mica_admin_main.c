/*
 * mica_admin_main.c - mica-admin, the operator's tool.  `init` works
 * offline (creates a CA directory); every other command is sent to micad
 * over the admin socket, which checks who we are (SO_PEERCRED).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <sodium.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "common/bytes.h"
#include "common/log.h"
#include "common/totpseal.h"
#include "common/version.h"
#include "conf/conf.h"
#include "store/journal.h"
#include "store/store.h"

static const char *help_text =
"usage: mica-admin [-c CONF] [--socket PATH] COMMAND [ARGS]\n"
"       mica-admin --version | --help\n"
"\n"
"The mica CA operator's tool.  CONF defaults to $MICA_CONF; every command\n"
"but init talks to a running micad over its admin socket.\n"
"\n"
"Setting up (offline):\n"
"  init DIR [--cn NAME | --subject DN] [--days N]\n"
"       [--key-type ec-p256|ec-p384|ed25519|rsa-3072]\n"
"       [--ca-listen HOST:PORT] [--http-listen HOST:PORT] [--http-url URL]\n"
"       [--tls-name NAME]... [--key-passphrase-file F]\n"
"       [--key-uri pkcs11:...] [--ocsp-key-uri pkcs11:...]\n"
"       [--pkcs11-module LIB]\n"
"                       create a CA in DIR: ca.crt (a root; --subject\n"
"                       \"/C=DE/O=Org/CN=Org CA\", --days its validity),\n"
"                       ocsp.crt, tls.crt, private/*.key, mica.conf and\n"
"                       an empty store; with --key-uri/--ocsp-key-uri\n"
"                       that key is made in (or taken from) a PKCS#11\n"
"                       token (RFC 7512 URI with ?pin-source=file:PATH)\n"
"                       and never written to DIR\n"
"  init DIR --csr [--cn NAME | --subject DN] [--key-type T]\n"
"       [--key-passphrase-file F]\n"
"                       an issuing CA under an offline root, step 1:\n"
"                       private/ca.key and ca.csr for the root to sign\n"
"  init DIR --ca-cert CA.crt --chain ROOT.crt [the options of init]\n"
"                       step 2: checks CA.crt (our key, a CA with\n"
"                       keyCertSign and cRLSign, chains to the root in\n"
"                       ROOT.crt, which may hold intermediates too) and\n"
"                       finishes the CA; chain.pem is served\n"
"  init DIR --import-key CA.key --ca-cert CA.crt [--chain ROOT.crt] [...]\n"
"                       take over an existing CA: the key is copied to\n"
"                       private/ca.key; what it issued before is unknown\n"
"                       to mica (OCSP answers \"unknown\")\n"
"\n"
"Daemon and store:\n"
"  status [--json]      uptime, store size and counts, CRL, signer expiry,\n"
"                       where the CA and OCSP keys live (file or token)\n"
"  audit [--verify] [--json]\n"
"                       list the audit trail, or verify its hash chain\n"
"  backup FILE          consistent, compacted copy of the store (restore:\n"
"                       stop micad, copy FILE to STORE/data.mdb)\n"
"  restore BACKUP --journal DIR --to STOREDIR [--until SEQ|TIME]\n"
"                       offline point-in-time restore: the backup plus the\n"
"                       journal records after it into a new store directory\n"
"                       (TIME: YYYY-MM-DDTHH:MM:SSZ, UTC)\n"
"  digest [--store DIR] BLAKE2b over every record of the store (offline\n"
"                       with --store) and its journal seq\n"
"  journal verify [--journal DIR]\n"
"                       check every journal record and the hash chain\n"
"  journal prune --backup FILE [--journal DIR]\n"
"                       remove the segments every record of which is in\n"
"                       the backup\n"
"  replica add NAME --out DIR [--primary HOST:PORT] [--tls-name NAME]...\n"
"                       a ready standby directory (its own OCSP signer,\n"
"                       TLS and replication certificates, a copy of the\n"
"                       store, mica.conf without the CA key); NAME\n"
"                       registered in [replica] names_file.  While micad\n"
"                       runs, micad records the certificates and copies\n"
"                       the store (admin socket)\n"
"  replica list         the registered replicas\n"
"  replica remove NAME  unregister one (its next connection is refused)\n"
"  promote              on a standby ([replica] primary) holding the CA key:\n"
"                       become the primary (next epoch; micad runs again)\n"
"  crl                  rebuild the full CRL now\n"
"  check                prove the store, OCSP answers and CRLs agree (exit 1\n"
"                       naming the first disagreement)\n"
"\n"
"Subscribers:\n"
"  account add NAME --subject DN [--san TYPE:VALUE]... [--password-file F]\n"
"                       --san: the SANs this account's CSRs may carry\n"
"                       when copy_san is on (DNS:, IP:, email:)\n"
"                       enroll; prints the TOTP secret and otpauth URI once\n"
"  account list [--json]\n"
"  account unlock NAME  clear failed logins and a lock-out\n"
"  account reset NAME   print a one-time enrolment code (single use, expires\n"
"                       after [policy] enrol_code_lifetime) for mica enroll:\n"
"                       new password and new TOTP secret\n"
"  account disable NAME refuse the account's logins until enabled again\n"
"  account enable NAME\n"
"  account remove NAME  delete the account (its certificates and the audit\n"
"                       trail are kept; the name is not given out again)\n"
"\n"
"Certificates (serials in any hex form; printed as uppercase hex):\n"
"  issue --account NAME --csr FILE [--days N] [--profile NAME]\n"
"        [--san DNS:NAME|IP:ADDR|email:ADDR]... --out FILE\n"
"                       --profile: a [profile.NAME] of mica.conf (init\n"
"                       writes client, server, email); --san: the\n"
"                       certificate's subjectAltNames (checked), instead\n"
"                       of the CSR's\n"
"  revoke SERIAL [--reason unspecified|keyCompromise|affiliationChanged|\n"
"                 superseded|cessationOfOperation|privilegeWithdrawn]\n"
"                [--invalidity-date YYYYMMDDHHMMSSZ]\n"
"                       a revoked certificate's reason can be raised to\n"
"                       keyCompromise (first revocation time kept); mica's\n"
"                       own CA/OCSP/TLS certificates are refused\n"
"  hold SERIAL          certificateHold (OCSP: revoked, reason hold)\n"
"  unhold SERIAL        release a hold\n"
"  allow-renew SERIAL [--days N]\n"
"                       let the certificate renew (mica renew) before its\n"
"                       renewal window, or with renew = manual; once,\n"
"                       within N days (default 30)\n"
"  show SERIAL [--json]\n"
"  list [--status good|hold|revoked] [--expiring DAYS] [--account NAME]\n"
"       [--json]\n"
"\n"
"TLS server certificate of micad:\n"
"  tls renew --name NAME... [--ip ADDR...]\n"
"                       a new tls.crt with these names (DNS names, IP\n"
"                       addresses), taken up without a restart\n"
"\n"
"Reissue requests (lost certificates):\n"
"  requests [--pending] [--json]\n"
"  approve ID           sign the replacement and revoke the lost\n"
"                       certificate in one transaction\n"
"  reject ID [--why TEXT]\n"
"\n"
"Exit status: 0 done, 1 refused or failed (message on stderr), 2 usage.\n";

static void
die_usage(const char *fmt, const char *a)
{
	fprintf(stderr, "mica-admin: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\n(see mica-admin --help)\n");
	exit(2);
}

static int
read_file(const char *path, uint8_t **out, size_t *out_len, size_t max)
{
	FILE *f;
	struct wb b;
	uint8_t buf[8192];
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "mica-admin: %s: %s\n", path, strerror(errno));
		return 0;
	}
	wb_init(&b);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		wb_put(&b, buf, n);
		if (b.len > max) {
			fprintf(stderr, "mica-admin: %s: larger than %zu bytes\n",
			    path, max);
			fclose(f);
			wb_cleanup(&b);
			return 0;
		}
	}
	fclose(f);
	if (!wb_ok(&b)) {
		wb_cleanup(&b);
		return 0;
	}
	*out = wb_steal(&b, out_len);
	return 1;
}

/* Password: first line of a file, or asked twice on a terminal. */
static char *
get_password(const char *file, size_t *out_len)
{
	char *pw, *again;
	struct termios old, noecho;
	FILE *f;

	if ((pw = sodium_malloc(1100)) == NULL ||
	    (again = sodium_malloc(1100)) == NULL)
		exit(1);
	pw[0] = again[0] = '\0';
	if (file != NULL) {
		if ((f = fopen(file, "r")) == NULL) {
			fprintf(stderr, "mica-admin: %s: %s\n", file,
			    strerror(errno));
			exit(1);
		}
		if (fgets(pw, 1100, f) == NULL)
			pw[0] = '\0';
		fclose(f);
	} else if (isatty(STDIN_FILENO)) {
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
		fprintf(stderr, "password: ");
		if (fgets(pw, 1100, stdin) == NULL)
			pw[0] = '\0';
		fprintf(stderr, "\npassword again: ");
		if (fgets(again, 1100, stdin) == NULL)
			again[0] = '\0';
		fprintf(stderr, "\n");
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "mica-admin: the passwords differ\n");
			exit(1);
		}
	} else {
		fprintf(stderr, "mica-admin: account add: give "
		    "--password-file F (no terminal to ask on)\n");
		exit(2);
	}
	sodium_free(again);
	pw[strcspn(pw, "\r\n")] = '\0';
	*out_len = strlen(pw);
	return pw;
}

static int
write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode)) < 0)
		goto fail;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		goto fail;
	}
	return 1;
 fail:
	fprintf(stderr, "mica-admin: %s: %s\n", path, strerror(errno));
	return 0;
}

static int
send_all(int fd, const uint8_t *p, size_t len, int pass_fd)
{
	struct msghdr mh;
	struct iovec iov;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr *cm;
	ssize_t n;

	while (len > 0) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = (void *)p;
		iov.iov_len = len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (pass_fd >= 0) {
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
		}
		if ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		pass_fd = -1;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

static int
recv_all(int fd, uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, p, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Sends the request, returns micad's exit code after printing its text. */
int
adm_transact(const char *sock, struct adm_msg *req, int pass_fd,
    struct adm_msg *rep)
{
	struct sockaddr_un sun;
	struct wb b;
	uint8_t hdr[4], *body = NULL;
	uint32_t len;
	char err[256];
	int fd, rc = 1;

	wb_init(&b);
	if (!adm_request_encode(&b, req)) {
		fprintf(stderr, "mica-admin: request too large\n");
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mica-admin: socket path too long\n");
		goto out;
	}
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "mica-admin: cannot reach micad at %s: %s (is "
		    "micad running?)\n", sock, strerror(errno));
		goto out;
	}
	/* A refused uid gets its reply before the request is read, so a
	 * failed send is not yet an error: read what micad said. */
	(void)send_all(fd, b.data, b.len, pass_fd);
	if (!recv_all(fd, hdr, 4)) {
		fprintf(stderr, "mica-admin: micad closed the connection\n");
		close(fd);
		goto out;
	}
	len = be32_get(hdr);
	if (len > ADM_MAX_REPLY || (body = malloc(len ? len : 1)) == NULL ||
	    !recv_all(fd, body, len) ||
	    !adm_reply_parse(rep, body, len, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: bad reply from micad\n");
		close(fd);
		goto out;
	}
	close(fd);
	if (rep->out.len > 0)
		fwrite(rep->out.data, 1, rep->out.len, stdout);
	if (rep->err.len > 0)
		fwrite(rep->err.data, 1, rep->err.len, stderr);
	rc = rep->code;
 out:
	free(body);
	wb_cleanup(&b);
	return rc;
}

/* ---- init (offline) ---- */

/* What init writes for the keys: file names or pkcs11: URIs. */
struct init_keys_conf {
	const char	*key;		/* NULL: private/ca.key */
	const char	*ocsp_key;	/* NULL: private/ocsp.key */
	const char	*module;	/* NULL: no pkcs11_module line */
};

static int
write_conf(const char *dir, const char *ca_listen, const char *http_listen,
    const char *http_url, const char *pass_file, int chain,
    const struct init_keys_conf *kc)
{
	char path[4096], text[12288];
	int fd, n;

	snprintf(path, sizeof(path), "%s/mica.conf", dir);
	n = snprintf(text, sizeof(text),
"# mica.conf - written by mica-admin init.  OpenSSL config syntax.\n"
"# Every key is listed in conf/mica.conf.sample and in the README.\n"
"# Relative paths are relative to this file's directory.\n"
"\n"
"[ca]\n"
"cert = ca.crt\n"
"%s"
"key = %s\n"
"%s%s%s"
"%s%s%s"
"ocsp_cert = ocsp.crt\n"
"ocsp_key = %s\n"
"tls_cert = tls.crt\n"
"tls_key = private/tls.key\n"
"# base URL put into issued certificates (AIA OCSP + caIssuers, CRL DP)\n"
"http_url = %s\n"
"default_days = 365\n"
"key_usage = digitalSignature\n"
"ext_key_usage = clientAuth\n"
"# copy DNS/email/IP subjectAltNames from CSRs (the CA does not verify them)\n"
"copy_san = no\n"
"# renew ocsp.crt/tls.crt at start when fewer days remain (0: automatic)\n"
"renew_before_days = 0\n"
"\n"
"[protocol]\n"
"# the CA protocol (TLS 1.3) for mica clients\n"
"listen = %s\n"
"max_connections = 256\n"
"max_per_address = 32\n"
"# above this %% of max_connections each new connection closes one that\n"
"# has not logged in (busiest address, oldest first); 0: never\n"
"shed_start = 75\n"
"handshake_timeout = 10\n"
"idle_timeout = 300\n"
"# a connection must log in within this many seconds\n"
"login_timeout = 30\n"
"max_frame = 65536\n"
"# LOGINs waiting for a worker (from one address, in all); beyond: busy\n"
"login_queue_per_address = 32\n"
"login_queue_max = 256\n"
"\n"
"[http]\n"
"# OCSP (POST /ocsp, GET /ocsp/...), CRLs (/crl), CA certificate (/ca.crt)\n"
"listen = %s\n"
"# event threads (cached OCSP answers are written here)\n"
"threads = 1\n"
"# threads that sign what the cache cannot answer when an event\n"
"# thread has no signer channel (micad gives each one its own)\n"
"signers = 2\n"
"max_body = 16384\n"
"header_timeout = 10\n"
"idle_timeout = 60\n"
"max_connections = 1024\n"
"# more from one address: 503 with Retry-After\n"
"max_per_address = 64\n"
"# above this %% of max_connections each new connection closes one with\n"
"# no request in progress (busiest address, oldest first); 0: never\n"
"shed_start = 75\n"
"ocsp_next_update = 3600\n"
"ocsp_max_certids = 16\n"
"ocsp_unknown_revoked = no\n"
"# who may read /metrics (addresses or prefixes; empty: nobody)\n"
"metrics_from = 127.0.0.0/8, ::1\n"
"# HTTP caches (Varnish, conf/varnish/mica.vcl): GET answers' max-age is\n"
"# at most this many seconds (0: no-store); after every status change a\n"
"# BAN goes to each ban_urls cache (http://HOST:PORT, space-separated)\n"
"# before the change is acknowledged, at most ban_timeout_ms in all\n"
"cache_max_age = 60\n"
"ban_urls =\n"
"ban_timeout_ms = 200\n"
"\n"
"[admin]\n"
"socket = admin.sock\n"
"# uids besides root and micad's own that may use the admin socket; with\n"
"# a group, the socket is 0660 in that group (uids are still checked)\n"
"allowed_uids =\n"
"#group = mica-admins\n"
"\n"
"[policy]\n"
"# manual: an administrator approves each reissue; auto: at once\n"
"review = manual\n"
"hold_on_request = no\n"
"max_failures = 5\n"
"lockout_seconds = 900\n"
"# argon2id cost (libsodium MODERATE: 3 passes, 256 MiB)\n"
"argon2_opslimit = 3\n"
"argon2_memlimit = 256M\n"
"request_days = 365\n"
"# mica renew (proof of the current key, no login): auto (within\n"
"# renew_window days of expiry, or when allowed: mica-admin allow-renew),\n"
"# manual (only when allowed) or off\n"
"renew = auto\n"
"renew_window = 30\n"
"# revoke the renewed certificate (superseded) at once; no: let it expire\n"
"renew_revoke_old = yes\n"
"\n"
"[store]\n"
"path = store\n"
"map_size = 64M\n"
"map_max = 0\n"
"no_grow = no\n"
"# change journal (write-ahead, for mica-admin restore --journal); put it\n"
"# on another disk; empty = off\n"
"journal_dir = journal\n"
"journal_segment_size = 16M\n"
"\n"
"[crl]\n"
"# a full CRL every full_interval s (and on mica-admin crl); a delta\n"
"# CRL at every change, valid and cached for delta_max_age s\n"
"full_interval = 3600\n"
"delta_max_age = 60\n"
"# validity of a full CRL; unset: full_interval\n"
"#next_update = 86400\n"
"# also write full.crl and delta.crl (DER) here, atomically\n"
"#publish_dir = /var/lib/mica/crl\n"
"\n"
"[daemon]\n"
"log_level = info\n"
"workers = 2\n"
"#notify_command = /usr/local/libexec/mica-notify\n"
"notify_timeout = 30\n"
"notify_retry_delay = 5\n"
"expiry_interval = 3600\n"
"\n"
"[replica]\n"
"# a warm standby (README \"Running two machines\"): on the primary\n"
"#listen = 0.0.0.0:7790\n"
"#names_file = replicas\n"
"# on a standby: the primary's listen address, this side's certificate\n"
"#primary = primary.example.net:7790\n"
"#cert = replica.crt\n"
"#key = private/replica.key\n"
"# the other machine: asked for its epoch at start\n"
"#peers = standby.example.net:7790\n"
"\n"
"# issuance profiles for mica-admin issue --profile NAME (unset keys: [ca])\n"
"[profile.client]\n"
"key_usage = digitalSignature\n"
"ext_key_usage = clientAuth\n"
"\n"
"[profile.server]\n"
"key_usage = digitalSignature,keyEncipherment\n"
"ext_key_usage = serverAuth\n"
"\n"
"[profile.email]\n"
"key_usage = digitalSignature,keyEncipherment\n"
"ext_key_usage = emailProtection\n",
	    chain ? "# the CA, its issuers and the root, served as /chain.pem\n"
	    "chain = chain.pem\n" : "",
	    kc->key ? kc->key : "private/ca.key",
	    pass_file ? "key_passphrase_file = " : "",
	    pass_file ? pass_file : "", pass_file ? "\n" : "",
	    kc->module ? "# the PKCS#11 module of the pkcs11: key URIs\n"
	    "pkcs11_module = " : "", kc->module ? kc->module : "",
	    kc->module ? "\n" : "",
	    kc->ocsp_key ? kc->ocsp_key : "private/ocsp.key",
	    http_url, ca_listen, http_listen);
	if (n < 0 || (size_t)n >= sizeof(text))
		return 0;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		fprintf(stderr, "mica-admin: %s: %s\n", path, strerror(errno));
		return 0;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		fprintf(stderr, "mica-admin: %s: %s\n", path, strerror(errno));
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

struct init_store {
	struct ca_init_result	*res;
	const char		*how;	/* audit text of ca.init */
};

static enum store_rc
add_cert(struct store_txn *txn, X509 *x, const char *what)
{
	struct cert_rec rec;
	char hex[SERIAL_HEX_LEN];
	enum store_rc rc;

	memset(&rec, 0, sizeof(rec));
	if (!ca_cert_serial(x, rec.serial) ||
	    !ca_cert_times(x, &rec.st.not_before, &rec.st.not_after) ||
	    !ca_cert_der(x, &rec.der, &rec.der_len))
		return STORE_INVALID;
	rec.st.status = CERT_GOOD;
	rec.issued_at = time(NULL);
	snprintf(rec.account, sizeof(rec.account), "%s", CA_OWN_ACCOUNT);
	rc = store_cert_add(txn, &rec);
	free(rec.der);
	if (rc != STORE_OK)
		return rc;
	serial_hex(hex, rec.serial);
	return store_audit_append(txn, "mica-admin init", "cert.issue", hex,
	    what, NULL);
}

static enum store_rc
init_txn(struct store_txn *txn, void *arg)
{
	struct init_store *is = arg;
	enum store_rc rc;

	if ((rc = store_audit_append(txn, "mica-admin init", "ca.init", "",
	    is->how, NULL)) != STORE_OK)
		return rc;
	/* a CA certificate signed by another CA carries that CA's serial:
	 * it is not one of ours to record or answer OCSP for */
	if (!is->res->external &&
	    (rc = add_cert(txn, is->res->ca_cert, "CA certificate")) !=
	    STORE_OK)
		return rc;
	if ((rc = add_cert(txn, is->res->ocsp_cert, "OCSP signer")) !=
	    STORE_OK ||
	    (rc = add_cert(txn, is->res->tls_cert, "TLS server certificate"))
	    != STORE_OK)
		return rc;
	return STORE_OK;
}

struct init_args {
	const char	*dir, *cn, *subject, *kt, *pfile;
	const char	*ca_listen, *http_listen, *http_url;
	const char	*ca_cert, *chain, *import_key;
	const char	*key_uri, *ocsp_key_uri, *module;
	const char	*names[16];
	size_t		 num_names;
	int		 ca_days, csr;
};

/* Parses init's options; a usage error exits 2. */
static void
init_parse(struct init_args *a, int argc, char **argv)
{
	static const char *const known[] = { "--cn", "--key-type",
	    "--ca-listen", "--http-listen", "--http-url",
	    "--key-passphrase-file", "--tls-name", "--days", "--subject",
	    "--ca-cert", "--chain", "--import-key", "--key-uri",
	    "--ocsp-key-uri", "--pkcs11-module" };
	int i;

	memset(a, 0, sizeof(*a));
	a->ca_listen = "127.0.0.1:7700";
	a->http_listen = "127.0.0.1:7780";
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;

		if (o[0] != '-' || o[1] == '\0') {
			if (a->dir != NULL)
				die_usage("init: one directory only (%s?)", o);
			a->dir = o;
			continue;
		}
		if (strcmp(o, "--csr") == 0) {
			a->csr = 1;
			continue;
		}
		/* an unknown option is named as such, value or not */
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(o, known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			die_usage("init: unknown option %s", o);
		if (v == NULL)
			die_usage("init: %s needs a value", o);
		i++;
		if (strcmp(o, "--cn") == 0)
			a->cn = v;
		else if (strcmp(o, "--subject") == 0)
			a->subject = v;
		else if (strcmp(o, "--key-type") == 0)
			a->kt = v;
		else if (strcmp(o, "--ca-listen") == 0)
			a->ca_listen = v;
		else if (strcmp(o, "--http-listen") == 0)
			a->http_listen = v;
		else if (strcmp(o, "--http-url") == 0)
			a->http_url = v;
		else if (strcmp(o, "--key-passphrase-file") == 0)
			a->pfile = v;
		else if (strcmp(o, "--ca-cert") == 0)
			a->ca_cert = v;
		else if (strcmp(o, "--chain") == 0)
			a->chain = v;
		else if (strcmp(o, "--import-key") == 0)
			a->import_key = v;
		else if (strcmp(o, "--key-uri") == 0)
			a->key_uri = v;
		else if (strcmp(o, "--ocsp-key-uri") == 0)
			a->ocsp_key_uri = v;
		else if (strcmp(o, "--pkcs11-module") == 0)
			a->module = v;
		else if (strcmp(o, "--days") == 0) {
			char *end;
			long d;

			errno = 0;
			d = strtol(v, &end, 10);
			if (errno != 0 || *end != '\0' || end == v || d < 2 ||
			    d > 36500)
				die_usage("init: --days must be 2 to 36500, "
				    "not %s", v);
			a->ca_days = (int)d;
		} else {
			if (a->num_names == 16)
				die_usage("init: at most 16 %s", o);
			a->names[a->num_names++] = v;
		}
	}
}

/* The rules between init's options; a usage error exits 2. */
static void
init_check_args(const struct init_args *a)
{
	if (a->dir == NULL)
		die_usage("init: which directory? (%s)", "init DIR");
	if (a->cn != NULL && a->subject != NULL)
		die_usage("init: %s: give --cn or --subject, not both",
		    a->subject);
	if (a->csr && (a->ca_cert != NULL || a->chain != NULL ||
	    a->import_key != NULL))
		die_usage("init: %s makes the key and CSR only; finish with "
		    "init DIR --ca-cert CA.crt --chain ROOT.crt once the root "
		    "has signed it", "--csr");
	if ((a->chain != NULL || a->import_key != NULL) && a->ca_cert == NULL)
		die_usage("init: %s needs --ca-cert (the CA certificate)",
		    a->chain != NULL ? "--chain" : "--import-key");
	if (a->ca_days != 0 && (a->csr || a->ca_cert != NULL))
		die_usage("init: %s: the CA's validity is set by whoever signs "
		    "its certificate (openssl x509 -req -days)", "--days");
	if (a->ca_cert != NULL && (a->cn != NULL || a->subject != NULL))
		die_usage("init: %s: the CA's subject is that of its "
		    "certificate (give --subject or --cn with --csr)",
		    a->cn != NULL ? "--cn" : "--subject");
	if (a->kt != NULL && strcmp(a->kt, "ec-p256") &&
	    strcmp(a->kt, "ec-p384") && strcmp(a->kt, "ed25519") &&
	    strcmp(a->kt, "rsa-3072"))
		die_usage("init: --key-type must be ec-p256, ec-p384, ed25519 "
		    "or rsa-3072, not %s", a->kt);
	if ((a->key_uri != NULL && !ca_key_is_uri(a->key_uri)) ||
	    (a->ocsp_key_uri != NULL && !ca_key_is_uri(a->ocsp_key_uri)))
		die_usage("init: --key-uri and --ocsp-key-uri take a pkcs11: "
		    "URI (RFC 7512), not %s", a->key_uri != NULL &&
		    !ca_key_is_uri(a->key_uri) ? a->key_uri : a->ocsp_key_uri);
	if (a->key_uri != NULL && a->pfile != NULL)
		die_usage("init: --key-passphrase-file is for a key file; the "
		    "token's PIN protects a --key-uri key%s", "");
	if (a->key_uri != NULL && (a->csr || a->ca_cert != NULL))
		die_usage("init: %s: a CA key in a token is for a new root "
		    "only; --csr, --ca-cert and --import-key take a key file",
		    "--key-uri");
	if (a->module != NULL && a->module[0] != '/')
		die_usage("init: --pkcs11-module needs an absolute path, not %s",
		    a->module);
	if (a->key_uri != NULL && strpbrk(a->key_uri, " \t\r\n") != NULL)
		die_usage("init: RFC 7512: percent-encode spaces in %s",
		    "--key-uri");
	if (a->ocsp_key_uri != NULL &&
	    strpbrk(a->ocsp_key_uri, " \t\r\n") != NULL)
		die_usage("init: RFC 7512: percent-encode spaces in %s",
		    "--ocsp-key-uri");
	if (strchr(a->ca_listen, ':') == NULL)
		die_usage("init: --ca-listen must be HOST:PORT (%s)",
		    a->ca_listen);
	if (strchr(a->http_listen, ':') == NULL)
		die_usage("init: --http-listen must be HOST:PORT (%s)",
		    a->http_listen);
}

/*
 * Reads the key passphrase file's first line into sodium_malloc'd memory
 * (sodium_free) and its absolute path into abspath.  NULL on failure,
 * the reason printed.
 */
static char *
init_passphrase(const char *pfile, char *abspath)
{
	char *pass = NULL;
	FILE *f = NULL;
	size_t l;

	if (realpath(pfile, abspath) == NULL) {
		fprintf(stderr, "mica-admin: %s: %s\n", pfile,
		    strerror(errno));
		goto fail;
	}
	if ((pass = sodium_malloc(1100)) == NULL)
		goto fail;
	if ((f = fopen(abspath, "r")) == NULL || fgets(pass, 1100, f) == NULL) {
		fprintf(stderr, "mica-admin: cannot read %s\n", pfile);
		goto fail;
	}
	fclose(f);
	f = NULL;
	l = strcspn(pass, "\r\n");
	pass[l] = '\0';
	if (l < 8) {
		fprintf(stderr, "mica-admin: the key passphrase must have at "
		    "least 8 characters\n");
		goto fail;
	}
	return pass;
 fail:
	if (f != NULL)
		fclose(f);
	if (pass != NULL)
		sodium_free(pass);
	return NULL;
}

/* init --csr: the key and CSR, and what to do next. */
static int
init_csr(const struct init_args *a, const struct ca_init_opts *o)
{
	char err[1024];

	if (!ca_init_csr(o, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: init: %s\n", err);
		return 1;
	}
	printf("CA key and CSR made in %s (no CA yet)\n", a->dir);
	printf("  key: %s/private/ca.key (mode 0600%s)\n", a->dir,
	    a->pfile ? ", encrypted" : "");
	printf("  CSR: %s/ca.csr\n", a->dir);
	printf("next: have the offline root sign %s/ca.csr as a CA "
	    "certificate\n"
	    "  (basicConstraints critical CA:TRUE; keyUsage critical "
	    "keyCertSign, cRLSign),\n"
	    "  then finish the CA with the root (and any intermediates):\n"
	    "  mica-admin init %s --ca-cert ISSUING.crt --chain ROOT.crt%s\n"
	    "    [--ca-listen HOST:PORT] [--http-listen HOST:PORT] "
	    "[--http-url URL] [--tls-name NAME]...\n",
	    a->dir, a->dir, a->pfile ? " --key-passphrase-file FILE" : "");
	return 0;
}

static void
init_report(const struct init_args *a, const struct ca_init_result *res,
    const char *http_url)
{
	char hex[SERIAL_HEX_LEN], subj[1024], kpath[4200];

	ca_name_print(subj, sizeof(subj), X509_get_subject_name(res->ca_cert));
	printf("CA %s in %s\n", a->import_key ? "taken over" :
	    a->ca_cert ? "finished" : "created", a->dir);
	printf("  subject: %s\n", subj);
	if (!res->external) {
		serial_hex(hex, res->ca_serial);
		printf("  serial: %s\n", hex);
	} else
		printf("  chain: %s/chain.pem (%d certificates, the CA to its "
		    "root; served as /chain.pem)\n", a->dir, res->chain_len);
	printf("  config: %s/mica.conf\n", a->dir);
	snprintf(kpath, sizeof(kpath), "%s/private/ca.key", a->dir);
	ca_key_describe(subj, sizeof(subj), a->key_uri ? a->key_uri : kpath);
	printf("  ca key: %s\n", subj);
	snprintf(kpath, sizeof(kpath), "%s/private/ocsp.key", a->dir);
	ca_key_describe(subj, sizeof(subj), a->ocsp_key_uri ?
	    a->ocsp_key_uri : kpath);
	printf("  ocsp signer key: %s\n", subj);
	printf("  CA protocol: %s   HTTP (OCSP/CRL): %s\n", a->ca_listen,
	    a->http_listen);
	printf("  certificates will point at: %s\n", http_url);
	printf("  TOTP key: %s/private/totp.key (seals the accounts' second "
	    "factor; not in the store or a backup: keep a copy of it "
	    "elsewhere)\n", a->dir);
	if (a->import_key != NULL)
		printf("  CA key: copied from %s to %s/private/ca.key (mode "
		    "0600%s); the original is left as it is\n"
		    "warning: the certificates this CA issued before are "
		    "unknown to mica: they are\n"
		    "  not in its store, mica-admin cannot revoke or list them, "
		    "its CRLs do not\n"
		    "  list them and its OCSP answers \"unknown\" for them "
		    "([http] ocsp_unknown_revoked\n"
		    "  = no; keep it so while they are in use: with yes OCSP "
		    "answers them \"revoked\").\n"
		    "  Revoke them with the tool that issued them and keep "
		    "its CRL published until\n"
		    "  they expire.\n", a->import_key, a->dir,
		    a->pfile ? ", encrypted" : "");
	printf("next: micad -c %s/mica.conf\n", a->dir);
	if (res->external)
		printf("  subscribers pin the root: mica --ca ROOT.crt\n");
}

/* Writes mica.conf and the store for what init made. */
static int
init_finish(const struct init_args *a, struct ca_init_result *res,
    const char *http_url, const char *abspass)
{
	struct store_opts so;
	struct store *st = NULL;
	struct init_store is;
	struct init_keys_conf kc;
	struct totpseal_key *tk = NULL;
	char spath[4096], err[1024];
	enum store_rc rc;
	int ok = 0;

	kc.key = a->key_uri;
	kc.ocsp_key = a->ocsp_key_uri;
	kc.module = a->module;
	if (!write_conf(a->dir, a->ca_listen, a->http_listen, http_url,
	    abspass, res->external, &kc))
		goto out;
	snprintf(spath, sizeof(spath), "%s/private/totp.key", a->dir);
	if (totpseal_key_load(&tk, spath, 1, err, sizeof(err)) ==
	    TOTPSEAL_FAILED) {
		fprintf(stderr, "mica-admin: init: %s\n", err);
		goto out;
	}
	snprintf(spath, sizeof(spath), "%s/store", a->dir);
	memset(&so, 0, sizeof(so));
	so.create = 1;
	so.exclusive = 1;
	so.totp_key = tk;
	if ((rc = store_open(&st, spath, &so)) != STORE_OK) {
		fprintf(stderr, "mica-admin: init: store %s: %s\n", spath,
		    store_strerror(rc));
		goto out;
	}
	is.res = res;
	is.how = a->import_key != NULL ? "existing CA taken over (key and "
	    "certificate imported)" : a->ca_cert != NULL ? "CA certificate "
	    "signed by another CA (offline root)" : "CA created";
	if ((rc = store_write(st, init_txn, &is)) != STORE_OK) {
		fprintf(stderr, "mica-admin: init: store: %s\n",
		    store_strerror(rc));
		goto out;
	}
	ok = 1;
 out:
	store_close(st);
	totpseal_key_free(tk);
	return ok;
}

static int
cmd_init(int argc, char **argv)
{
	struct init_args a;
	struct ca_init_opts o;
	struct ca_init_given g;
	struct ca_init_result res;
	const char *http_url;
	char err[1024], url[512], abspass[4096];
	char *pass = NULL;
	int ok, rc = 1;

	memset(&res, 0, sizeof(res));
	init_parse(&a, argc, argv);
	init_check_args(&a);
	http_url = a.http_url;
	if (http_url == NULL) {
		snprintf(url, sizeof(url), "http://%s", a.http_listen);
		http_url = url;
	}
	if (!conf_http_url_check(http_url, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: init: --http-url %s: %s\n",
		    http_url, err);
		return 2;
	}
	if (a.pfile != NULL && (pass = init_passphrase(a.pfile, abspass)) ==
	    NULL)
		return 1;
	memset(&o, 0, sizeof(o));
	o.dir = a.dir;
	o.cn = a.cn;
	o.subject = a.subject;
	o.key_type = a.kt;
	o.passphrase = pass;
	o.ca_days = a.ca_days;
	o.tls_names = a.num_names ? a.names : NULL;
	o.num_tls_names = a.num_names;
	o.key_uri = a.key_uri;
	o.ocsp_key_uri = a.ocsp_key_uri;
	if (a.module != NULL)
		ca_key_pkcs11_module(a.module);
	if (a.csr) {
		rc = init_csr(&a, &o);
		goto out;
	}
	if (a.ca_cert != NULL) {
		memset(&g, 0, sizeof(g));
		g.ca_cert = a.ca_cert;
		g.chain = a.chain;
		g.import_key = a.import_key;
		ok = ca_init_given(&res, &o, &g, err, sizeof(err));
	} else
		ok = ca_init_dir(&res, &o, err, sizeof(err));
	if (!ok) {
		fprintf(stderr, "mica-admin: init: %s\n", err);
		goto out;
	}
	if (!init_finish(&a, &res, http_url, a.pfile ? abspass : NULL))
		goto out;
	init_report(&a, &res, http_url);
	rc = 0;
 out:
	if (pass != NULL)
		sodium_free(pass);
	ca_init_result_cleanup(&res);
	return rc;
}

/* ---- offline: point-in-time restore, digest, journal ---- */

/* SEQ (digits) or TIME (YYYY-MM-DDTHH:MM:SSZ, UTC). */
static int
parse_until(const char *v, uint64_t *seq, uint64_t *time_us)
{
	struct tm tm;
	char *end;
	time_t t;
	unsigned long long n;

	*seq = *time_us = 0;
	if (strspn(v, "0123456789") == strlen(v) && *v != '\0') {
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno != 0 || n == 0)
			return 0;
		*seq = n;
		return 1;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0' || (t = timegm(&tm)) <= 0)
		return 0;
	*time_us = (uint64_t)t * 1000000 + 999999;
	return 1;
}

static int
cmd_restore(int argc, char **argv)
{
	struct store_restore_opts o;
	struct store_restore_result res;
	char err[2048], hex[2 * STORE_HASH_LEN + 1];
	int i;

	memset(&o, 0, sizeof(o));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc)
			o.journal_dir = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			o.to = argv[++i];
		else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc) {
			if (!parse_until(argv[++i], &o.until_seq,
			    &o.until_time_us))
				die_usage("--until %s: give a record seq or a "
				    "UTC time YYYY-MM-DDTHH:MM:SSZ", argv[i]);
		} else if (argv[i][0] != '-' && o.backup == NULL)
			o.backup = argv[i];
		else
			die_usage("restore: unexpected %s", argv[i]);
	}
	if (o.backup == NULL || o.journal_dir == NULL || o.to == NULL)
		die_usage("usage: restore BACKUP --journal DIR --to STOREDIR "
		    "[--until SEQ|TIME]%s", "");
	if (!store_restore(&o, &res, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: restore: %s; nothing restored\n",
		    err);
		return 1;
	}
	hex_encode(hex, res.digest, sizeof(res.digest));
	printf("restored %s: backup at journal seq %llu, %llu records "
	    "applied, store at seq %llu (epoch %llu)\n", o.to,
	    (unsigned long long)res.base_seq,
	    (unsigned long long)res.applied,
	    (unsigned long long)res.last_seq, (unsigned long long)res.epoch);
	printf("digest %s seq %llu\n", hex,
	    (unsigned long long)res.last_seq);
	return 0;
}

static int
cmd_digest_offline(const char *dir)
{
	struct store_opts so;
	struct store *st = NULL;
	uint8_t d[STORE_HASH_LEN];
	char hex[2 * STORE_HASH_LEN + 1];
	uint64_t seq;
	enum store_rc rc;

	memset(&so, 0, sizeof(so));
	so.read_only = 1;
	if ((rc = store_open(&st, dir, &so)) != STORE_OK ||
	    (rc = store_digest(st, d, &seq)) != STORE_OK) {
		fprintf(stderr, "mica-admin: digest: %s: %s\n", dir,
		    store_strerror(rc));
		store_close(st);
		return 1;
	}
	store_close(st);
	hex_encode(hex, d, sizeof(d));
	printf("digest %s seq %llu\n", hex, (unsigned long long)seq);
	return 0;
}

/* The journal_seq a backup file contains (opened read-only in place). */
static int
backup_seq(const char *backup, uint64_t *out)
{
	struct store_journal_info ji;
	struct store_opts so;
	struct store *st = NULL;
	char dir[] = "/tmp/mica-backup.XXXXXX", path[64], abs[PATH_MAX];
	enum store_rc rc = STORE_IO;

	if (realpath(backup, abs) == NULL) {
		fprintf(stderr, "mica-admin: %s: %s\n", backup,
		    strerror(errno));
		return 0;
	}
	if (mkdtemp(dir) == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (symlink(abs, path) == -1)
		goto out;
	memset(&so, 0, sizeof(so));
	so.read_only = 1;
	if ((rc = store_open(&st, dir, &so)) == STORE_OK)
		rc = store_journal_info(st, &ji);
	store_close(st);
	if (rc == STORE_OK)
		*out = ji.seq;
	else
		fprintf(stderr, "mica-admin: %s: %s\n", backup,
		    store_strerror(rc));
out:
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
	return rc == STORE_OK;
}

static int
cmd_journal(int argc, char **argv, const char *cpath)
{
	static struct mica_conf conf;
	struct journal_scan_opts so;
	struct journal_end end;
	const char *dir = NULL, *backup = NULL, *sub = argc > 1 ? argv[1] : "";
	char err[2048];
	uint64_t upto = 0, removed;
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--backup") == 0 && i + 1 < argc)
			backup = argv[++i];
		else
			die_usage("journal: unexpected %s", argv[i]);
	}
	if (dir == NULL) {
		if (cpath == NULL || *cpath == '\0')
			die_usage("journal: give --journal DIR, -c CONF or "
			    "MICA_CONF%s", "");
		if (!conf_load(&conf, cpath, err, sizeof(err))) {
			fprintf(stderr, "mica-admin: %s\n", err);
			return 1;
		}
		if (conf.store.journal_dir[0] == '\0') {
			fprintf(stderr, "mica-admin: [store] journal_dir is "
			    "off in %s\n", cpath);
			return 1;
		}
		dir = conf.store.journal_dir;
	}
	if (strcmp(sub, "verify") == 0 && backup == NULL) {
		memset(&so, 0, sizeof(so));
		so.torn_ok = 0;
		if (!journal_scan(dir, &so, NULL, NULL, &end, err,
		    sizeof(err))) {
			fprintf(stderr, "mica-admin: %s\n", err);
			return 1;
		}
		printf("journal %s: records %llu..%llu, %llu segments, %llu "
		    "bytes: chain intact\n", dir,
		    (unsigned long long)end.first_seq,
		    (unsigned long long)end.last_seq,
		    (unsigned long long)end.num_segments,
		    (unsigned long long)end.total_bytes);
		return 0;
	}
	if (strcmp(sub, "prune") == 0 && backup != NULL) {
		if (!backup_seq(backup, &upto))
			return 1;
		if (!journal_prune(dir, upto, &removed, err, sizeof(err))) {
			fprintf(stderr, "mica-admin: %s\n", err);
			return 1;
		}
		printf("journal %s: %llu segments removed (every record in "
		    "them is in %s, at seq %llu)\n", dir,
		    (unsigned long long)removed, backup,
		    (unsigned long long)upto);
		return 0;
	}
	die_usage("usage: journal verify|prune --backup FILE [--journal DIR]%s",
	    "");
	return 2;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	const char *cpath = getenv("MICA_CONF"), *sock = NULL;
	static char sockbuf[CONF_PATH_MAX];
	struct mica_conf *conf;
	struct adm_msg req, rep;
	char err[1024];
	int i, first, rc, pass_fd = -1;
	const char *out_path = NULL, *backup_path = NULL;

	log_init("mica-admin", LOG_LVL_WARN);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(help_text, stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 ||
		    strcmp(argv[i], "--version") == 0) {
			printf("mica-admin %s\n", MICA_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) {
			if (++i == argc)
				die_usage("%s needs a file", argv[i - 1]);
			cpath = argv[i];
		} else if (strcmp(argv[i], "--socket") == 0) {
			if (++i == argc)
				die_usage("%s needs a path", argv[i - 1]);
			sock = argv[i];
		} else if (argv[i][0] == '-')
			die_usage("unknown option %s", argv[i]);
		else
			break;
	}
	if (i == argc) {
		fputs(help_text, stderr);
		return 2;
	}
	first = i;
	if (sodium_init() < 0)
		return 1;
	if (strcmp(argv[first], "init") == 0)
		return cmd_init(argc - first, argv + first);
	if (strcmp(argv[first], "restore") == 0)
		return cmd_restore(argc - first, argv + first);
	if (strcmp(argv[first], "replica") == 0)
		return adm_replica_cmd(argc - first, argv + first, cpath);
	if (strcmp(argv[first], "journal") == 0)
		return cmd_journal(argc - first, argv + first, cpath);
	if (strcmp(argv[first], "digest") == 0 && argc - first == 3 &&
	    strcmp(argv[first + 1], "--store") == 0)
		return cmd_digest_offline(argv[first + 2]);
	for (i = first; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			fputs(help_text, stdout);
			return 0;
		}

	if (sock == NULL) {
		if (cpath != NULL && *cpath == '\0')
			cpath = NULL;	/* MICA_CONF= set but empty */
		if (cpath == NULL)
			die_usage("which CA? give -c CONF or set MICA_CONF%s",
			    "");
		if ((conf = calloc(1, sizeof(*conf))) == NULL)
			return 1;
		if (!conf_load(conf, cpath, err, sizeof(err))) {
			fprintf(stderr, "mica-admin: %s\n", err);
			return 1;
		}
		snprintf(sockbuf, sizeof(sockbuf), "%s", conf->admin.socket);
		sock = sockbuf;
		free(conf);
	}

	adm_msg_init(&req);
	adm_msg_init(&rep);
	for (i = first; i < argc && req.argc < ADM_MAX_ARGS; i++) {
		const char *a = argv[i];

		if (i + 1 < argc && strcmp(a, "--csr") == 0) {
			uint8_t *data;
			size_t len;

			if (!read_file(argv[i + 1], &data, &len, 1 << 16))
				return 1;
			adm_msg_attach(&req, "csr", data, len);
			free(data);
		} else if (i + 1 < argc && strcmp(a, "--password-file") == 0) {
			size_t len;
			char *pw = get_password(argv[i + 1], &len);

			adm_msg_attach(&req, "password", pw, len);
			sodium_free(pw);
			i++;
			continue;
		} else if (i + 1 < argc && strcmp(a, "--out") == 0)
			out_path = argv[i + 1];
		req.argv[req.argc++] = strdup(a);
	}
	if (argc - first >= 2 && strcmp(argv[first], "account") == 0 &&
	    strcmp(argv[first + 1], "add") == 0 &&
	    adm_msg_get(&req, "password") == NULL) {
		size_t len;
		char *pw = get_password(NULL, &len);

		adm_msg_attach(&req, "password", pw, len);
		sodium_free(pw);
	}
	if (strcmp(argv[first], "backup") == 0) {
		if (argc - first != 2)
			die_usage("usage: backup FILE%s", "");
		backup_path = argv[first + 1];
		pass_fd = open(backup_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (pass_fd < 0) {
			fprintf(stderr, "mica-admin: %s: %s\n", backup_path,
			    strerror(errno));
			return 1;
		}
	}
	rc = adm_transact(sock, &req, pass_fd, &rep);
	if (pass_fd >= 0) {
		close(pass_fd);
		if (rc != 0)
			unlink(backup_path);
	}
	if (rc == 0) {
		const struct adm_attach *cert = adm_msg_get(&rep, "cert");

		if (cert != NULL && out_path != NULL) {
			if (!write_atomic(out_path, cert->data, cert->len, 0644))
				rc = 1;
		} else if (cert != NULL)
			fwrite(cert->data, 1, cert->len, stdout);
	}
	adm_msg_cleanup(&req);
	adm_msg_cleanup(&rep);
	return rc;
}
