/* filepolicy.h -- the upload policy: which kinds of files an application accepts, judged by the
 * types libclamav detected in every layer of an upload (ALLOW_TYPES, DENY_TYPES, POLICY_DEPTH,
 * BLOCK_EXTENSION_MISMATCH, POLICY_MODE; docs/POLICY.md), globally or per user (POLICY_FILE).
 * Functions returning int return 0 on success and -1 on failure, unless said otherwise. */
#ifndef CLAMREST_FILEPOLICY_H
#define CLAMREST_FILEPOLICY_H

#include <stddef.h>

struct scan_kinds;
struct scan_kind;

#define FILEPOLICY_EVERY_DEPTH 0xffffffffU	/* POLICY_DEPTH=all */
#define FILEPOLICY_REASON_MAX 128

/* One policy's settings as given (comma lists; depth "all" or a number; mode "enforce" or
 * "report"). */
struct filepolicy_spec {
	const char *allow, *deny, *depth, *mode;
	int block_mismatch;
};

struct filepolicy;

/* The policy of spec; NULL with one line in err naming what is wrong (an unknown type or group,
 * a bad depth or mode) or when out of memory. A spec with no rule gives a policy that blocks
 * nothing (filepolicy_active answers 0). Caller frees. */
struct filepolicy *filepolicy_new(const struct filepolicy_spec *spec, const char *name, char *err,
    size_t errlen);
void filepolicy_free(struct filepolicy *p);
/* 1 when p has a rule (an allow or deny list or BLOCK_EXTENSION_MISMATCH); NULL: 0. */
int filepolicy_active(const struct filepolicy *p);
/* The policy's name ("global" or POLICY_FILE's), and 1 when it only reports. */
const char *filepolicy_name(const struct filepolicy *p);
int filepolicy_report_only(const struct filepolicy *p);

/* What a policy says of one file. rule: "deny", "allow", "macros", "encrypted", "extension" or
 * "unknown"; reason: v2's (Policy.Type.PDF, Policy.ExtensionMismatch.pdf.MSEXE, ...); type: the
 * detected type that decided (CL_TYPE_...); kind: the layer that decided, for its path (NULL: the
 * upload). blocked stays 0 in report mode: matched says the rule matched. */
struct filepolicy_verdict {
	int matched, blocked, report;	/* report: POLICY_MODE=report */
	const char *rule;
	char reason[FILEPOLICY_REASON_MAX];
	char type[40];
	const struct scan_kind *kind;
};

/* Judges a file's kinds of layers (from the scanner) and its name (NULL: none, as a chunked body;
 * namelen bytes) by p; a NULL or inactive p matches nothing. */
void filepolicy_judge(const struct filepolicy *p, const struct scan_kinds *k, const char *name,
    size_t namelen, struct filepolicy_verdict *v);

/* 1 when type (CL_TYPE_...) is one libclamav 1.4 names. */
int filepolicy_known_type(const char *type);

#endif
