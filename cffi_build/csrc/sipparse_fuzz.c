/* sipparse_fuzz.c - standalone mutation fuzzer for sp_scan(), meant to run under
 * AddressSanitizer/UBSan (not part of the extension; tests/unit/test_msg_fuzz.py builds it):
 *
 *   gcc -O1 -g -fsanitize=address,undefined -Icffi_build/csrc \
 *       cffi_build/csrc/sipparse_fuzz.c cffi_build/csrc/sipparse.c -o /tmp/sp_fuzz
 *   /tmp/sp_fuzz ITERATIONS SEED FILE...
 *
 * Each input is copied into a buffer of exactly its length, so any read past the end is caught.
 * Besides the sanitizers it checks the output invariants: spans inside the buffer, value span
 * inside its line, hot-field spans inside the buffer, error offsets within [0, len].
 * Exit status 0 and a summary line on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipparse.h"

static unsigned long long rng_state;

static unsigned rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)rng_state;
}

static const char *const TOKENS[] = {
    "\r\n", "\n", "\r", " ", "\t", ":", ";", ",", "<", ">", "\"", "\\", "[", "]", "=", "\r\n ",
    "\r\n\r\n", "%", "tag=", "branch=", "Content-Length: 5\r\n", "v: SIP/2.0/UDP a\r\n", "99999999999",
};
#define NTOKENS (sizeof TOKENS / sizeof *TOKENS)
#define SLACK 256

static int check(const char *buf, size_t len, const int32_t *out, int rc, int32_t err)
{
    if (rc < 0)
        return err >= 0 && (size_t)err <= len ? 0 : (rc == SP_E_TOO_BIG ? 0 : 1);
    for (int h = 0; h < rc; h++) {
        const int32_t *hv = out + SP_FIXED + SP_HDR_STRIDE * h;
        if (hv[SP_H_NS] > hv[SP_H_NE] || hv[SP_H_VS] > hv[SP_H_VE] || hv[SP_H_VE] > hv[SP_H_END] ||
            (size_t)hv[SP_H_END] > len)
            return 2;
    }
    for (int q = SP_HOT_FIRST; q < SP_FIXED; q++)
        if (q != SP_S_CSEQ_NUM && out[q] > 0 && (size_t)out[q] > len)
            return 3;
    if ((size_t)out[SP_S_MSG_END] > len || out[SP_S_BODY] > out[SP_S_MSG_END])
        return 4;
    (void)buf;
    return 0;
}

int main(int argc, char **argv)
{
    static int32_t out[SP_OUT_INTS];
    static char src[SP_MAX_MSG_SIZE + 1];
    if (argc < 4) {
        fprintf(stderr, "usage: %s ITERATIONS SEED FILE...\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[1]), accepted = 0, rejected = 0;
    rng_state = (unsigned long long)atoll(argv[2]) * 2654435761ULL + 88172645463325252ULL;
    for (int a = 3; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (f == NULL) {
            perror(argv[a]);
            return 2;
        }
        size_t n = fread(src, 1, sizeof src, f);
        fclose(f);
        char *m = malloc(n + SLACK);
        for (long it = 0; it < iterations; it++) {
            size_t len = n;
            memcpy(m, src, n);
            for (int k = 1 + (int)(rnd() % 4); k > 0; k--) {
                size_t i = len ? rnd() % len : 0;
                switch (rnd() % 5) {
                case 0: len = i; break;
                case 1: if (len) m[i] = (char)rnd(); break;
                case 2: {
                    const char *t = TOKENS[rnd() % NTOKENS];
                    size_t tl = strlen(t);
                    if (len + tl <= n + SLACK) {
                        memmove(m + i + tl, m + i, len - i);
                        memcpy(m + i, t, tl);
                        len += tl;
                    }
                    break;
                }
                case 3: if (len) {
                    size_t d = 1 + rnd() % 10;
                    if (i + d > len) d = len - i;
                    memmove(m + i, m + i + d, len - i - d);
                    len -= d;
                } break;
                default: if (len) m[i] = 0; break;
                }
            }
            char *exact = malloc(len ? len : 1);
            memcpy(exact, m, len);
            int32_t err = -1;
            int rc = sp_scan(exact, len, out, &err);
            int bad = check(exact, len, out, rc, err);
            free(exact);
            if (bad) {
                fprintf(stderr, "invariant %d broken (rc=%d err=%d) on a mutation of %s\n", bad, rc,
                        err, argv[a]);
                free(m);
                return 1;
            }
            if (rc >= 0)
                accepted++;
            else
                rejected++;
        }
        free(m);
    }
    printf("sp_fuzz: %ld accepted, %ld rejected\n", accepted, rejected);
    return 0;
}
