/* The exact-sum workload, shared by the tests that need traffic whose end
 * state is known: EXACT_CLIENTS client threads push small integer-valued
 * gradients (SGD, lr 1) to a dense table split across the shards and to a
 * sparse one, with several requests in flight, alternating push and
 * pushpull. Every float sum is exact in any order, so after the load the
 * tables must equal the exact negated sums: no update lost or doubled. */
#ifndef SPARKPS_TESTS_EXACT_LOAD_H
#define SPARKPS_TESTS_EXACT_LOAD_H

#include <pthread.h>
#include <stdint.h>

#define EXACT_CLIENTS 3
#define EXACT_STEPS 150 /* per client: half pushes, half pushpulls */

typedef struct exact_client {
    const char *servers;
    int drop_every; /* the client drops every Nth reply; 0: none */
    int client;
    uint64_t retries;
    int failures;
} exact_client;

typedef struct exact_load {
    pthread_t thread[EXACT_CLIENTS];
    exact_client client[EXACT_CLIENTS];
} exact_load;

/* Starts the client threads against `servers` (job "exact"). */
void exact_load_start(exact_load *l, const char *servers, int drop_every);

/* Joins them and returns how many of their requests failed (the caller
 * asserts, once its own threads are stopped); *retries, unless NULL, gets
 * the retries the clients' libraries made. */
int exact_load_join(exact_load *l, uint64_t *retries);

/* Fails the test unless both tables hold the exact sums. */
void exact_load_check(const char *servers);

#endif
