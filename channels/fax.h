/*
 * fax.h - what the fax driver (channels/fax.c) shares beyond channel.h.
 */
#ifndef DENGON_FAX_H
#define DENGON_FAX_H

#include <stddef.h>

/*
 * The dial string for an E.164 number ("+81312345678"): "0" + the
 * national number inside country (the [relay] country_code), else intl
 * (the international prefix) + the number without "+".  Digits only.
 * 0, or -1 if number is not "+" and 6 to 15 digits, or out is too small.
 */
int fax_dial_string(const char *number, const char *country,
    const char *intl, char *out, size_t outlen);

#endif /* DENGON_FAX_H */
