/* kdcc's temporary folders (where distill, train, eval, soft-targets and --tune
 * build the C they emit): $TMPDIR/kdcc-WHAT-XXXXXX, or /tmp/kdcc-WHAT-XXXXXX when
 * TMPDIR is unset or empty, as other Unix tools do. */
#ifndef KDCC_TMPDIR_H
#define KDCC_TMPDIR_H

#include "compiler/ir/ir.h"

/* The size of a buffer for such a folder's path. A longer $TMPDIR is refused: the
 * paths built in the folder (runtime/trainer.c, compiler/cli/tune.c) must fit theirs. */
#define KD_TMPDIR_MAX 1024

/* Make a fresh private folder (mkdtemp, mode 0700) named kdcc-WHAT-XXXXXX in $TMPDIR
 * (/tmp if unset or empty) and put its path in buf (n bytes, KD_TMPDIR_MAX). 0 ok;
 * otherwise -1 with buf "" and a one-line error in d naming the folder (or TMPDIR). */
int tmpdir_make(char *buf, size_t n, const char *what, Diag *d);

/* Remove a folder tmpdir_make made, with everything in it; nothing when dir is ""
 * (not made). A failure is a warning on stderr naming the folder. */
void tmpdir_remove(const char *dir);

#endif
