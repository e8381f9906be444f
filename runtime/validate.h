/* The libclang validator: kdcc parses the C it emits, in process, before writing it. */
#ifndef KDCC_VALIDATE_H
#define KDCC_VALIDATE_H

#include "compiler/ir/ir.h"

/* Parse c_text (as file c_name, which includes h_name) with -std=c99 -Wall -Wextra
 * -Wpedantic; any diagnostic (warning or worse) is an internal error reported in d
 * with its location. 0 if clean. */
int validate_c(const char *c_name, const char *c_text, size_t c_len,
               const char *h_name, const char *h_text, size_t h_len, Diag *d);

#endif
