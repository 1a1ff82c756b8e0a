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
"  init DIR [--cn NAME] [--key-type ec-p256|ec-p384|ed25519|rsa-3072]\n"
"       [--ca-listen HOST:PORT] [--http-listen HOST:PORT] [--http-url URL]\n"
"       [--tls-name NAME]... [--key-passphrase-file F] [--days N]\n"
"                       create a CA in DIR: ca.crt, ocsp.crt, tls.crt,\n"
"                       private/*.key, mica.conf and an empty store\n"
"\n"
"Daemon and store:\n"
"  status [--json]      uptime, store size and counts, CRL, signer expiry\n"
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
"  crl                  rebuild the full CRL now\n"
"  check                prove the store, OCSP answers and CRLs agree (exit 1\n"
"                       naming the first disagreement)\n"
"\n"
"Subscribers:\n"
"  account add NAME --subject DN [--password-file F]\n"
"                       enroll; prints the TOTP secret and otpauth URI once\n"
"  account list [--json]\n"
"  account unlock NAME  clear failed logins and a lock-out\n"
"\n"
"Certificates (serials in any hex form; printed as uppercase hex):\n"
"  issue --account NAME --csr FILE [--days N] --out FILE\n"
"  revoke SERIAL [--reason unspecified|keyCompromise|affiliationChanged|\n"
"                 superseded|cessationOfOperation|privilegeWithdrawn]\n"
"                [--invalidity-date YYYYMMDDHHMMSSZ]\n"
"                       a revoked certificate's reason can be raised to\n"
"                       keyCompromise (first revocation time kept); mica's\n"
"                       own CA/OCSP/TLS certificates are refused\n"
"  hold SERIAL          certificateHold (OCSP: revoked, reason hold)\n"
"  unhold SERIAL        release a hold\n"
"  show SERIAL [--json]\n"
"  list [--status good|hold|revoked] [--expiring DAYS] [--account NAME]\n"
"       [--json]\n"
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
static int
transact(const char *sock, struct adm_msg *req, int pass_fd,
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

static int
write_conf(const char *dir, const char *ca_listen, const char *http_listen,
    const char *http_url, const char *pass_file)
{
	char path[4096], text[8192];
	int fd, n;

	snprintf(path, sizeof(path), "%s/mica.conf", dir);
	n = snprintf(text, sizeof(text),
"# mica.conf - written by mica-admin init.  OpenSSL config syntax.\n"
"# Every key is listed in conf/mica.conf.sample and in the README.\n"
"# Relative paths are relative to this file's directory.\n"
"\n"
"[ca]\n"
"cert = ca.crt\n"
"key = private/ca.key\n"
"%s%s%s"
"ocsp_cert = ocsp.crt\n"
"ocsp_key = private/ocsp.key\n"
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
"\n"
"[http]\n"
"# OCSP (POST /ocsp, GET /ocsp/...), CRLs (/crl), CA certificate (/ca.crt)\n"
"listen = %s\n"
"# event threads (cached OCSP answers are written here)\n"
"threads = 1\n"
"# threads that sign what the cache cannot answer; one per core\n"
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
"expiry_interval = 3600\n",
	    pass_file ? "key_passphrase_file = " : "",
	    pass_file ? pass_file : "", pass_file ? "\n" : "",
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
	    "CA created", NULL)) != STORE_OK ||
	    (rc = add_cert(txn, is->res->ca_cert, "CA certificate")) !=
	    STORE_OK ||
	    (rc = add_cert(txn, is->res->ocsp_cert, "OCSP signer")) !=
	    STORE_OK ||
	    (rc = add_cert(txn, is->res->tls_cert, "TLS server certificate"))
	    != STORE_OK)
		return rc;
	return STORE_OK;
}

static int
cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *cn = NULL, *kt = NULL, *pfile = NULL;
	const char *ca_listen = "127.0.0.1:7700";
	const char *http_listen = "127.0.0.1:7780", *http_url = NULL;
	const char *names[16];
	size_t num_names = 0;
	int ca_days = 0;
	struct ca_init_opts o;
	struct ca_init_result res;
	struct store_opts so;
	struct store *st = NULL;
	struct init_store is;
	char err[1024], url[512], spath[4096], abspass[4096];
	char *pass = NULL;
	enum store_rc rc;
	int i;

	for (i = 1; i < argc; i++) {
		static const char *const known[] = { "--cn", "--key-type",
		    "--ca-listen", "--http-listen", "--http-url",
		    "--key-passphrase-file", "--tls-name", "--days" };
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;

		if (a[0] != '-' || a[1] == '\0') {
			if (dir != NULL)
				die_usage("init: one directory only (%s?)", a);
			dir = a;
			continue;
		}
		/* an unknown option is named as such, value or not */
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(a, known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			die_usage("init: unknown option %s", a);
		if (v == NULL)
			die_usage("init: %s needs a value", a);
		i++;
		if (strcmp(a, "--cn") == 0)
			cn = v;
		else if (strcmp(a, "--key-type") == 0)
			kt = v;
		else if (strcmp(a, "--ca-listen") == 0)
			ca_listen = v;
		else if (strcmp(a, "--http-listen") == 0)
			http_listen = v;
		else if (strcmp(a, "--http-url") == 0)
			http_url = v;
		else if (strcmp(a, "--key-passphrase-file") == 0)
			pfile = v;
		else if (strcmp(a, "--days") == 0) {
			char *end;
			long d;

			errno = 0;
			d = strtol(v, &end, 10);
			if (errno != 0 || *end != '\0' || end == v || d < 2 ||
			    d > 36500)
				die_usage("init: --days must be 2 to 36500, "
				    "not %s", v);
			ca_days = (int)d;
		} else {
			if (num_names == 16)
				die_usage("init: at most 16 %s", a);
			names[num_names++] = v;
		}
	}
	if (dir == NULL)
		die_usage("init: which directory? (%s)", "init DIR");
	if (kt != NULL && strcmp(kt, "ec-p256") && strcmp(kt, "ec-p384") &&
	    strcmp(kt, "ed25519") && strcmp(kt, "rsa-3072"))
		die_usage("init: --key-type must be ec-p256, ec-p384, ed25519 "
		    "or rsa-3072, not %s", kt);
	if (strchr(ca_listen, ':') == NULL)
		die_usage("init: --ca-listen must be HOST:PORT (%s)",
		    ca_listen);
	if (strchr(http_listen, ':') == NULL)
		die_usage("init: --http-listen must be HOST:PORT (%s)",
		    http_listen);
	if (http_url == NULL) {
		snprintf(url, sizeof(url), "http://%s", http_listen);
		http_url = url;
	}
	if (!conf_http_url_check(http_url, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: init: --http-url %s: %s\n",
		    http_url, err);
		return 2;
	}
	if (pfile != NULL) {
		size_t l;

		if (realpath(pfile, abspass) == NULL) {
			fprintf(stderr, "mica-admin: %s: %s\n", pfile,
			    strerror(errno));
			return 1;
		}
		if ((pass = sodium_malloc(1100)) == NULL)
			return 1;
		{
			FILE *f = fopen(abspass, "r");

			if (f == NULL || fgets(pass, 1100, f) == NULL) {
				fprintf(stderr, "mica-admin: cannot read %s\n",
				    pfile);
				if (f)
					fclose(f);
				return 1;
			}
			fclose(f);
		}
		l = strcspn(pass, "\r\n");
		pass[l] = '\0';
		if (l < 8) {
			fprintf(stderr, "mica-admin: the key passphrase must "
			    "have at least 8 characters\n");
			return 1;
		}
	}
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.cn = cn;
	o.key_type = kt;
	o.passphrase = pass;
	o.ca_days = ca_days;
	o.tls_names = num_names ? names : NULL;
	o.num_tls_names = num_names;
	if (!ca_init_dir(&res, &o, err, sizeof(err))) {
		fprintf(stderr, "mica-admin: init: %s\n", err);
		if (pass)
			sodium_free(pass);
		return 1;
	}
	if (pass)
		sodium_free(pass);
	if (!write_conf(dir, ca_listen, http_listen, http_url,
	    pfile ? abspass : NULL))
		goto fail;
	snprintf(spath, sizeof(spath), "%s/store", dir);
	memset(&so, 0, sizeof(so));
	so.create = 1;
	so.exclusive = 1;
	if ((rc = store_open(&st, spath, &so)) != STORE_OK) {
		fprintf(stderr, "mica-admin: init: store %s: %s\n", spath,
		    store_strerror(rc));
		goto fail;
	}
	is.res = &res;
	if ((rc = store_write(st, init_txn, &is)) != STORE_OK) {
		fprintf(stderr, "mica-admin: init: store: %s\n",
		    store_strerror(rc));
		goto fail;
	}
	store_close(st);
	{
		char hex[SERIAL_HEX_LEN], subj[1024];

		serial_hex(hex, res.ca_serial);
		ca_name_print(subj, sizeof(subj),
		    X509_get_subject_name(res.ca_cert));
		printf("CA created in %s\n", dir);
		printf("  subject: %s\n  serial: %s\n", subj, hex);
		printf("  config: %s/mica.conf\n", dir);
		printf("  CA protocol: %s   HTTP (OCSP/CRL): %s\n", ca_listen,
		    http_listen);
		printf("  certificates will point at: %s\n", http_url);
		printf("next: micad -c %s/mica.conf\n", dir);
	}
	ca_init_result_cleanup(&res);
	return 0;
 fail:
	store_close(st);
	ca_init_result_cleanup(&res);
	return 1;
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
	rc = transact(sock, &req, pass_fd, &rep);
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
