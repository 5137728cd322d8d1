/* sipparse.c - one-pass SIP message scanner for PyKam (built by cffi_build/build_sipparse.py
 * into sipcore._csipparse, used only through sipcore/msg/_cparse.py).
 *
 * Runs in: every SIP worker (and the timer process) for every received message.
 * Thread/process safety: pure function of its arguments; no globals, no allocation.
 *
 * sp_scan() mirrors sipcore/msg/pyparser.py rule for rule (same checks in the same order, same
 * error codes and offsets); tests run the corpus and a mutation fuzzer through both.
 * After a successful scan it fills the "hot" slots (From/To tag, top Via branch, CSeq, Contact
 * URI, Call-ID) when those headers are in their common, simple form; anything unusual is left at -1 and
 * the Python parsers handle it, so the hot slots never disagree with the Python parsers.
 */
#include "sipparse.h"

#define FAIL(code, off)                                                                         \
    do {                                                                                        \
        *err_off = (int32_t)(off);                                                              \
        return (code);                                                                          \
    } while (0)

#define IS_WS(c) ((c) == ' ' || (c) == '\t')
#define IS_LWS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define IS_ALNUM(c) (IS_ALPHA(c) || IS_DIGIT(c))
#define TOK(c) (SP_TOKEN_CHAR[(unsigned char)(c)])

static inline unsigned char up(unsigned char c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }
static inline unsigned char low(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* case-insensitive compare of s[0:n) with upper-case literal u */
static int ieq_upper(const unsigned char *s, const char *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (up(s[i]) != (unsigned char)u[i])
            return 0;
    return 1;
}

int sp_hdr_type(const char *name, size_t len)
{
    unsigned char lname[SP_HDR_NAME_MAX];
    if (len == 0 || len > SP_HDR_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        lname[i] = low((unsigned char)name[i]);
    return sp_hdr_lookup_lower(lname, len);
}

/* ------------------------------------------------------------------ hot-field parsers
 * Each returns 1 when the value is in the simple form it fully understands (and then its
 * result equals the Python parser's), 0 to defer to Python. */

static size_t skip_ws(const unsigned char *b, size_t i, size_t e)
{
    while (i < e && IS_WS(b[i]))
        i++;
    return i;
}

/* gen-value as sipcore/msg/params.py _VALUE_RE: "[" hex/:/. "]" first, else a run of
 * token chars and ":[]/@". Returns the end or i when nothing matched. */
static size_t param_value(const unsigned char *b, size_t i, size_t e)
{
    if (i < e && b[i] == '[') {
        size_t j = i + 1;
        while (j < e && (IS_DIGIT(b[j]) || ((b[j] | 0x20) >= 'a' && (b[j] | 0x20) <= 'f') ||
                         b[j] == ':' || b[j] == '.'))
            j++;
        if (j < e && b[j] == ']')
            return j + 1;
    }
    size_t j = i;
    while (j < e && (TOK(b[j]) || b[j] == ':' || b[j] == '[' || b[j] == ']' || b[j] == '/' ||
                     b[j] == '@'))
        j++;
    return j;
}

/* *(SEMI generic-param) from i; stops at the first char that is not ';' (returned in *stop).
 * want/wlen: a param name (lower case) whose first value span is reported (-2 if absent).
 * need_value: names (upper case, NUL separated list ending with "") that must have a value. */
static int hot_params(const unsigned char *b, size_t i, size_t e, const char *want, size_t wlen,
                      int32_t *ws, int32_t *we, const char *const *need_value, size_t *stop)
{
    *ws = -2;
    *we = -2;
    i = skip_ws(b, i, e);
    while (i < e && b[i] == ';') {
        i = skip_ws(b, i + 1, e);
        size_t ns = i;
        while (i < e && TOK(b[i]))
            i++;
        if (i == ns)
            return 0;
        size_t ne = i;
        size_t vs = 0, ve = 0;
        int has_value = 0;
        i = skip_ws(b, i, e);
        if (i < e && b[i] == '=') {
            i = skip_ws(b, i + 1, e);
            if (i < e && b[i] == '"')
                return 0;
            vs = i;
            ve = param_value(b, i, e);
            if (ve == vs)
                return 0;
            has_value = 1;
            i = skip_ws(b, ve, e);
        }
        if (!has_value && need_value) {
            for (const char *const *nv = need_value; **nv; nv++) {
                size_t l = strlen(*nv);
                if (ne - ns == l && ieq_upper(b + ns, *nv, l))
                    return 0;
            }
        }
        if (*ws == -2 && ne - ns == wlen) {
            size_t k = 0;
            while (k < wlen && low(b[ns + k]) == (unsigned char)want[k])
                k++;
            if (k == wlen) {
                *ws = (int32_t)(has_value ? vs : ne);
                *we = (int32_t)(has_value ? ve : ne);
            }
        }
    }
    *stop = i;
    return 1;
}

/* scheme ":" at b[i..] (RFC 3261 absoluteURI scheme) */
static int has_scheme(const unsigned char *b, size_t i, size_t e)
{
    if (i >= e || !IS_ALPHA(b[i]))
        return 0;
    i++;
    while (i < e && (IS_ALNUM(b[i]) || b[i] == '+' || b[i] == '-' || b[i] == '.'))
        i++;
    return i < e && b[i] == ':';
}

/* name-addr / addr-spec with params, value [s, e) not folded; one pass, mirroring
 * sipcore/msg/nameaddr.py _parse_one: a quoted display name (any bytes, quoted-pairs) or a run
 * of tokens and SP/HT directly followed by '<' makes the name-addr form; otherwise addr-spec.
 * URI bytes must be printable ASCII (else defer); a quoted parameter value defers too. */
static int hot_nameaddr(const unsigned char *b, size_t s, size_t e, int32_t *tag_s,
                        int32_t *tag_e, int32_t *uri_s, int32_t *uri_e)
{
    size_t i = skip_ws(b, s, e), lt;
    if (i >= e)
        return 0;
    if (b[i] == '"') {
        size_t j = i + 1;
        for (;;) {
            if (j >= e)
                return 0;
            if (b[j] == '"')
                break;
            j += (b[j] == '\\') ? 2 : 1;
        }
        lt = skip_ws(b, j + 1, e);
        if (lt >= e || b[lt] != '<')
            return 0;
    } else {
        size_t k = i;
        while (k < e && (TOK(b[k]) || IS_WS(b[k])))
            k++;
        lt = (k < e && b[k] == '<') ? k : e;
    }
    if (lt < e) {
        size_t gt = lt + 1;
        while (gt < e && b[gt] != '>') {
            unsigned char c = b[gt];
            if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<')
                return 0;
            gt++;
        }
        if (gt >= e || gt == lt + 1 || !has_scheme(b, lt + 1, gt))
            return 0;
        *uri_s = (int32_t)(lt + 1);
        *uri_e = (int32_t)gt;
        i = gt + 1;
    } else {
        size_t j = i;
        while (j < e && b[j] != ';' && b[j] != ',' && !IS_WS(b[j])) {
            unsigned char c = b[j];
            if (c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '?')
                return 0;
            j++;
        }
        if (!has_scheme(b, i, j))
            return 0;
        *uri_s = (int32_t)i;
        *uri_e = (int32_t)j;
        i = j;
    }
    size_t stop;
    if (!hot_params(b, i, e, "tag", 3, tag_s, tag_e, NULL, &stop))
        return 0;
    return skip_ws(b, stop, e) == e;
}

static const char *const VIA_NEED_VALUE[] = {"BRANCH", "RECEIVED", "MADDR", "TTL", ""};

/* the whole Via header value (every via-parm is checked, as parse_via does); branch of the
 * first one */
static int hot_via(const unsigned char *b, size_t s, size_t e, int32_t *br_s, int32_t *br_e)
{
    size_t i = skip_ws(b, s, e);
    int first = 1;
    for (;;) {
        size_t t0 = i;
        while (i < e && TOK(b[i]))
            i++;
        if (i - t0 != 3 || !ieq_upper(b + t0, "SIP", 3))
            return 0;
        i = skip_ws(b, i, e);
        if (i >= e || b[i] != '/')
            return 0;
        i = skip_ws(b, i + 1, e);
        t0 = i;
        while (i < e && TOK(b[i]))
            i++;
        if (i - t0 != 3 || memcmp(b + t0, "2.0", 3) != 0)
            return 0;
        i = skip_ws(b, i, e);
        if (i >= e || b[i] != '/')
            return 0;
        i = skip_ws(b, i + 1, e);
        t0 = i;
        while (i < e && TOK(b[i]))
            i++;
        if (i == t0)
            return 0;
        size_t h0 = skip_ws(b, i, e);
        if (h0 == i)
            return 0;
        i = h0;
        while (i < e && (IS_ALNUM(b[i]) || b[i] == '-' || b[i] == '_' || b[i] == '.'))
            i++;
        /* hostname check as uri.py _HOSTNAME_RE */
        size_t h1 = i;
        if (h1 == h0 || !IS_ALNUM(b[h0]))
            return 0;
        if (h1 - h0 > 1) {
            size_t last = h1 - 1;
            if (b[last] == '.')
                last--;
            if (last > h0 && !(IS_ALNUM(b[last]) || b[last] == '_'))
                return 0;
        }
        i = skip_ws(b, i, e);
        if (i < e && b[i] == ':') {
            i = skip_ws(b, i + 1, e);
            size_t p0 = i;
            uint32_t port = 0;
            while (i < e && IS_DIGIT(b[i])) {
                port = port * 10 + (b[i] - '0');
                i++;
                if (i - p0 > 5)
                    return 0;
            }
            if (i == p0 || port > 65535)
                return 0;
        }
        int32_t ps, pe;
        size_t stop;
        if (!hot_params(b, i, e, "branch", 6, &ps, &pe, VIA_NEED_VALUE, &stop))
            return 0;
        if (first) {
            *br_s = ps;
            *br_e = pe;
            first = 0;
        }
        i = skip_ws(b, stop, e);
        if (i >= e)
            return 1;
        if (b[i] != ',')
            return 0;
        i = skip_ws(b, i + 1, e);
    }
}

/* CSeq: 1*DIGIT 1*WS token (value already trimmed) */
static int hot_cseq(const unsigned char *b, size_t s, size_t e, int32_t *num, int32_t *ms,
                    int32_t *me)
{
    size_t i = s;
    while (i < e && b[i] == '0')
        i++;
    size_t d0 = i;
    uint64_t n = 0;
    while (i < e && IS_DIGIT(b[i])) {
        n = n * 10 + (uint64_t)(b[i] - '0');
        i++;
        if (i - d0 > 10)
            return 0;
    }
    if (i == s || n > (uint64_t)SP_MAX_CSEQ)
        return 0;
    size_t w = i;
    i = skip_ws(b, i, e);
    if (i == w)
        return 0;
    size_t t0 = i;
    while (i < e && TOK(b[i]))
        i++;
    if (i == t0 || i != e)
        return 0;
    *num = (int32_t)n;
    *ms = (int32_t)t0;
    *me = (int32_t)i;
    return 1;
}

static void fill_hot(const unsigned char *b, int32_t *out, int32_t nh)
{
    int32_t f_from = -1, f_to = -1, f_via = -1, f_cseq = -1, f_callid = -1, f_contact = -1;
    int ncontact = 0;
    for (int32_t k = nh - 1; k >= 0; k--) { /* backwards: the first header of a type wins */
        switch (out[SP_FIXED + SP_HDR_STRIDE * k + SP_H_TYPE]) {
        case SP_HDR_FROM: f_from = k; break;
        case SP_HDR_TO: f_to = k; break;
        case SP_HDR_VIA: f_via = k; break;
        case SP_HDR_CSEQ: f_cseq = k; break;
        case SP_HDR_CALLID: f_callid = k; break;
        case SP_HDR_CONTACT: f_contact = k; ncontact++; break;
        default: break;
        }
    }
    int32_t first[SP_HDR_WARNING + 1];
    first[SP_HDR_FROM] = f_from;
    first[SP_HDR_TO] = f_to;
    first[SP_HDR_VIA] = f_via;
    first[SP_HDR_CSEQ] = f_cseq;
    first[SP_HDR_CALLID] = f_callid;
    first[SP_HDR_CONTACT] = f_contact;
    for (int s = SP_HOT_FIRST; s < SP_FIXED; s++)
        out[s] = -1;
#define HDR(k) (out + SP_FIXED + SP_HDR_STRIDE * (k))
    int32_t us, ue, ts, te;
    if (first[SP_HDR_FROM] >= 0 && !HDR(first[SP_HDR_FROM])[SP_H_FOLDED]) {
        int32_t *h = HDR(first[SP_HDR_FROM]);
        if (hot_nameaddr(b, (size_t)h[SP_H_VS], (size_t)h[SP_H_VE], &ts, &te, &us, &ue)) {
            out[SP_S_FROMTAG_S] = ts;
            out[SP_S_FROMTAG_E] = te;
        }
    }
    if (first[SP_HDR_TO] >= 0 && !HDR(first[SP_HDR_TO])[SP_H_FOLDED]) {
        int32_t *h = HDR(first[SP_HDR_TO]);
        if (hot_nameaddr(b, (size_t)h[SP_H_VS], (size_t)h[SP_H_VE], &ts, &te, &us, &ue)) {
            out[SP_S_TOTAG_S] = ts;
            out[SP_S_TOTAG_E] = te;
        }
    }
    if (first[SP_HDR_VIA] >= 0 && !HDR(first[SP_HDR_VIA])[SP_H_FOLDED]) {
        int32_t *h = HDR(first[SP_HDR_VIA]);
        if (hot_via(b, (size_t)h[SP_H_VS], (size_t)h[SP_H_VE], &ts, &te)) {
            out[SP_S_BRANCH_S] = ts;
            out[SP_S_BRANCH_E] = te;
        }
    } else if (first[SP_HDR_VIA] < 0) {
        out[SP_S_BRANCH_S] = out[SP_S_BRANCH_E] = -2;
    }
    if (first[SP_HDR_CSEQ] >= 0 && !HDR(first[SP_HDR_CSEQ])[SP_H_FOLDED]) {
        int32_t *h = HDR(first[SP_HDR_CSEQ]);
        int32_t num;
        if (hot_cseq(b, (size_t)h[SP_H_VS], (size_t)h[SP_H_VE], &num, &ts, &te)) {
            out[SP_S_CSEQ_NUM] = num;
            out[SP_S_CSEQ_M_S] = ts;
            out[SP_S_CSEQ_M_E] = te;
        }
    }
    if (first[SP_HDR_CALLID] < 0) {
        out[SP_S_CALLID_S] = out[SP_S_CALLID_E] = -2;
    } else if (!HDR(first[SP_HDR_CALLID])[SP_H_FOLDED]) {
        out[SP_S_CALLID_S] = HDR(first[SP_HDR_CALLID])[SP_H_VS];
        out[SP_S_CALLID_E] = HDR(first[SP_HDR_CALLID])[SP_H_VE];
    }
    if (ncontact == 0) {
        out[SP_S_CONTACT_S] = out[SP_S_CONTACT_E] = -2;
    } else if (ncontact == 1 && !HDR(first[SP_HDR_CONTACT])[SP_H_FOLDED]) {
        int32_t *h = HDR(first[SP_HDR_CONTACT]);
        int comma = memchr(b + h[SP_H_VS], ',', (size_t)(h[SP_H_VE] - h[SP_H_VS])) != NULL;
        if (!comma && hot_nameaddr(b, (size_t)h[SP_H_VS], (size_t)h[SP_H_VE], &ts, &te, &us, &ue)) {
            out[SP_S_CONTACT_S] = us;
            out[SP_S_CONTACT_E] = ue;
        }
    }
#undef HDR
}

/* ------------------------------------------------------------------ the scanner */

int sp_scan(const char *cbuf, size_t n, int32_t *out, int32_t *err_off)
{
    const unsigned char *buf = (const unsigned char *)cbuf;
    size_t p = 0, lf, le, q;
    *err_off = -1;
    if (n > SP_MAX_MSG_SIZE)
        FAIL(SP_E_TOO_BIG, SP_MAX_MSG_SIZE);
    while (p < n && (buf[p] == '\r' || buf[p] == '\n'))
        p++;
    if (p >= n)
        FAIL(SP_E_EMPTY, p);
    size_t fl_start = p;
    const unsigned char *nl = memchr(buf + p, '\n', n - p);
    if (nl == NULL)
        FAIL(SP_E_NO_FIRST_LINE_END, n);
    lf = (size_t)(nl - buf);
    le = buf[lf - 1] == '\r' ? lf - 1 : lf;
    for (q = p; q < le; q++)
        if (buf[q] < 0x20 || buf[q] == 0x7f)
            FAIL(SP_E_BAD_CHAR, q);
    for (int k = 0; k < SP_FIXED; k++)
        out[k] = 0;
    out[SP_S_FL_START] = (int32_t)fl_start;
    if (p + 4 <= n && ieq_upper(buf + p, "SIP/", 4)) {
        out[SP_S_KIND] = SP_KIND_REPLY;
        if (le - p < 8 || !ieq_upper(buf + p, "SIP/2.0 ", 8))
            FAIL(SP_E_BAD_VERSION, p);
        out[SP_S_M_S] = out[SP_S_M_E] = out[SP_S_U_S] = out[SP_S_U_E] = (int32_t)p;
        out[SP_S_V_S] = (int32_t)p;
        out[SP_S_V_E] = (int32_t)(p + 7);
        q = p + 8;
        if (q + 3 > n || !IS_DIGIT(buf[q]) || !IS_DIGIT(buf[q + 1]) || !IS_DIGIT(buf[q + 2]) ||
            buf[q] < '1' || buf[q] > '6')
            FAIL(SP_E_BAD_STATUS, q);
        int32_t code = (buf[q] - '0') * 100 + (buf[q + 1] - '0') * 10 + (buf[q + 2] - '0');
        q += 3;
        if (q < le && buf[q] != ' ')
            FAIL(SP_E_BAD_STATUS, q);
        out[SP_S_STATUS] = code;
        out[SP_S_R_S] = (int32_t)(q < le ? q + 1 : q);
        out[SP_S_R_E] = (int32_t)le;
    } else {
        out[SP_S_KIND] = SP_KIND_REQUEST;
        q = p;
        while (q < le && TOK(buf[q]))
            q++;
        if (q == p)
            FAIL(SP_E_BAD_METHOD, p);
        if (q >= le || buf[q] != ' ')
            FAIL(SP_E_BAD_METHOD, q);
        out[SP_S_M_S] = (int32_t)p;
        out[SP_S_M_E] = (int32_t)q;
        size_t us = q + 1, ue = us;
        while (ue < le && buf[ue] != ' ')
            ue++;
        if (ue >= le || ue == us)
            FAIL(SP_E_BAD_RURI, us);
        out[SP_S_U_S] = (int32_t)us;
        out[SP_S_U_E] = (int32_t)ue;
        size_t vs = ue + 1;
        if (le - vs != 7 || !ieq_upper(buf + vs, "SIP/2.0", 7)) {
            int has_sp = memchr(buf + vs, ' ', le - vs) != NULL;
            if (le - vs >= 4 && ieq_upper(buf + vs, "SIP/", 4) && !has_sp)
                FAIL(SP_E_BAD_VERSION, vs);
            FAIL(SP_E_BAD_FIRST_LINE, vs);
        }
        out[SP_S_V_S] = (int32_t)vs;
        out[SP_S_V_E] = (int32_t)le;
        out[SP_S_R_S] = out[SP_S_R_E] = (int32_t)le;
    }
    out[SP_S_FL_END] = (int32_t)(lf + 1);
    p = lf + 1;

    int32_t nh = 0;
    int64_t clen = -1;
    size_t cl_off = 0, hdr_end, body;
    for (;;) {
        if (p >= n)
            FAIL(SP_E_NO_HDR_END, n);
        unsigned char c = buf[p];
        if (c == '\n') {
            hdr_end = p;
            body = p + 1;
            break;
        }
        if (c == '\r') {
            if (p + 1 < n && buf[p + 1] == '\n') {
                hdr_end = p;
                body = p + 2;
                break;
            }
            FAIL(SP_E_BAD_EOL, p);
        }
        if (IS_WS(c))
            FAIL(SP_E_BAD_HDR_LINE, p);
        size_t ne = p;
        while (ne < n && TOK(buf[ne]))
            ne++;
        if (ne == p)
            FAIL(SP_E_BAD_HDR_NAME, p);
        q = ne;
        while (q < n && IS_WS(buf[q]))
            q++;
        if (q >= n || buf[q] != ':')
            FAIL(SP_E_BAD_HDR_NAME, q);
        q++;
        /* line end, following continuation lines (folding) */
        nl = q < n ? memchr(buf + q, '\n', n - q) : NULL;
        while (nl != NULL) {
            lf = (size_t)(nl - buf);
            if (lf + 1 < n && IS_WS(buf[lf + 1]))
                nl = memchr(buf + lf + 1, '\n', n - lf - 1);
            else
                break;
        }
        if (nl == NULL)
            FAIL(SP_E_NO_HDR_END, n);
        lf = (size_t)(nl - buf);
        size_t vs = q, ve = lf;
        while (vs < lf && IS_LWS(buf[vs]))
            vs++;
        while (ve > vs && IS_LWS(buf[ve - 1]))
            ve--;
        if (nh >= SP_MAX_HEADERS)
            FAIL(SP_E_TOO_MANY_HDRS, p);
        int32_t htype = sp_hdr_type((const char *)buf + p, ne - p);
        int32_t folded = (ve > vs && memchr(buf + vs, '\n', ve - vs) != NULL) ? 1 : 0;
        if (htype == SP_HDR_CONTENTLENGTH) {
            size_t d = vs;
            if (d == ve)
                FAIL(SP_E_BAD_CL, vs);
            for (size_t k = vs; k < ve; k++)
                if (!IS_DIGIT(buf[k]))
                    FAIL(SP_E_BAD_CL, vs);
            while (d < ve && buf[d] == '0')
                d++;
            if (ve - d > SP_MAX_CL_DIGITS)
                FAIL(SP_E_BAD_CL, vs);
            int64_t val = 0;
            for (; d < ve; d++)
                val = val * 10 + (buf[d] - '0');
            if (clen >= 0 && val != clen)
                FAIL(SP_E_MULTI_CL, p);
            clen = val;
            cl_off = vs;
        }
        int32_t *h = out + SP_FIXED + SP_HDR_STRIDE * nh;
        h[SP_H_TYPE] = htype;
        h[SP_H_FOLDED] = folded;
        h[SP_H_NS] = (int32_t)p;
        h[SP_H_NE] = (int32_t)ne;
        h[SP_H_VS] = (int32_t)vs;
        h[SP_H_VE] = (int32_t)ve;
        h[SP_H_END] = (int32_t)(lf + 1);
        nh++;
        p = lf + 1;
    }
    size_t msg_end = n;
    if (clen >= 0) {
        if ((int64_t)(n - body) < clen)
            FAIL(SP_E_SHORT_BODY, cl_off);
        msg_end = body + (size_t)clen;
    }
    out[SP_S_HDR_END] = (int32_t)hdr_end;
    out[SP_S_BODY] = (int32_t)body;
    out[SP_S_MSG_END] = (int32_t)msg_end;
    out[SP_S_CLEN] = (int32_t)clen;
    out[SP_S_NHDRS] = nh;
    fill_hot(buf, out, nh);
    return nh;
}
