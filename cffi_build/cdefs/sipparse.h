/* cdef surface of sipcore._csipparse: only what sipcore/msg/_cparse.py may see.
 * Constants (limits, scan layout, error codes, header type ids) are declared by
 * build_sipparse.py as `#define NAME ...` so their values come from the compiler. */

/* Scan one SIP message in buf[0:len) into out (SP_OUT_INTS int32 slots, layout in
 * sipcore/msg/scandefs.py). Returns the number of header lines (>= 0) or a negative
 * SP_E_* code with *err_off set to the byte offset of the defect. Never allocates,
 * never reads outside buf. */
int sp_scan(const char *buf, size_t len, int32_t *out, int32_t *err_off);

/* Type id of a header name (any case, compact forms included); 0 if unknown. */
int sp_hdr_type(const char *name, size_t len);
