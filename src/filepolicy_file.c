/* filepolicy_file.c -- the upload policies in force: the global one and POLICY_FILE's named ones,
 * the users each applies to, swapped whole when the file is read again. */
#include "filepolicy_file.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "filepolicy.h"
#include "log.h"

#define FPF_VALUE_MAX 1024	/* bytes of one setting's value */
#define FPF_USERS_MAX 4096	/* bytes of one policy's users list */
#define FPF_FILE_MAX (1024 * 1024)

struct fpf_named {
	struct filepolicy *p;
	char users[FPF_USERS_MAX];	/* ",alice,bob," */
};

struct fpf_set {
	struct filepolicy *global;
	struct fpf_named *v;
	unsigned n;
};

static pthread_rwlock_t fpf_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct fpf_set *fpf_cur;
static char *fpf_path;
static struct stat fpf_seen;		/* POLICY_FILE when last read or tried; main thread only */

/* Remembers the file's identity as read (or tried) now. */
static void
fpf_note(void)
{
	if (fpf_path == NULL || stat(fpf_path, &fpf_seen) != 0)
		memset(&fpf_seen, 0, sizeof(fpf_seen));
}

int
filepolicy_file_changed(void)
{
	struct stat st;

	if (fpf_path == NULL || stat(fpf_path, &st) != 0)
		return 0;
	return st.st_mtim.tv_sec != fpf_seen.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != fpf_seen.st_mtim.tv_nsec || st.st_size != fpf_seen.st_size ||
	    st.st_ino != fpf_seen.st_ino;
}

static void
fpf_set_free(struct fpf_set *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n; i++)
		filepolicy_free(s->v[i].p);
	filepolicy_free(s->global);
	free(s->v);
	free(s);
}

/* One section being read: its settings as text. */
struct fpf_section {
	char name[64];
	char allow[FPF_VALUE_MAX], deny[FPF_VALUE_MAX], depth[32], mode[32];
	char users[FPF_USERS_MAX];
	int mismatch, open;
};

static char *
fpf_trim(char *s)
{
	char *e;

	s += strspn(s, " \t\r");
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Each user of sec's list once in the whole file, as ",user," in out. */
static int
fpf_users(const struct fpf_set *s, const char *list, char *out, size_t outlen, char *err,
    size_t errlen)
{
	size_t pos = 1;

	snprintf(out, outlen, ",");
	for (const char *p = list + strspn(list, ", \t"); *p != '\0'; p += strspn(p, ", \t")) {
		size_t n = strcspn(p, ", \t");
		char pat[256];

		snprintf(pat, sizeof(pat), ",%.*s,", (int)(n > 250 ? 250 : n), p);
		for (unsigned i = 0; i < s->n; i++)
			if (strstr(s->v[i].users, pat) != NULL) {
				snprintf(err, errlen, "user %.*s is in two policies", (int)(n > 60 ? 60 : n), p);
				return -1;
			}
		if (strstr(out, pat) == NULL && pos + n + 1 < outlen) {
			memcpy(out + pos, p, n);
			out[pos + n] = ',';
			out[pos + n + 1] = '\0';
			pos += n + 1;
		}
		p += n;
	}
	return 0;
}

/* The section read so far becomes a policy of s. */
static int
fpf_close(struct fpf_set *s, struct fpf_section *sec, char *err, size_t errlen)
{
	struct filepolicy_spec spec = { .allow = sec->allow, .deny = sec->deny, .depth = sec->depth,
	    .mode = sec->mode, .block_mismatch = sec->mismatch };
	struct fpf_named *v;
	char e[256];

	if (!sec->open)
		return 0;
	sec->open = 0;
	if ((v = realloc(s->v, (s->n + 1) * sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->v = v;
	v = &s->v[s->n];
	if (fpf_users(s, sec->users, v->users, sizeof(v->users), err, errlen) != 0)
		return -1;
	if ((v->p = filepolicy_new(&spec, sec->name, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "[%s]: %.200s", sec->name, e);
		return -1;
	}
	s->n++;
	return 0;
}

static int
fpf_setting(struct fpf_section *sec, const char *key, const char *val, char *err, size_t errlen)
{
	if (strcasecmp(key, "allow") == 0 || strcasecmp(key, "allow_types") == 0)
		snprintf(sec->allow, sizeof(sec->allow), "%s", val);
	else if (strcasecmp(key, "deny") == 0 || strcasecmp(key, "deny_types") == 0)
		snprintf(sec->deny, sizeof(sec->deny), "%s", val);
	else if (strcasecmp(key, "depth") == 0 || strcasecmp(key, "policy_depth") == 0)
		snprintf(sec->depth, sizeof(sec->depth), "%s", val);
	else if (strcasecmp(key, "mode") == 0 || strcasecmp(key, "policy_mode") == 0)
		snprintf(sec->mode, sizeof(sec->mode), "%s", val);
	else if (strcasecmp(key, "users") == 0)
		snprintf(sec->users, sizeof(sec->users), "%s", val);
	else if (strcasecmp(key, "block_extension_mismatch") == 0) {
		if (strcasecmp(val, "yes") == 0 || strcasecmp(val, "true") == 0 || strcmp(val, "1") == 0)
			sec->mismatch = 1;
		else if (strcasecmp(val, "no") == 0 || strcasecmp(val, "false") == 0 ||
		    strcmp(val, "0") == 0)
			sec->mismatch = 0;
		else {
			snprintf(err, errlen, "block_extension_mismatch: yes or no");
			return -1;
		}
	} else {
		snprintf(err, errlen, "unknown setting '%.40s' (allow, deny, depth, mode, "
		    "block_extension_mismatch, users)", key);
		return -1;
	}
	return 0;
}

/* One line: a comment, [name], or key = value inside a section. */
static int
fpf_line(struct fpf_set *s, struct fpf_section *sec, char *line, char *err, size_t errlen)
{
	char *eq, *p = fpf_trim(line);
	size_t n = strlen(p);

	if (n == 0 || p[0] == '#' || p[0] == ';')
		return 0;
	if (p[0] == '[') {
		if (p[n - 1] != ']' || n < 3 || n - 2 >= sizeof(sec->name)) {
			snprintf(err, errlen, "a section is [name], of at most 62 characters");
			return -1;
		}
		if (fpf_close(s, sec, err, errlen) != 0)
			return -1;
		memset(sec, 0, sizeof(*sec));
		snprintf(sec->name, sizeof(sec->name), "%.*s", (int)(n - 2), p + 1);
		sec->open = 1;
		return 0;
	}
	if ((eq = strchr(p, '=')) == NULL || !sec->open) {
		snprintf(err, errlen, "expected [name] or key = value inside a [name] section");
		return -1;
	}
	*eq = '\0';
	return fpf_setting(sec, fpf_trim(p), fpf_trim(eq + 1), err, errlen);
}

/* text into s's named policies; -1 with "line N: reason" in err. */
static int
fpf_parse(struct fpf_set *s, const char *text, char *err, size_t errlen)
{
	struct fpf_section *sec = calloc(1, sizeof(*sec));
	char *copy = strdup(text), *line, e[320];
	unsigned no = 0;
	int rc = 0;

	if (sec == NULL || copy == NULL) {
		free(sec);
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (line = copy; line != NULL && rc == 0; no++) {
		char *next = strchr(line, '\n');

		if (next != NULL)
			*next++ = '\0';
		if ((rc = fpf_line(s, sec, line, e, sizeof(e))) != 0)
			snprintf(err, errlen, "line %u: %s", no + 1, e);
		line = next;
	}
	if (rc == 0 && (rc = fpf_close(s, sec, e, sizeof(e))) != 0)
		snprintf(err, errlen, "line %u: %s", no, e);
	free(sec);
	free(copy);
	return rc;
}

/* The file at path, read whole (at most FPF_FILE_MAX bytes); NULL with the reason in err. */
static char *
fpf_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "POLICY_FILE %.200s: cannot be read", path);
		return NULL;
	}
	if ((buf = malloc(FPF_FILE_MAX + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, FPF_FILE_MAX + 1, f);
	fclose(f);
	if (n > FPF_FILE_MAX || memchr(buf, '\0', n) != NULL) {
		free(buf);
		snprintf(err, errlen, "POLICY_FILE %.200s: larger than 1 MiB, or not text", path);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* A new set: a copy of global's settings (spec) and the file's policies. */
static struct fpf_set *
fpf_load(const struct filepolicy_spec *global, const char *path, char *err, size_t errlen)
{
	struct fpf_set *s = calloc(1, sizeof(*s));
	char e[400], *text;

	if (s == NULL || (s->global = filepolicy_new(global, "global", err, errlen)) == NULL) {
		if (s == NULL)
			snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	if (path == NULL || path[0] == '\0')
		return s;
	if ((text = fpf_read(path, err, errlen)) == NULL) {
		fpf_set_free(s);
		return NULL;
	}
	if (fpf_parse(s, text, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "POLICY_FILE %.200s: %s", path, e);
		fpf_set_free(s);
		s = NULL;
	}
	free(text);
	return s;
}

static struct filepolicy_spec fpf_global;	/* the settings, kept for reloads */
static char *fpf_global_text[4];

int
filepolicy_file_init(const struct filepolicy_spec *global, const char *path, char *err,
    size_t errlen)
{
	struct fpf_set *s = fpf_load(global, path, err, errlen);
	const char *const in[4] = { global->allow, global->deny, global->depth, global->mode };

	if (s == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		fpf_global_text[i] = strdup(in[i] != NULL ? in[i] : "");
	fpf_global = (struct filepolicy_spec){ .allow = fpf_global_text[0],
	    .deny = fpf_global_text[1], .depth = fpf_global_text[2], .mode = fpf_global_text[3],
	    .block_mismatch = global->block_mismatch };
	fpf_path = path != NULL && path[0] != '\0' ? strdup(path) : NULL;
	fpf_note();
	pthread_rwlock_wrlock(&fpf_lock);
	fpf_cur = s;
	pthread_rwlock_unlock(&fpf_lock);
	return 0;
}

int
filepolicy_file_reload(char *err, size_t errlen)
{
	struct fpf_set *s, *old;

	if (fpf_path == NULL)
		return 0;
	fpf_note();
	if ((s = fpf_load(&fpf_global, fpf_path, err, errlen)) == NULL)
		return -1;
	pthread_rwlock_wrlock(&fpf_lock);
	old = fpf_cur;
	fpf_cur = s;
	pthread_rwlock_unlock(&fpf_lock);
	fpf_set_free(old);
	log_info("POLICY_FILE %s read: %u policies", fpf_path, s->n);
	return 0;
}

void
filepolicy_file_free(void)
{
	pthread_rwlock_wrlock(&fpf_lock);
	fpf_set_free(fpf_cur);
	fpf_cur = NULL;
	pthread_rwlock_unlock(&fpf_lock);
	for (int i = 0; i < 4; i++) {
		free(fpf_global_text[i]);
		fpf_global_text[i] = NULL;
	}
	free(fpf_path);
	fpf_path = NULL;
}

int
filepolicy_file_active(void)
{
	int active = 0;

	pthread_rwlock_rdlock(&fpf_lock);
	if (fpf_cur != NULL) {
		active = filepolicy_active(fpf_cur->global);
		for (unsigned i = 0; i < fpf_cur->n && !active; i++)
			active = filepolicy_active(fpf_cur->v[i].p);
	}
	pthread_rwlock_unlock(&fpf_lock);
	return active;
}

void
filepolicy_file_judge(const char *user, const struct scan_kinds *k, const char *name,
    size_t namelen, struct filepolicy_verdict *v, char *policy, size_t policylen)
{
	const struct filepolicy *p = NULL;
	char pat[256];

	snprintf(pat, sizeof(pat), ",%s,", user != NULL ? user : "");
	pthread_rwlock_rdlock(&fpf_lock);
	if (fpf_cur != NULL) {
		p = fpf_cur->global;
		for (unsigned i = 0; user != NULL && user[0] != '\0' && i < fpf_cur->n; i++)
			if (strstr(fpf_cur->v[i].users, pat) != NULL)
				p = fpf_cur->v[i].p;
	}
	filepolicy_judge(p, k, name, namelen, v);
	snprintf(policy, policylen, "%s", filepolicy_name(p));
	pthread_rwlock_unlock(&fpf_lock);
}

int
filepolicy_file_parse(const char *text, char *err, size_t errlen)
{
	struct filepolicy_spec none = { 0 };
	struct fpf_set *s = calloc(1, sizeof(*s));
	int n;

	if (s == NULL || (s->global = filepolicy_new(&none, "global", err, errlen)) == NULL) {
		free(s);
		return -1;
	}
	n = fpf_parse(s, text, err, errlen) == 0 ? (int)s->n : -1;
	fpf_set_free(s);
	return n;
}
