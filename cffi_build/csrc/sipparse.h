/* sipparse: one-pass, allocation-free SIP message scanner (first line, header spans + type
 * ids, folding, body offset, Content-Length). The Python twin is sipcore/msg/pyparser.py;
 * both must give identical results (tests/unit/test_msg_scanner.py). */
#ifndef SIPPARSE_H
#define SIPPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sipparse_gen.h"

int sp_scan(const char *buf, size_t len, int32_t *out, int32_t *err_off);
int sp_hdr_type(const char *name, size_t len);

#endif
