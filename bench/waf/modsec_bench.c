/*
 * modsec_bench.c - the libmodsecurity 3 side of bench/waf/run.sh.
 *
 * Loads one configuration file (engine settings + CRS, written by
 * `cargo run --example bench_transactions -- write-peer-inputs DIR`) and runs each request
 * file through full transactions, the way a server connector drives the library:
 * connection, URI, headers (phase 1), body (phase 2), response headers (phase 3), response
 * body (phase 4, empty), logging (phase 5). After an intervention the server answers at once,
 * so only logging runs. Prints one line per request:
 *
 *     LABEL NAME MICROSECONDS_CPU_PER_TRANSACTION STATUS LOGGED_RULES
 *
 * CPU time is clock_gettime(CLOCK_PROCESS_CPUTIME_ID) around ITERATIONS transactions (after
 * ITERATIONS/10 warm-up ones); fewer (at least 20) when that would take more than about 2 s.
 *
 * usage: modsec_bench CONF LABEL ITERATIONS REQUEST_FILE...
 * request file: method line, URI line, "Name: value" header lines, an empty line, the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <modsecurity/intervention.h>

#define MAX_HEADERS 64

struct header {
    const unsigned char *name;
    size_t name_len;
    const unsigned char *value;
    size_t value_len;
};

struct request {
    char name[256];
    char *raw;
    char *method;
    char *uri;
    struct header headers[MAX_HEADERS];
    int n_headers;
    const unsigned char *body;
    size_t body_len;
};

static void die(const char *what, const char *detail) {
    fprintf(stderr, "modsec_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Splits off the next '\n'-terminated line of [*p, end); NUL-terminates it in place. */
static char *next_line(char **p, char *end) {
    char *start = *p;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    if (nl == NULL) {
        return NULL;
    }
    *nl = '\0';
    *p = nl + 1;
    return start;
}

static void load_request(const char *path, struct request *r) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        die("cannot open", path);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    r->raw = malloc((size_t)size + 1);
    if (r->raw == NULL || fread(r->raw, 1, (size_t)size, f) != (size_t)size) {
        die("cannot read", path);
    }
    fclose(f);
    r->raw[size] = '\0';

    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(r->name, sizeof r->name, "%s", base);
    char *dot = strrchr(r->name, '.');
    if (dot != NULL) {
        *dot = '\0';
    }

    char *p = r->raw, *end = r->raw + size;
    r->method = next_line(&p, end);
    r->uri = next_line(&p, end);
    if (r->method == NULL || r->uri == NULL) {
        die("malformed request file", path);
    }
    r->n_headers = 0;
    for (;;) {
        char *line = next_line(&p, end);
        if (line == NULL) {
            die("request file without an empty line after the headers", path);
        }
        if (*line == '\0') {
            break;
        }
        char *colon = strchr(line, ':');
        if (colon == NULL || r->n_headers == MAX_HEADERS) {
            die("bad header line", line);
        }
        char *value = colon + 1;
        while (*value == ' ') {
            value++;
        }
        struct header *h = &r->headers[r->n_headers++];
        h->name = (const unsigned char *)line;
        h->name_len = (size_t)(colon - line);
        h->value = (const unsigned char *)value;
        h->value_len = strlen(value);
    }
    r->body = (const unsigned char *)p;
    r->body_len = (size_t)(end - p);
}

/* Counts the rule messages the engine would write to the server log. */
static void log_cb(void *data, const void *msg) {
    (void)msg;
    if (data != NULL) {
        (*(int *)data)++;
    }
}

/* Returns the intervention status, or 0 when the transaction may go on. */
static int intervened(Transaction *tx) {
    ModSecurityIntervention it;
    memset(&it, 0, sizeof it);
    it.status = 200;
    int disruptive = msc_intervention(tx, &it);
    free(it.url);
    free(it.log);
    return disruptive ? it.status : 0;
}

/* One full transaction; returns the status the client gets. */
static int run_one(ModSecurity *ms, RulesSet *rules, const struct request *r, int *logged) {
    Transaction *tx = msc_new_transaction(ms, rules, logged);
    int status = 0;
    msc_process_connection(tx, "192.0.2.10", 51234, "192.0.2.1", 443);
    msc_process_uri(tx, r->uri, r->method, "1.1");
    for (int i = 0; i < r->n_headers; i++) {
        const struct header *h = &r->headers[i];
        msc_add_n_request_header(tx, h->name, h->name_len, h->value, h->value_len);
    }
    msc_process_request_headers(tx);
    status = intervened(tx);
    if (status == 0) {
        if (r->body_len > 0) {
            msc_append_request_body(tx, r->body, r->body_len);
        }
        msc_process_request_body(tx);
        status = intervened(tx);
    }
    if (status == 0) {
        msc_add_response_header(tx, (const unsigned char *)"Content-Type",
                                (const unsigned char *)"text/html; charset=utf-8");
        msc_add_response_header(tx, (const unsigned char *)"Content-Length",
                                (const unsigned char *)"0");
        msc_process_response_headers(tx, 200, "HTTP 1.1");
        status = intervened(tx);
    }
    if (status == 0) {
        msc_process_response_body(tx);
        status = intervened(tx);
    }
    msc_process_logging(tx);
    msc_transaction_cleanup(tx);
    return status == 0 ? 200 : status;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s CONF LABEL ITERATIONS REQUEST_FILE...\n", argv[0]);
        return 2;
    }
    const char *conf = argv[1];
    const char *label = argv[2];
    long iterations = strtol(argv[3], NULL, 10);
    if (iterations <= 0) {
        die("bad iteration count", argv[3]);
    }

    ModSecurity *ms = msc_init();
    msc_set_connector_info(ms, "rampart-bench/modsec_bench");
    msc_set_log_cb(ms, log_cb);
    RulesSet *rules = msc_create_rules_set();
    const char *error = NULL;
    double t0 = cpu_seconds();
    int n = msc_rules_add_file(rules, conf, &error);
    if (n < 0) {
        die("loading rules failed", error);
    }
    fprintf(stderr, "libmodsecurity: %s: %s: %d rules loaded in %.0f ms\n", label,
            msc_who_am_i(ms), n, (cpu_seconds() - t0) * 1000.0);

    for (int a = 4; a < argc; a++) {
        struct request r;
        load_request(argv[a], &r);
        int logged = 0;
        double first = cpu_seconds();
        int status = run_one(ms, rules, &r, &logged);
        first = cpu_seconds() - first;
        /* At most about 2 s of CPU per request (the 10 KiB JSON body is slow here). */
        long n = iterations;
        /* BENCH_EXACT: exactly ITERATIONS (for instruction counts under callgrind). */
        if (!getenv("BENCH_EXACT") && first > 0 && (double)n * first > 2.0) {
            n = (long)(2.0 / first);
            if (n < 20) {
                n = 20;
            }
        }
        int sink = 0;
        for (long i = 0; i < n / 10; i++) {
            run_one(ms, rules, &r, &sink);
        }
        double start = cpu_seconds();
        for (long i = 0; i < n; i++) {
            run_one(ms, rules, &r, &sink);
        }
        double us = (cpu_seconds() - start) * 1e6 / (double)n;
        printf("%s %s %.2f %d %d\n", label, r.name, us, status, logged);
        fflush(stdout);
        free(r.raw);
    }
    msc_rules_cleanup(rules);
    msc_cleanup(ms);
    return 0;
}
