/* hash.c - hashing: Kafka's murmur2 for partitioning, XXH3 for the rest.
 *
 * at_murmur2 reproduces the Java client's Utils.murmur2 bit for bit (the
 * length is taken as a 32-bit int, tail bytes are mixed little-endian), so
 * at_partition_of() puts a key in the same partition as Kafka's default
 * partitioner does. */
#include "at_core.h"

#include <xxhash.h>

/* Returns Kafka's murmur2 of data[0..n). Thread: any. */
uint32_t at_murmur2(const void *data, size_t n)
{
    const unsigned char *p = data;
    const uint32_t m = 0x5bd1e995;
    uint32_t len = (uint32_t)n;
    uint32_t h = 0x9747b28cU ^ len;
    size_t n4 = n / 4;
    for (size_t i = 0; i < n4; i++) {
        const unsigned char *q = p + 4 * i;
        uint32_t k =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *t = p + 4 * n4;
    switch (n % 4) {
    case 3:
        h ^= (uint32_t)t[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)t[1] << 8;
        /* fall through */
    case 1:
        h ^= t[0];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* Returns the partition in [0, partitions) of key, as Kafka's default
 * partitioner would. partitions must be >= 1. Thread: any. */
int at_partition_of(const void *key, size_t n, int partitions)
{
    AT_ASSERT(partitions > 0);
    return (int)((at_murmur2(key, n) & 0x7fffffffU) % (uint32_t)partitions);
}

/* Returns XXH3-64 of data[0..n) (seed 0). Thread: any. */
uint64_t at_hash64(const void *data, size_t n)
{
    return XXH3_64bits(data, n);
}

/* Stores XXH3-128 of data[0..n) with seed in out. Thread: any. */
void at_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2])
{
    XXH128_hash_t h = XXH3_128bits_withSeed(data, n, seed);
    out[0] = h.low64;
    out[1] = h.high64;
}
