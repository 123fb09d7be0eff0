/* test_kube_errors.c — the Kubernetes client's error decoding, paths and
 * retry classification (pure functions), then the transport behaviour we
 * own, over real loopback sockets: gzip, Retry-After, the response size
 * cap, connection reuse, stalled and stopped streams, credential refresh
 * (token file rotation, exec plugin cache and 401), the QPS limiter and the
 * client-go metrics. Peers: lib/httpd, and a raw socket server for a
 * stream that sends headers and then falls silent. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/httpd.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A ConfigMapList of 300 items (32978 bytes of JSON), gzip -9. */
static const unsigned char gz_list[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xad, 0xdd, 0x3b, 0x4f, 0x5c, 0x67,
    0x18, 0x45, 0xe1, 0xff, 0x32, 0x35, 0x96, 0xce, 0xde, 0xe7, 0x3b, 0x37, 0xb7, 0x69, 0x93, 0x36,
    0x4d, 0x94, 0x62, 0x84, 0x27, 0x16, 0x72, 0xb8, 0x08, 0x70, 0x8a, 0x20, 0xfe, 0x7b, 0xa0, 0x88,
    0x22, 0xa5, 0x5a, 0x16, 0xab, 0xc3, 0x60, 0x66, 0x77, 0x4b, 0x36, 0x3c, 0xf3, 0x9e, 0x97, 0xd3,
    0xf9, 0xe1, 0xe6, 0xd7, 0xcb, 0xe3, 0xd3, 0xcd, 0xfd, 0xdd, 0xe9, 0xf3, 0xe9, 0xaf, 0x9c, 0xae,
    0x4e, 0xdf, 0x6e, 0xee, 0xbe, 0xbc, 0x7d, 0xfc, 0xd3, 0xfd, 0xdd, 0x1f, 0x37, 0x5f, 0x7f, 0x39,
    0x3f, 0xfc, 0x7c, 0xf3, 0xf4, 0xfc, 0xf6, 0xe9, 0xdb, 0xcb, 0xf3, 0xf9, 0xcb, 0xf9, 0xf9, 0x7c,
    0xfa, 0xfc, 0x72, 0x7a, 0xbc, 0x3c, 0xdd, 0x7f, 0x7f, 0xbc, 0xbe, 0xfc, 0xf7, 0x9d, 0xa3, 0xa7,
    0xd7, 0xab, 0xd3, 0xcd, 0xf3, 0xe5, 0xf6, 0xe9, 0xf4, 0xf9, 0xb7, 0x17, 0xf0, 0xb2, 0xff, 0x7b,
    0xc9, 0xbb, 0xf3, 0xed, 0xe5, 0xed, 0xcb, 0xd7, 0xb7, 0x9f, 0xa6, 0x69, 0x7a, 0xfb, 0xda, 0xfb,
    0x9f, 0x9f, 0x1e, 0xce, 0xd7, 0xef, 0x9f, 0xfc, 0xfa, 0xf7, 0xfb, 0x8b, 0xff, 0xfb, 0x37, 0xbf,
    0xbd, 0xbf, 0xe2, 0xf9, 0xcf, 0xef, 0x97, 0x4f, 0xd3, 0xe9, 0xf5, 0xf5, 0xea, 0x83, 0x5b, 0x81,
    0x5b, 0x11, 0xb6, 0x0a, 0xb7, 0x2a, 0x6c, 0xcd, 0x70, 0x6b, 0x16, 0xb6, 0x06, 0xdc, 0x1a, 0xc2,
    0xd6, 0x02, 0xb7, 0x16, 0x61, 0x6b, 0x85, 0x5b, 0xab, 0xb0, 0xb5, 0xc1, 0xad, 0x4d, 0xd8, 0xda,
    0xe1, 0xd6, 0x2e, 0x6c, 0x1d, 0x70, 0xeb, 0xf8, 0xf8, 0x56, 0x68, 0x37, 0x22, 0x84, 0x23, 0x38,
    0x1c, 0x42, 0x39, 0x42, 0xcb, 0x11, 0x21, 0x1d, 0xa1, 0xe9, 0x88, 0xd0, 0x8e, 0xd0, 0x76, 0x44,
    0x88, 0x47, 0x68, 0x3c, 0x22, 0xd4, 0x23, 0xb4, 0x1e, 0x11, 0xf2, 0x11, 0x9a, 0x8f, 0x08, 0xfd,
    0x08, 0xed, 0x47, 0x84, 0x80, 0x84, 0x06, 0x24, 0x42, 0x41, 0x4a, 0x0b, 0x52, 0xa1, 0x20, 0xa5,
    0x05, 0xa9, 0x50, 0x90, 0xe2, 0x7f, 0x7b, 0x08, 0x05, 0x29, 0x2d, 0x48, 0x85, 0x82, 0x94, 0x16,
    0xa4, 0x42, 0x41, 0x4a, 0x0b, 0x52, 0xa1, 0x20, 0xa5, 0x05, 0xa9, 0x50, 0x90, 0xd2, 0x82, 0x54,
    0x28, 0x48, 0x69, 0x41, 0x2a, 0x14, 0xa4, 0xb4, 0x20, 0x15, 0x0a, 0x32, 0xd3, 0x82, 0xcc, 0x42,
    0x41, 0x66, 0x5a, 0x90, 0x59, 0x28, 0xc8, 0x4c, 0x0b, 0x32, 0x0b, 0x05, 0x99, 0xf1, 0x7f, 0x5f,
    0x84, 0x82, 0xcc, 0xb4, 0x20, 0xb3, 0x50, 0x90, 0x99, 0x16, 0x64, 0x16, 0x0a, 0x32, 0xd3, 0x82,
    0xcc, 0x42, 0x41, 0x66, 0x5a, 0x90, 0x59, 0x28, 0xc8, 0x4c, 0x0b, 0x32, 0x0b, 0x05, 0x99, 0x69,
    0x41, 0x66, 0xa1, 0x20, 0x83, 0x16, 0x64, 0x08, 0x05, 0x19, 0xb4, 0x20, 0x43, 0x28, 0xc8, 0xa0,
    0x05, 0x19, 0x42, 0x41, 0x06, 0x2d, 0xc8, 0x10, 0x0a, 0x32, 0xf0, 0x4f, 0x40, 0x84, 0x82, 0x0c,
    0x5a, 0x90, 0x21, 0x14, 0x64, 0xd0, 0x82, 0x0c, 0xa1, 0x20, 0x83, 0x16, 0x64, 0x08, 0x05, 0x19,
    0xb4, 0x20, 0x43, 0x28, 0xc8, 0xa0, 0x05, 0x19, 0x42, 0x41, 0x16, 0x5a, 0x90, 0x45, 0x28, 0xc8,
    0x42, 0x0b, 0xb2, 0x08, 0x05, 0x59, 0x68, 0x41, 0x16, 0xa1, 0x20, 0x0b, 0x2d, 0xc8, 0x22, 0x14,
    0x64, 0xa1, 0x05, 0x59, 0x84, 0x82, 0x2c, 0xf8, 0x87, 0xa8, 0x42, 0x41, 0x16, 0x5a, 0x90, 0x45,
    0x28, 0xc8, 0x42, 0x0b, 0xb2, 0x08, 0x05, 0x59, 0x68, 0x41, 0x16, 0xa1, 0x20, 0x0b, 0x2d, 0xc8,
    0x22, 0x14, 0x64, 0xa5, 0x05, 0x59, 0x85, 0x82, 0xac, 0xb4, 0x20, 0xab, 0x50, 0x90, 0x95, 0x16,
    0x64, 0x15, 0x0a, 0xb2, 0xd2, 0x82, 0xac, 0x42, 0x41, 0x56, 0x5a, 0x90, 0x55, 0x28, 0xc8, 0x4a,
    0x0b, 0xb2, 0x0a, 0x05, 0x59, 0xf1, 0xef, 0x61, 0x84, 0x82, 0xac, 0xb4, 0x20, 0xab, 0x50, 0x90,
    0x95, 0x16, 0x64, 0x15, 0x0a, 0xb2, 0xd2, 0x82, 0xac, 0x42, 0x41, 0x36, 0x5a, 0x90, 0x4d, 0x28,
    0xc8, 0x46, 0x0b, 0xb2, 0x09, 0x05, 0xd9, 0x68, 0x41, 0x36, 0xa1, 0x20, 0x1b, 0x2d, 0xc8, 0x26,
    0x14, 0x64, 0xa3, 0x05, 0xd9, 0x84, 0x82, 0x6c, 0xb4, 0x20, 0x9b, 0x50, 0x90, 0x8d, 0x16, 0x64,
    0x13, 0x0a, 0xb2, 0xe1, 0x5f, 0xe5, 0x0a, 0x05, 0xd9, 0x68, 0x41, 0x36, 0xa1, 0x20, 0x1b, 0x2d,
    0xc8, 0x26, 0x14, 0x64, 0xa7, 0x05, 0xd9, 0x85, 0x82, 0xec, 0xb4, 0x20, 0xbb, 0x50, 0x90, 0x9d,
    0x16, 0x64, 0x17, 0x0a, 0xb2, 0xd3, 0x82, 0xec, 0x42, 0x41, 0x76, 0x5a, 0x90, 0x5d, 0x28, 0xc8,
    0x4e, 0x0b, 0xb2, 0x0b, 0x05, 0xd9, 0x69, 0x41, 0x76, 0xa1, 0x20, 0x3b, 0x2d, 0xc8, 0x2e, 0x14,
    0x64, 0xc7, 0x1a, 0x44, 0x28, 0xc8, 0x4e, 0x0b, 0xb2, 0x0b, 0x05, 0x39, 0x68, 0x41, 0x0e, 0xa1,
    0x20, 0x07, 0x2d, 0xc8, 0x21, 0x14, 0xe4, 0xa0, 0x05, 0x39, 0x84, 0x82, 0x1c, 0xb4, 0x20, 0x87,
    0x50, 0x90, 0x83, 0x16, 0xe4, 0x10, 0x0a, 0x72, 0xd0, 0x82, 0x1c, 0x42, 0x41, 0x0e, 0x5a, 0x90,
    0x43, 0x28, 0xc8, 0x41, 0x0b, 0x72, 0x08, 0x05, 0x39, 0x68, 0x41, 0x0e, 0xa1, 0x20, 0x07, 0x06,
    0x65, 0x1f, 0x2f, 0x48, 0x26, 0x2e, 0xca, 0x26, 0x61, 0x0d, 0x93, 0xb2, 0x29, 0xc2, 0x1a, 0x36,
    0x65, 0x53, 0x85, 0x35, 0x8c, 0xca, 0xa6, 0x59, 0x58, 0xc3, 0xaa, 0x6c, 0x1a, 0xc2, 0x1a, 0x66,
    0x65, 0xd3, 0x22, 0xac, 0x61, 0x57, 0x36, 0xad, 0xc2, 0x1a, 0x86, 0x65, 0xd3, 0x26, 0xac, 0x61,
    0x59, 0x36, 0xed, 0xc2, 0x1a, 0xa6, 0x65, 0x93, 0xd0, 0x12, 0xae, 0x53, 0x05, 0x9e, 0x9a, 0x1f,
    0xe0, 0xa9, 0x42, 0x4b, 0xb8, 0x4f, 0x15, 0x80, 0x6a, 0x38, 0x50, 0x15, 0x84, 0x6a, 0xb8, 0x50,
    0x15, 0x88, 0x6a, 0x38, 0x51, 0x15, 0x8c, 0x6a, 0xb8, 0x51, 0x15, 0x90, 0x6a, 0x38, 0x52, 0x15,
    0x94, 0x6a, 0xb8, 0x52, 0x15, 0x98, 0x6a, 0x38, 0x53, 0x15, 0x9c, 0x6a, 0xb0, 0x53, 0x8d, 0x00,
    0x55, 0x83, 0xa1, 0x6a, 0x04, 0xa9, 0x9a, 0x72, 0xeb, 0x2e, 0xb4, 0x04, 0x53, 0xd5, 0x08, 0x56,
    0x35, 0xd8, 0xaa, 0x46, 0xc0, 0xaa, 0xc1, 0x58, 0x35, 0x82, 0x56, 0x0d, 0xd6, 0xaa, 0x11, 0xb8,
    0x6a, 0x30, 0x57, 0x8d, 0xe0, 0x55, 0x83, 0xbd, 0x6a, 0x04, 0xb0, 0x1a, 0x0c, 0x56, 0x23, 0x88,
    0xd5, 0x60, 0xb1, 0x1a, 0x81, 0xac, 0x06, 0x93, 0xd5, 0x08, 0x66, 0x35, 0xd8, 0xac, 0x46, 0x40,
    0xab, 0x99, 0xf9, 0x1b, 0x67, 0x84, 0x96, 0x60, 0xb5, 0x1a, 0x81, 0xad, 0x06, 0xb3, 0xd5, 0x08,
    0x6e, 0x35, 0xd8, 0xad, 0x46, 0x80, 0xab, 0xc1, 0x70, 0x35, 0x82, 0x5c, 0x0d, 0x96, 0xab, 0x11,
    0xe8, 0x6a, 0x30, 0x5d, 0x8d, 0x60, 0x57, 0x83, 0xed, 0x6a, 0x04, 0xbc, 0x1a, 0x8c, 0x57, 0x23,
    0xe8, 0xd5, 0x60, 0xbd, 0x1a, 0x81, 0xaf, 0x06, 0xf3, 0xd5, 0x08, 0x7e, 0x35, 0x83, 0xbf, 0x0b,
    0x4f, 0x68, 0x09, 0x06, 0xac, 0x11, 0x04, 0x6b, 0xb0, 0x60, 0x8d, 0x40, 0x58, 0x83, 0x09, 0x6b,
    0x04, 0xc3, 0x1a, 0x6c, 0x58, 0x23, 0x20, 0xd6, 0x60, 0xc4, 0x1a, 0x41, 0xb1, 0x06, 0x2b, 0xd6,
    0x08, 0x8c, 0x35, 0x98, 0xb1, 0x46, 0x70, 0xac, 0xc1, 0x8e, 0x35, 0x02, 0x64, 0x0d, 0x86, 0xac,
    0x11, 0x24, 0x6b, 0xb0, 0x64, 0x8d, 0x40, 0x59, 0xb3, 0xf0, 0xb7, 0xf4, 0x0a, 0x2d, 0xc1, 0x96,
    0x35, 0x02, 0x66, 0x0d, 0xc6, 0xac, 0x11, 0x34, 0x6b, 0xb0, 0x66, 0x8d, 0xc0, 0x59, 0x83, 0x39,
    0x6b, 0x04, 0xcf, 0x1a, 0xec, 0x59, 0x23, 0x80, 0xd6, 0x60, 0xd0, 0x1a, 0x41, 0xb4, 0x06, 0x8b,
    0xd6, 0x08, 0xa4, 0x35, 0x98, 0xb4, 0x46, 0x30, 0xad, 0xc1, 0xa6, 0x35, 0x02, 0x6a, 0x0d, 0x46,
    0xad, 0x11, 0x54, 0x6b, 0x56, 0x7e, 0x1f, 0x40, 0x68, 0x09, 0x66, 0xad, 0x11, 0x5c, 0x6b, 0xb0,
    0x6b, 0x8d, 0x00, 0x5b, 0x83, 0x61, 0x6b, 0x04, 0xd9, 0x1a, 0x2c, 0x5b, 0x23, 0xd0, 0xd6, 0x60,
    0xda, 0x1a, 0xc1, 0xb6, 0x06, 0xdb, 0xd6, 0x08, 0xb8, 0x35, 0x18, 0xb7, 0x46, 0xd0, 0xad, 0xc1,
    0xba, 0x35, 0x02, 0x6f, 0x0d, 0xe6, 0xad, 0x11, 0x7c, 0x6b, 0xb0, 0x6f, 0x8d, 0x00, 0x5c, 0xb3,
    0xf1, 0x63, 0x23, 0x42, 0x4b, 0xb0, 0x70, 0x8d, 0x40, 0x5c, 0x83, 0x89, 0x6b, 0x04, 0xe3, 0x1a,
    0x6c, 0x5c, 0x23, 0x20, 0xd7, 0x60, 0xe4, 0x1a, 0x41, 0xb9, 0x06, 0x2b, 0xd7, 0x08, 0xcc, 0x35,
    0x98, 0xb9, 0x46, 0x70, 0xae, 0xc1, 0xce, 0x35, 0x02, 0x74, 0x0d, 0x86, 0xae, 0x11, 0xa4, 0x6b,
    0xb0, 0x74, 0x8d, 0x40, 0x5d, 0x83, 0xa9, 0x6b, 0x04, 0xeb, 0x9a, 0x9d, 0x5f, 0x2e, 0x12, 0x5a,
    0x82, 0xb1, 0x6b, 0x04, 0xed, 0x1a, 0xac, 0x5d, 0x23, 0x70, 0xd7, 0x60, 0xee, 0x1a, 0xc1, 0xbb,
    0x06, 0x7b, 0xd7, 0x08, 0xe0, 0x35, 0x18, 0xbc, 0x46, 0x10, 0xaf, 0xc1, 0xe2, 0x35, 0x02, 0x79,
    0x0d, 0x26, 0xaf, 0x11, 0xcc, 0x6b, 0xb0, 0x79, 0x8d, 0x80, 0x5e, 0x83, 0xd1, 0x6b, 0x04, 0xf5,
    0x1a, 0xac, 0x5e, 0x23, 0xb0, 0xd7, 0x1c, 0xfc, 0x0c, 0xda, 0xc7, 0x5b, 0xd2, 0x89, 0xdf, 0x41,
    0x9b, 0x84, 0x35, 0x7c, 0x08, 0x4d, 0x70, 0xaf, 0xe5, 0x57, 0x58, 0x05, 0xf7, 0x5a, 0xec, 0x5e,
    0x2b, 0xb8, 0xd7, 0x62, 0xf7, 0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd,
    0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1, 0x7b,
    0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0xda, 0xf0, 0xa3, 0x8a, 0x42, 0x4b, 0xb0, 0x7b,
    0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7,
    0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee,
    0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xf9, 0x7d, 0x56, 0xc1, 0xbd, 0x96, 0x1f,
    0x68, 0x15, 0xdc, 0x6b, 0x7f, 0xe0, 0x42, 0xab, 0xd0, 0x12, 0x7e, 0xa2, 0x55, 0x70, 0xaf, 0xe5,
    0x37, 0x5a, 0x05, 0xf7, 0x5a, 0x7e, 0xa4, 0x55, 0x70, 0xaf, 0xe5, 0x57, 0x5a, 0x05, 0xf7, 0x5a,
    0x7e, 0xa6, 0x55, 0x70, 0xaf, 0xe5, 0x77, 0x5a, 0x05, 0xf7, 0x5a, 0x7e, 0xa8, 0x55, 0x70, 0xaf,
    0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1, 0x7b, 0xad, 0xe0, 0x5e,
    0x3b, 0xf3, 0x73, 0xcf, 0x42, 0x4b, 0xb0, 0x7b, 0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7,
    0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7, 0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee,
    0xb5, 0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc,
    0x6b, 0xb1, 0x7b, 0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0xda, 0xc1, 0x6f, 0xc7, 0x0b,
    0x2d, 0xc1, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1, 0x7b, 0xad, 0xe0,
    0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7, 0x5a, 0xc1,
    0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82,
    0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0x17, 0xfe, 0x20, 0x0a, 0xa1, 0x25, 0xd8, 0xbd, 0x56,
    0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1, 0x7b, 0xad,
    0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7, 0x5a,
    0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5,
    0x82, 0x7b, 0xed, 0xca, 0x9f, 0x6a, 0x23, 0xb4, 0x04, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd,
    0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1, 0x7b,
    0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7,
    0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xdd, 0xf8,
    0x23, 0xb2, 0x84, 0x96, 0x60, 0xf7, 0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0xd8,
    0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b, 0xb1,
    0x7b, 0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62,
    0xf7, 0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5, 0x3b, 0x7f, 0xde, 0x9e, 0xd0, 0x12,
    0xec, 0x5e, 0x2b, 0xb8, 0xd7, 0x62, 0xf7, 0x5a, 0xc1, 0xbd, 0x16, 0xbb, 0xd7, 0x0a, 0xee, 0xb5,
    0xd8, 0xbd, 0x56, 0x70, 0xaf, 0xc5, 0xee, 0xb5, 0x82, 0x7b, 0x2d, 0x76, 0xaf, 0x15, 0xdc, 0x6b,
    0xb1, 0x7b, 0xad, 0xe0, 0x5e, 0x8b, 0xdd, 0x6b, 0x05, 0xf7, 0x5a, 0xec, 0x5e, 0x2b, 0xb8, 0xd7,
    0x62, 0xf7, 0x5a, 0xc1, 0xbd, 0xf6, 0xe0, 0x0f, 0xef, 0x7c, 0x6f, 0xc9, 0xef, 0xaf, 0xff, 0x00,
    0x30, 0x85, 0xd6, 0x7f, 0xd2, 0x80, 0x00, 0x00,
};

/* ---------------------------------------------------------------- decoding */

typedef struct decode_case {
    int status;
    const char *body;
    csl_kube_code code;
    const char *reason;
    const char *in_message;
    int retry_after;
    bool retryable;
} decode_case;

static const decode_case decode_cases[] = {
    {404,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
     "\"message\":\"configmaps \\\"x\\\" not found\",\"reason\":\"NotFound\","
     "\"details\":{\"name\":\"x\",\"kind\":\"configmaps\"},\"code\":404}",
     CSL_KUBE_NOT_FOUND, "NotFound", "configmaps \"x\" not found", 0, false},
    {409,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
     "\"cloudservers.cloudserver.dev \\\"a\\\" already exists\",\"reason\":\"AlreadyExists\","
     "\"code\":409}",
     CSL_KUBE_ALREADY_EXISTS, "AlreadyExists", "already exists", 0, false},
    {409,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Operation "
     "cannot be fulfilled on configmaps \\\"a\\\": the object has been modified; please apply "
     "your changes to the latest version and try again\",\"reason\":\"Conflict\",\"code\":409}",
     CSL_KUBE_CONFLICT, "Conflict", "the object has been modified", 0, false},
    {410,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"too old "
     "resource version: 5 (1234)\",\"reason\":\"Expired\",\"code\":410}",
     CSL_KUBE_GONE, "Expired", "too old resource version", 0, false},
    {410, "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"gone\",\"code\":410}",
     CSL_KUBE_GONE, "Gone", "gone", 0, false},
    {403,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
     "\"configmaps is forbidden: User \\\"bob\\\" cannot list resource\",\"reason\":"
     "\"Forbidden\",\"details\":{\"kind\":\"configmaps\"},\"code\":403}",
     CSL_KUBE_FORBIDDEN, "Forbidden", "cannot list", 0, false},
    {401,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
     "\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}",
     CSL_KUBE_UNAUTHORIZED, "Unauthorized", "Unauthorized", 0, false},
    {429,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Too many "
     "requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":"
     "{\"retryAfterSeconds\":3},\"code\":429}",
     CSL_KUBE_TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests", 3, true},
    {504,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Timeout: "
     "request did not complete within requested timeout\",\"reason\":\"Timeout\",\"details\":{},"
     "\"code\":504}",
     CSL_KUBE_TIMEOUT, "Timeout", "did not complete", 0, true},
    {500,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"The "
     "server cannot complete the requested operation at this time\",\"reason\":"
     "\"ServerTimeout\",\"details\":{\"retryAfterSeconds\":2},\"code\":500}",
     CSL_KUBE_TIMEOUT, "ServerTimeout", "at this time", 2, true},
    {500,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"Internal "
     "error occurred: etcdserver: leader changed\",\"reason\":\"InternalError\",\"code\":500}",
     CSL_KUBE_SERVER_ERROR, "InternalError", "leader changed", 0, true},
    {503, "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"unavailable\"}",
     CSL_KUBE_SERVER_ERROR, "ServerError", "unavailable", 0, true},
    {400,
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"the "
     "server rejected our request\",\"reason\":\"BadRequest\",\"code\":400}",
     CSL_KUBE_BAD_REQUEST, "BadRequest", "rejected our request", 0, false},
    {409, "{\"kind\":\"Status\",\"message\":\"no reason given\",\"code\":409}", CSL_KUBE_CONFLICT,
     "Conflict", "no reason given", 0, false},
    {502, "<html><body><h1>502 Bad Gateway</h1>\n</body></html>", CSL_KUBE_SERVER_ERROR,
     "ServerError", "502 Bad Gateway", 0, true},
    {503, "", CSL_KUBE_SERVER_ERROR, "ServerError", "empty body", 0, true},
    {400, "{\"error\":{\"code\":\"Nope\",\"message\":\"not a Status\"}}", CSL_KUBE_BAD_REQUEST,
     "BadRequest", "not a Status", 0, false},
    {418, "teapot", CSL_KUBE_OTHER, "", "teapot", 0, false},
    {422, "{\"kind\":\"Status\",\"message\":[1,2],\"reason\":7}", CSL_KUBE_INVALID, "Invalid",
     "HTTP 422", 0, false},
};

static void test_decode_table(void)
{
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const decode_case *c = &decode_cases[i];
        csl_kube_error e;
        memset(&e, 0x5a, sizeof e); /* decode must not rely on a zeroed err */
        csl_kube_error_decode(c->status, c->body, strlen(c->body), &e);
        if (e.code != c->code || strcmp(e.reason, c->reason) != 0 ||
            !strstr(e.message, c->in_message) || e.retry_after_s != c->retry_after ||
            csl_kube_error_retryable(&e) != c->retryable || e.status != c->status)
            fprintf(stderr, "\ncase %zu: code %s reason \"%s\" message \"%s\" retry %d\n", i,
                    csl_kube_code_name(e.code), e.reason, e.message, e.retry_after_s);
        CU_ASSERT_EQUAL(e.code, c->code);
        CU_ASSERT_STRING_EQUAL(e.reason, c->reason);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.message, c->in_message));
        CU_ASSERT_EQUAL(e.retry_after_s, c->retry_after);
        CU_ASSERT_EQUAL(csl_kube_error_retryable(&e), c->retryable);
        CU_ASSERT_EQUAL(e.status, c->status);
        CU_ASSERT_EQUAL(e.ncauses, 0);
    }
}

static void test_decode_invalid_causes(void)
{
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"CloudServer.cloudserver.dev \\\"bad\\\" is invalid: spec.cpu: Invalid "
        "value: 0: spec.cpu in body should be greater than or equal to 1\",\"reason\":"
        "\"Invalid\",\"details\":{\"name\":\"bad\",\"group\":\"cloudserver.dev\",\"kind\":"
        "\"CloudServer\",\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid "
        "value: 0: spec.cpu in body should be greater than or equal to 1\",\"field\":"
        "\"spec.cpu\"},{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\","
        "\"field\":\"spec.zone\"},\"junk\",{\"message\":\"no field\"}]},\"code\":422}";
    csl_kube_error e;
    csl_kube_error_decode(422, body, strlen(body), &e);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_INVALID);
    CU_ASSERT_STRING_EQUAL(e.reason, "Invalid");
    CU_ASSERT_EQUAL(e.ncauses, 3); /* "junk" is skipped, the field-less cause kept */
    CU_ASSERT_STRING_EQUAL(e.causes[0].field, "spec.cpu");
    CU_ASSERT_STRING_EQUAL(e.causes[0].reason, "FieldValueInvalid");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.causes[0].message, "greater than or equal to 1"));
    CU_ASSERT_STRING_EQUAL(e.causes[1].field, "spec.zone");
    CU_ASSERT_STRING_EQUAL(e.causes[1].reason, "FieldValueRequired");
    CU_ASSERT_STRING_EQUAL(e.causes[2].field, "");
    CU_ASSERT_STRING_EQUAL(e.causes[2].message, "no field");
    CU_ASSERT_FALSE(csl_kube_error_retryable(&e));

    /* more causes than we keep, and fields longer than the slots */
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"code\":422,\"details\":"
                     "{\"causes\":[");
    for (int i = 0; i < 20; i++) {
        csl_buf_printf(&b, "%s{\"field\":\"spec.f%d.", i ? "," : "", i);
        for (int j = 0; j < 300; j++) csl_buf_putc(&b, 'x');
        csl_buf_puts(&b, "\",\"reason\":\"R\",\"message\":\"");
        for (int j = 0; j < 1000; j++) csl_buf_putc(&b, 'm');
        csl_buf_puts(&b, "\"}");
    }
    csl_buf_puts(&b, "]}}");
    csl_kube_error_decode(422, b.data, b.len, &e);
    CU_ASSERT_EQUAL(e.ncauses, CSL_KUBE_MAX_CAUSES);
    CU_ASSERT_EQUAL(strlen(e.causes[7].field), sizeof e.causes[7].field - 1);
    CU_ASSERT_EQUAL(strncmp(e.causes[7].field, "spec.f7.xx", 10), 0);
    CU_ASSERT_EQUAL(strlen(e.causes[7].message), sizeof e.causes[7].message - 1);
    CU_ASSERT_STRING_EQUAL(e.message, "HTTP 422 Invalid");
    csl_buf_free(&b);
}

static void test_decode_huge_and_odd(void)
{
    size_t n = 4 * 1024 * 1024;
    char *big = malloc(n);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', n);
    memcpy(big, "{\"kind\":\"Status\",\"message\":\"", 28);
    csl_kube_error e;
    csl_kube_error_decode(500, big, n, &e);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_SERVER_ERROR);
    CU_ASSERT(strlen(e.message) < sizeof e.message);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "\xe2\x80\xa6")); /* cut, and says so */
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "HTTP 500: {\"kind\""));

    /* control bytes and NULs never reach the message raw */
    const char bin[] = "a\0b\x01\x1b[31mc\r\nd";
    csl_kube_error_decode(500, bin, sizeof bin - 1, &e);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_SERVER_ERROR);
    for (const char *p = e.message; *p; p++) CU_ASSERT((unsigned char)*p >= 0x20);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "a.b..[31mc"));

    /* a huge message inside a real Status is cut at the slot */
    memset(big, 'y', n);
    const char *pre = "{\"kind\":\"Status\",\"reason\":\"InternalError\",\"message\":\"";
    memcpy(big, pre, strlen(pre));
    memcpy(big + 100000, "\"}", 2);
    csl_kube_error_decode(500, big, 100002, &e);
    CU_ASSERT_STRING_EQUAL(e.reason, "InternalError");
    CU_ASSERT_EQUAL(strlen(e.message), sizeof e.message - 1);
    free(big);

    /* NULL body, zero length, status 0 from a Status' own code */
    csl_kube_error_decode(404, NULL, 0, &e);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    const char *own = "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}";
    csl_kube_error_decode(0, own, strlen(own), &e);
    CU_ASSERT_EQUAL(e.status, 404);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    csl_kube_error_decode(200, "{}", 2, &e);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_OK);
    csl_kube_error_decode(404, "{}", 2, NULL); /* NULL err is allowed */
}

static void test_code_names_and_retryable(void)
{
    CU_ASSERT_STRING_EQUAL(csl_kube_code_name(CSL_KUBE_OK), "OK");
    CU_ASSERT_STRING_EQUAL(csl_kube_code_name(CSL_KUBE_NOT_FOUND), "NotFound");
    CU_ASSERT_STRING_EQUAL(csl_kube_code_name(CSL_KUBE_TOO_MANY_REQUESTS), "TooManyRequests");
    CU_ASSERT_STRING_EQUAL(csl_kube_code_name(CSL_KUBE_OTHER), "Other");
    CU_ASSERT_STRING_EQUAL(csl_kube_code_name((csl_kube_code)99), "Unknown");
    static const struct {
        csl_kube_code c;
        bool r;
    } t[] = {
        {CSL_KUBE_OK, false},
        {CSL_KUBE_NOT_FOUND, false},
        {CSL_KUBE_ALREADY_EXISTS, false},
        {CSL_KUBE_CONFLICT, false},
        {CSL_KUBE_GONE, false},
        {CSL_KUBE_INVALID, false},
        {CSL_KUBE_BAD_REQUEST, false},
        {CSL_KUBE_UNAUTHORIZED, false},
        {CSL_KUBE_FORBIDDEN, false},
        {CSL_KUBE_TOO_MANY_REQUESTS, true},
        {CSL_KUBE_TIMEOUT, true},
        {CSL_KUBE_SERVER_ERROR, true},
        {CSL_KUBE_TRANSPORT, true},
        {CSL_KUBE_DECODE, false},
        {CSL_KUBE_CONFIG, false},
        {CSL_KUBE_OTHER, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        csl_kube_error e = {.code = t[i].c};
        CU_ASSERT_EQUAL(csl_kube_error_retryable(&e), t[i].r);
    }
    CU_ASSERT_FALSE(csl_kube_error_retryable(NULL));
}

/* ---------------------------------------------------------------- paths */

static void check_path(const csl_kube_resource *r, const char *ns, const char *name,
                       const char *sub, const char *want)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "x"); /* appends, never resets */
    csl_kube_path(&b, r, ns, name, sub);
    if (strcmp(csl_buf_str(&b) + 1, want) != 0)
        fprintf(stderr, "\npath: got %s want %s\n", csl_buf_str(&b) + 1, want);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b) + 1, want);
    csl_buf_free(&b);
}

static void test_paths(void)
{
    csl_kube_resource cm = {"", "v1", "configmaps", true};
    csl_kube_resource nsr = {NULL, "v1", "namespaces", false};
    csl_kube_resource cs = {"cloudserver.dev", "v1", "cloudservers", true};
    csl_kube_resource crd = {"apiextensions.k8s.io", "v1", "customresourcedefinitions", false};
    check_path(&cm, "default", "x", NULL, "/api/v1/namespaces/default/configmaps/x");
    check_path(&cm, "default", NULL, NULL, "/api/v1/namespaces/default/configmaps");
    check_path(&cm, NULL, NULL, NULL, "/api/v1/configmaps");
    check_path(&cm, "", NULL, NULL, "/api/v1/configmaps");
    check_path(&nsr, "ignored", "team-a", NULL, "/api/v1/namespaces/team-a");
    check_path(&nsr, NULL, "team-a", "finalize", "/api/v1/namespaces/team-a/finalize");
    check_path(&cs, "a", NULL, NULL, "/apis/cloudserver.dev/v1/namespaces/a/cloudservers");
    check_path(&cs, "a", "b", "status",
               "/apis/cloudserver.dev/v1/namespaces/a/cloudservers/b/status");
    check_path(&cs, "a", "b", "scale",
               "/apis/cloudserver.dev/v1/namespaces/a/cloudservers/b/scale");
    check_path(&cs, NULL, NULL, "status", "/apis/cloudserver.dev/v1/cloudservers");
    check_path(
        &crd, "ns", "cloudservers.cloudserver.dev", NULL,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/cloudservers.cloudserver.dev");
    check_path(&cm, "n s", "a b/c?d%e#f&g=h", NULL,
               "/api/v1/namespaces/n%20s/configmaps/a%20b%2Fc%3Fd%25e%23f%26g%3Dh");
    check_path(&cm, "ns", "caf\xc3\xa9~_-.x", NULL,
               "/api/v1/namespaces/ns/configmaps/caf%C3%A9~_-.x");
}

static void test_obj_helpers(void)
{
    cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"uid\":\"u-1\","
                           "\"resourceVersion\":\"42\"}}");
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_name(o), "a");
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_namespace(o), "n");
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_uid(o), "u-1");
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_rv(o), "42");
    char key[64];
    csl_kube_obj_key(o, key, sizeof key);
    CU_ASSERT_STRING_EQUAL(key, "n/a");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(o, "metadata"), "namespace");
    csl_kube_obj_key(o, key, sizeof key);
    CU_ASSERT_STRING_EQUAL(key, "a");
    cJSON_Delete(o);
    o = cJSON_Parse("{\"metadata\":{\"name\":5}}");
    CU_ASSERT_PTR_NULL(csl_kube_obj_name(o));
    CU_ASSERT_PTR_NULL(csl_kube_obj_rv(NULL));
    csl_kube_obj_key(o, key, sizeof key);
    CU_ASSERT_STRING_EQUAL(key, "");
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------- loopback peer */

static csl_httpd *srv;
static char base[64];
static char tmpdir[128];
static FILE *log_file;
static pthread_mutex_t peer_mu = PTHREAD_MUTEX_INITIALIZER;
static char accepted_prefix[64]; /* bearer tokens the auth route takes */
static atomic_int gone_once;     /* list pages: answer 410 to the next continue */

static void status_reply(csl_http_req *r, int code, const char *reason, const char *msg)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "kind", "Status");
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddStringToObject(s, "status", "Failure");
    cJSON_AddStringToObject(s, "message", msg);
    cJSON_AddStringToObject(s, "reason", reason);
    cJSON_AddNumberToObject(s, "code", code);
    csl_http_respond_json(r, code, s);
    cJSON_Delete(s);
}

static void h_list_gz(csl_http_req *r, void *d)
{
    const char *ae = csl_http_header(r, "Accept-Encoding");
    if (!ae || !strstr(ae, "gzip")) {
        status_reply(r, 400, "BadRequest", "no gzip in Accept-Encoding");
        return;
    }
    csl_http_set_header(r, "Content-Encoding", "gzip");
    csl_http_respond(r, 200, "application/json", gz_list, sizeof gz_list);
}

static void h_cm(csl_http_req *r, void *d)
{
    const char *name = csl_http_param(r, "name");
    if (strcmp(name, "rl") == 0) {
        csl_http_set_header(r, "Retry-After", "7");
        status_reply(r, 429, "TooManyRequests", "slow down");
    } else if (strcmp(name, "rl-date") == 0) {
        char date[64];
        time_t t = time(NULL) + 30;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        csl_http_set_header(r, "Retry-After", date);
        status_reply(r, 429, "TooManyRequests", "slow down");
    } else if (strcmp(name, "big") == 0) {
        size_t n = 2 * 1024 * 1024;
        char *b = malloc(n);
        memset(b, 'a', n);
        memcpy(b, "{\"data\":{\"x\":\"", 14);
        memcpy(b + n - 3, "\"}}", 3);
        csl_http_respond(r, 200, "application/json", b, n);
        free(b);
    } else if (strcmp(name, "hang") == 0) {
        csl_http_suspend(r, -1);
    } else if (strcmp(name, "gone") == 0) {
        status_reply(r, 410, "Expired", "too old resource version: 1 (99)");
    } else if (strcmp(name, "notjson") == 0) {
        csl_http_respond(r, 200, "text/plain", "hello", 5);
    } else if (strcmp(name, "missing") == 0) {
        status_reply(r, 404, "NotFound", "configmaps \"missing\" not found");
    } else {
        const char *ua = csl_http_header(r, "User-Agent");
        cJSON *o = cJSON_CreateObject();
        cJSON *md = cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(md, "name", name);
        cJSON *data = cJSON_AddObjectToObject(o, "data");
        cJSON_AddStringToObject(data, "ua", ua ? ua : "");
        csl_http_respond_json(r, 200, o);
        cJSON_Delete(o);
    }
}

static void h_auth(csl_http_req *r, void *d)
{
    const char *a = csl_http_header(r, "Authorization");
    pthread_mutex_lock(&peer_mu);
    bool ok = a && strncmp(a, "Bearer ", 7) == 0 && accepted_prefix[0] &&
              strncmp(a + 7, accepted_prefix, strlen(accepted_prefix)) == 0;
    pthread_mutex_unlock(&peer_mu);
    if (!ok) {
        status_reply(r, 401, "Unauthorized", "Unauthorized");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", a + 7);
    csl_http_respond_json(r, 200, o);
    cJSON_Delete(o);
}

static bool add_query(const char *k, const char *v, void *ctx)
{
    cJSON_AddStringToObject(ctx, k, v);
    return true;
}

/* The last body the echo route got. */
static char last_body[4096];

/* Echoes what arrived, for checking verbs, content types and bodies. */
static void h_echo(csl_http_req *r, void *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", csl_http_method(r));
    cJSON_AddStringToObject(o, "path", csl_http_path(r));
    const char *ct = csl_http_header(r, "Content-Type");
    cJSON_AddStringToObject(o, "ctype", ct ? ct : "");
    cJSON *q = cJSON_AddObjectToObject(o, "query");
    csl_http_query_each(r, add_query, q);
    size_t len;
    const char *body = csl_http_body(r, &len);
    cJSON_AddStringToObject(o, "body", body);
    pthread_mutex_lock(&peer_mu);
    snprintf(last_body, sizeof last_body, "%s", body);
    pthread_mutex_unlock(&peer_mu);
    csl_http_respond_json(r, strcmp(csl_http_method(r), "POST") == 0 ? 201 : 200, o);
    cJSON_Delete(o);
}

/* 7 items in pages of ?limit; continue tokens are the next index. */
static void h_pages(csl_http_req *r, void *d)
{
    const char *lim = csl_http_query(r, "limit");
    const char *cont = csl_http_query(r, "continue");
    if (cont && csl_http_query(r, "resourceVersion")) {
        status_reply(r, 400, "BadRequest", "continue with resourceVersion");
        return;
    }
    if (cont && atomic_exchange(&gone_once, 0)) {
        status_reply(r, 410, "Expired", "The provided continue parameter is too old");
        return;
    }
    int start = cont ? atoi(cont) : 0, n = lim ? atoi(lim) : 100;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "ThingList");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "resourceVersion", cont ? "other" : "100");
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (int i = start; i < 7 && i < start + n; i++) {
        cJSON *it = cJSON_CreateObject();
        cJSON *m = cJSON_AddObjectToObject(it, "metadata");
        char nm[16];
        snprintf(nm, sizeof nm, "t%d", i);
        cJSON_AddStringToObject(m, "name", nm);
        cJSON_AddItemToArray(items, it);
    }
    if (start + n < 7) {
        char c[16];
        snprintf(c, sizeof c, "%d", start + n);
        cJSON_AddStringToObject(md, "continue", c);
        cJSON_AddNumberToObject(md, "remainingItemCount", 7 - start - n);
    }
    csl_http_respond_json(r, 200, o);
    cJSON_Delete(o);
}

static int peer_start(void)
{
    csl_httpd_config hc = {.listen = "127.0.0.1:0", .max_body = 1 << 20, .threads = 4};
    srv = csl_httpd_new(&hc);
    if (!srv) return -1;
    csl_httpd_route(srv, "GET", "/api/v1/namespaces/t/configmaps", "list", h_list_gz, NULL);
    csl_httpd_route(srv, "GET", "/api/v1/namespaces/t/configmaps/{name}", "cm", h_cm, NULL);
    csl_httpd_route(srv, "GET", "/api/v1/namespaces/auth/configmaps/{name}", "auth", h_auth, NULL);
    csl_httpd_route(srv, "GET", "/apis/page.test/v1/things", "pages", h_pages, NULL);
    csl_httpd_route(srv, "*", "/apis/echo.test/*", "echo", h_echo, NULL);
    char err[256];
    if (csl_httpd_start(srv, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", csl_httpd_port(srv));
    return 0;
}

static csl_kube *client(const csl_kube_options *opt)
{
    csl_kube_config cfg = {0};
    cfg.server = base;
    char err[256];
    csl_kube *k = csl_kube_new(&cfg, opt, err, sizeof err);
    if (!k) fprintf(stderr, "csl_kube_new: %s\n", err);
    return k;
}

static const csl_kube_resource cm_res = {"", "v1", "configmaps", true};
static const csl_kube_resource echo_res = {"echo.test", "v1", "things", true};
static const csl_kube_resource page_res = {"page.test", "v1", "things", false};

/* ---------------------------------------------------------------- transport tests */

static void test_gzip_decoded(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    cJSON *l = csl_kube_list(k, &cm_res, "t", NULL, &e);
    CU_ASSERT_FATAL(l != NULL);
    cJSON *items = cJSON_GetObjectItem(l, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 300);
    cJSON *last = cJSON_GetArrayItem(items, 299);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "data"), "k")->valuestring,
                           "value-299");
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_OK);
    CU_ASSERT_EQUAL(e.status, 200);
    cJSON_Delete(l);
    csl_kube_free(k);
}

static void test_retry_after_header(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "t", "rl", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TOO_MANY_REQUESTS);
    CU_ASSERT_EQUAL(e.status, 429);
    CU_ASSERT_EQUAL(e.retry_after_s, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "GET /api/v1/namespaces/t/configmaps/rl: slow down"));
    CU_ASSERT(csl_kube_error_retryable(&e));
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "t", "rl-date", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TOO_MANY_REQUESTS);
    CU_ASSERT(e.retry_after_s >= 25 && e.retry_after_s <= 31);
    /* and a later success clears it */
    cJSON *o = csl_kube_get(k, &cm_res, "t", "fine", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_EQUAL(e.retry_after_s, 0);
    cJSON_Delete(o);
    csl_kube_free(k);
}

static void test_max_response(void)
{
    csl_kube_options opt = {.max_response = 1024 * 1024};
    csl_kube *k = client(&opt);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "t", "big", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "larger than 1048576 bytes"));
    CU_ASSERT_FALSE(csl_kube_error_retryable(&e));
    /* the handle is fine afterwards */
    cJSON *o = csl_kube_get(k, &cm_res, "t", "after", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    cJSON_Delete(o);
    /* the default cap lets it through */
    csl_kube *k2 = client(NULL);
    o = csl_kube_get(k2, &cm_res, "t", "big", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    cJSON_Delete(o);
    /* a 200 that is not JSON is a DECODE error, not a crash */
    CU_ASSERT_PTR_NULL(csl_kube_get(k2, &cm_res, "t", "notjson", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "not a JSON object: hello"));
    csl_kube_free(k2);
    csl_kube_free(k);
}

static void test_connection_reused(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    for (int i = 0; i < 20; i++) {
        cJSON *o = csl_kube_get(k, &cm_res, "t", i % 2 ? "a" : "missing", NULL, &e);
        CU_ASSERT_EQUAL(o != NULL, i % 2 == 1);
        cJSON_Delete(o);
    }
    csl_kube_stats st;
    csl_kube_get_stats(k, &st);
    CU_ASSERT_EQUAL(st.requests, 20);
    CU_ASSERT_EQUAL(st.connects, 1); /* 404s keep the connection too */
    csl_kube_free(k);
}

typedef struct par_ctx {
    csl_kube *k;
    atomic_int ok;
} par_ctx;

static void *par_worker(void *arg)
{
    par_ctx *p = arg;
    for (int i = 0; i < 25; i++) {
        csl_kube_error e;
        cJSON *o = csl_kube_get(p->k, &cm_res, "t", "par", NULL, &e);
        if (o) atomic_fetch_add(&p->ok, 1);
        cJSON_Delete(o);
    }
    return NULL;
}

static void test_threads_share_client(void)
{
    par_ctx p = {.k = client(NULL)};
    CU_ASSERT_FATAL(p.k != NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, par_worker, &p);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    csl_kube_stats st;
    csl_kube_get_stats(p.k, &st);
    CU_ASSERT_EQUAL(atomic_load(&p.ok), 100);
    CU_ASSERT_EQUAL(st.requests, 100);
    CU_ASSERT(st.connects >= 1 && st.connects <= 8);
    csl_kube_free(p.k);
}

static void test_user_agent_and_timeout(void)
{
    csl_kube_options opt = {.user_agent = "k1-test/9", .timeout_ms = 300};
    csl_kube *k = client(&opt);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    cJSON *o = csl_kube_get(k, &cm_res, "t", "ua", NULL, &e);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "ua")->valuestring,
                           "k1-test/9");
    cJSON_Delete(o);
    int64_t t0 = csl_mono_ns();
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "t", "hang", NULL, &e));
    double s = (double)(csl_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TIMEOUT);
    CU_ASSERT(s >= 0.25 && s < 10);
    CU_ASSERT(csl_kube_error_retryable(&e));
    csl_kube_free(k);

    csl_kube *def = client(NULL);
    o = csl_kube_get(def, &cm_res, "t", "ua", NULL, &e);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_EQUAL(strncmp(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "ua")->valuestring,
                            "cloudserver-lab/", 16),
                    0);
    cJSON_Delete(o);
    csl_kube_free(def);
}

static void test_transport_error(void)
{
    /* a port nobody listens on: bind one, learn it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    csl_metrics *reg = csl_metrics_new();
    csl_kube_config cfg = {.server = url};
    csl_kube_options opt = {.metrics = reg};
    char err[256];
    csl_kube *k = csl_kube_new(&cfg, &opt, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "t", "x", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TRANSPORT);
    CU_ASSERT_EQUAL(e.status, 0);
    CU_ASSERT(csl_kube_error_retryable(&e));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, url));
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", ntohs(a.sin_port));
    CU_ASSERT_EQUAL(csl_metric_value(csl_metrics_counter(reg, "rest_client_requests_total", "",
                                                         CSL_LABELS("code", "method", "host")),
                                     CSL_LABELS("<error>", "GET", host)),
                    1);
    csl_kube_free(k);
    csl_metrics_free(reg);

    /* bad server URLs are refused at creation, with the reason */
    const char *bad[] = {"127.0.0.1:6443", "ftp://x", "https://", NULL};
    for (int i = 0; bad[i]; i++) {
        csl_kube_config c2 = {.server = (char *)bad[i]};
        CU_ASSERT_PTR_NULL(csl_kube_new(&c2, NULL, err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "server URL"));
    }
    csl_kube_config c3 = {0};
    CU_ASSERT_PTR_NULL(csl_kube_new(&c3, NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no server URL"));
    csl_kube_config c4 = {.server = url, .ca_file = "/nonexistent/ca.crt"};
    CU_ASSERT_PTR_NULL(csl_kube_new(&c4, NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/ca.crt"));
}

static void test_verbs_on_the_wire(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"n1\",\"namespace\":\"from-obj\","
                             "\"resourceVersion\":\"5\"},\"spec\":{\"a\":1}}");
    /* create: POST to the collection of the object's namespace */
    cJSON *r = csl_kube_create(k, &echo_res, NULL, obj, &e);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(e.status, 201);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "method")->valuestring, "POST");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "path")->valuestring,
                           "/apis/echo.test/v1/namespaces/from-obj/things");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "ctype")->valuestring, "application/json");
    cJSON *sent = cJSON_Parse(cJSON_GetObjectItem(r, "body")->valuestring);
    CU_ASSERT(cJSON_Compare(sent, obj, true));
    cJSON_Delete(sent);
    cJSON_Delete(r);
    /* update: PUT to the object (a given ns wins), status subresource */
    r = csl_kube_update(k, &echo_res, "given", obj, "status", &e);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "method")->valuestring, "PUT");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "path")->valuestring,
                           "/apis/echo.test/v1/namespaces/given/things/n1/status");
    cJSON_Delete(r);
    /* patches: content types and the apply query */
    static const struct {
        csl_kube_patch_type t;
        const char *ct;
    } pt[] = {{CSL_PATCH_MERGE, "application/merge-patch+json"},
              {CSL_PATCH_JSON, "application/json-patch+json"},
              {CSL_PATCH_APPLY, "application/apply-patch+yaml"}};
    for (int i = 0; i < 3; i++) {
        csl_kube_patch_opts po = {.field_manager = "k1 test", .force = true};
        r = csl_kube_patch(k, &echo_res, "ns", "n1", "scale", pt[i].t, "{\"x\":1}", &po, &e);
        CU_ASSERT_FATAL(r != NULL);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "method")->valuestring, "PATCH");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "ctype")->valuestring, pt[i].ct);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "path")->valuestring,
                               "/apis/echo.test/v1/namespaces/ns/things/n1/scale");
        cJSON *q = cJSON_GetObjectItem(r, "query");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "fieldManager")->valuestring, "k1 test");
        /* force only means something to apply; the server refuses it elsewhere */
        CU_ASSERT_EQUAL(cJSON_GetObjectItem(q, "force") != NULL, pt[i].t == CSL_PATCH_APPLY);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(r, "body")->valuestring, "{\"x\":1}");
        cJSON_Delete(r);
    }
    CU_ASSERT_PTR_NULL(
        csl_kube_patch(k, &echo_res, "ns", "n1", NULL, CSL_PATCH_APPLY, "{}", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "field manager"));
    /* list query: selectors escaped, no resourceVersion with continue */
    csl_kube_list_opts lo = {.label_selector = "app in (a,b),tier!=x",
                             .field_selector = "metadata.name=n1",
                             .limit = 5,
                             .resource_version = "0",
                             .resource_version_match = "NotOlderThan"};
    r = csl_kube_list(k, &echo_res, "ns", &lo, &e);
    CU_ASSERT_FATAL(r != NULL);
    cJSON *q = cJSON_GetObjectItem(r, "query");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "labelSelector")->valuestring,
                           "app in (a,b),tier!=x");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "fieldSelector")->valuestring,
                           "metadata.name=n1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "limit")->valuestring, "5");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "resourceVersion")->valuestring, "0");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(q, "resourceVersionMatch")->valuestring,
                           "NotOlderThan");
    cJSON_Delete(r);
    /* bad arguments are refused before any I/O */
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &echo_res, "ns", NULL, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_BAD_REQUEST);
    cJSON *noname = cJSON_Parse("{\"metadata\":{}}");
    CU_ASSERT_PTR_NULL(csl_kube_update(k, &echo_res, "ns", noname, NULL, &e));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "metadata.name"));
    cJSON_Delete(noname);
    cJSON_Delete(obj);
    csl_kube_free(k);
}

static cJSON *last_echo_body(void)
{
    pthread_mutex_lock(&peer_mu);
    cJSON *j = cJSON_Parse(last_body);
    pthread_mutex_unlock(&peer_mu);
    return j;
}

static void test_delete_body(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    csl_kube_delete_opts d = {.propagation_policy = "Foreground",
                              .precondition_uid = "u-1",
                              .precondition_rv = "7",
                              .grace_period_s = CSL_KUBE_GRACE_IMMEDIATE};
    CU_ASSERT_EQUAL(csl_kube_delete(k, &echo_res, "ns", "n1", &d, &e), 0);
    cJSON *b = last_echo_body();
    cJSON *want = cJSON_Parse("{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                              "\"propagationPolicy\":\"Foreground\",\"gracePeriodSeconds\":0,"
                              "\"preconditions\":{\"uid\":\"u-1\",\"resourceVersion\":\"7\"}}");
    CU_ASSERT(cJSON_Compare(b, want, true));
    cJSON_Delete(b);
    cJSON_Delete(want);
    /* defaults: no grace period, no preconditions */
    csl_kube_delete_opts d2 = {.grace_period_s = 0};
    CU_ASSERT_EQUAL(csl_kube_delete(k, &echo_res, "ns", "n1", &d2, &e), 0);
    b = last_echo_body();
    want = cJSON_Parse("{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\"}");
    CU_ASSERT(cJSON_Compare(b, want, true));
    cJSON_Delete(b);
    cJSON_Delete(want);
    CU_ASSERT_EQUAL(csl_kube_delete(k, &echo_res, "ns", "n1", NULL, &e), 0);
    /* a raw request carries its body as given */
    csl_buf resp = CSL_BUF_INIT;
    int st = csl_kube_request(k, "DELETE", "/apis/echo.test/v1/x", "application/json", "{\"a\":1}",
                              7, &resp, &e);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&resp), "\"method\":\"DELETE\""));
    b = last_echo_body();
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(b, "a")->valueint, 1);
    cJSON_Delete(b);
    csl_buf_free(&resp);
    csl_kube_free(k);
}

static void test_list_all_pages(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    csl_kube_list_opts lo = {.limit = 3, .resource_version = "0"};
    /* resourceVersion goes with the first page only (the peer refuses it
     * beside continue) */
    lo.resource_version = NULL;
    cJSON *l = csl_kube_list_all(k, &page_res, NULL, &lo, &e);
    CU_ASSERT_FATAL(l != NULL);
    cJSON *items = cJSON_GetObjectItem(l, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 7);
    for (int i = 0; i < 7; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "t%d", i);
        CU_ASSERT_STRING_EQUAL(csl_kube_obj_name(cJSON_GetArrayItem(items, i)), nm);
    }
    cJSON *md = cJSON_GetObjectItem(l, "metadata");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(md, "resourceVersion")->valuestring, "100");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(md, "continue"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(md, "remainingItemCount"));
    cJSON_Delete(l);
    csl_kube_stats st0, st1;
    csl_kube_get_stats(k, &st0);
    /* a 410 on a continue restarts from the first page, once */
    atomic_store(&gone_once, 1);
    l = csl_kube_list_all(k, &page_res, NULL, &lo, &e);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 7);
    csl_kube_get_stats(k, &st1);
    CU_ASSERT_EQUAL(st1.requests - st0.requests, 2 + 3); /* page 1, 410, then 3 pages */
    cJSON_Delete(l);
    /* resourceVersion with pages: only on the first request */
    lo.resource_version = "0";
    l = csl_kube_list_all(k, &page_res, NULL, &lo, &e);
    CU_ASSERT_PTR_NOT_NULL(l);
    cJSON_Delete(l);
    csl_kube_free(k);
}

static void test_qps_limiter(void)
{
    csl_kube_options opt = {.qps = 20, .burst = 1};
    csl_kube *k = client(&opt);
    CU_ASSERT_FATAL(k != NULL);
    int64_t t0 = csl_mono_ns();
    for (int i = 0; i < 11; i++) {
        csl_kube_error e;
        cJSON_Delete(csl_kube_get(k, &cm_res, "t", "q", NULL, &e));
    }
    double s = (double)(csl_mono_ns() - t0) / 1e9;
    CU_ASSERT(s >= 0.45); /* 10 waits of 50 ms: a lower bound, safe under load */
    csl_kube_free(k);
    /* off by default: the same 11 calls take no waits (loose bound) */
    k = client(NULL);
    t0 = csl_mono_ns();
    for (int i = 0; i < 11; i++) {
        csl_kube_error e;
        cJSON_Delete(csl_kube_get(k, &cm_res, "t", "q", NULL, &e));
    }
    CU_ASSERT((double)(csl_mono_ns() - t0) / 1e9 < 5);
    csl_kube_free(k);
}

static void test_metrics(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_kube_options opt = {.metrics = reg};
    csl_kube *k = client(&opt);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    for (int i = 0; i < 3; i++) cJSON_Delete(csl_kube_get(k, &cm_res, "t", "m", NULL, &e));
    cJSON_Delete(csl_kube_get(k, &cm_res, "t", "missing", NULL, &e));
    cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"m\"}}");
    cJSON_Delete(csl_kube_create(k, &echo_res, "ns", o, &e));
    cJSON_Delete(o);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", csl_httpd_port(srv));
    csl_metric *req = csl_metrics_counter(reg, "rest_client_requests_total", "",
                                          CSL_LABELS("code", "method", "host"));
    csl_metric *dur = csl_metrics_histogram(
        reg, "rest_client_request_duration_seconds", "", CSL_LABELS("verb", "host"),
        (const double[]){0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0}, 12);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dur);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("200", "GET", host)), 3);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("404", "GET", host)), 1);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("201", "POST", host)), 1);
    CU_ASSERT_EQUAL(csl_metric_value(dur, CSL_LABELS("GET", host)), 4);
    CU_ASSERT_EQUAL(csl_metric_value(dur, CSL_LABELS("POST", host)), 1);
    csl_buf text = CSL_BUF_INIT;
    csl_metrics_render(reg, &text);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text.data, "# TYPE rest_client_request_duration_seconds histogram"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text.data, "rest_client_requests_total{code=\"200\",method=\"GET\""));
    csl_buf_free(&text);
    /* two clients may share one registry */
    csl_kube *k2 = client(&opt);
    cJSON_Delete(csl_kube_get(k2, &cm_res, "t", "m", NULL, &e));
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("200", "GET", host)), 4);
    csl_kube_free(k2);
    csl_kube_free(k);
    csl_metrics_free(reg);
}

/* ---------------------------------------------------------------- streams */

typedef struct sink {
    csl_buf got;
    int calls;
    int stop_after; /* return false after this many calls; 0 never */
} sink;

static bool on_chunk(const char *p, size_t n, void *ctx)
{
    sink *s = ctx;
    csl_buf_append(&s->got, p, n);
    s->calls++;
    return !(s->stop_after && s->calls >= s->stop_after);
}

/* A raw HTTP peer: answers every connection with `reply`, then stays
 * silent (holding the connection) until the client leaves or we stop. */
typedef struct raw_peer {
    int lfd, port;
    const char *reply;
    atomic_int stop;
    atomic_int conns;
    pthread_t th;
} raw_peer;

static void *raw_main(void *arg)
{
    raw_peer *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {p->lfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) continue;
        int c = accept(p->lfd, NULL, NULL);
        if (c < 0) continue;
        atomic_fetch_add(&p->conns, 1);
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) {
            ssize_t r = read(c, req + got, sizeof req - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        ssize_t w = write(c, p->reply, strlen(p->reply));
        (void)w;
        while (!atomic_load(&p->stop)) {
            struct pollfd cf = {c, POLLIN, 0};
            if (poll(&cf, 1, 50) > 0) {
                char b[256];
                if (read(c, b, sizeof b) <= 0) break; /* the client left */
            }
        }
        close(c);
    }
    return NULL;
}

static int raw_start(raw_peer *p, const char *reply)
{
    memset(p, 0, sizeof *p);
    p->reply = reply;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 8) != 0) return -1;
    getsockname(p->lfd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    return pthread_create(&p->th, NULL, raw_main, p);
}

static void raw_stop(raw_peer *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
    close(p->lfd);
}

static csl_kube *raw_client(const raw_peer *p)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", p->port);
    csl_kube_config cfg = {.server = url};
    char err[256];
    return csl_kube_new(&cfg, NULL, err, sizeof err);
}

static const char stall_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "1c\r\n{\"type\":\"ADDED\",\"object\":{}}\r\n";

static void test_stream_stall(void)
{
    raw_peer p;
    CU_ASSERT_FATAL(raw_start(&p, stall_reply) == 0);
    csl_kube *k = raw_client(&p);
    CU_ASSERT_FATAL(k != NULL);
    sink s = {CSL_BUF_INIT, 0, 0};
    csl_kube_error e;
    int64_t t0 = csl_mono_ns();
    int st = csl_kube_stream(k, "/api/v1/configmaps?watch=1", on_chunk, &s, NULL, 700, &e);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(st, -1);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "stalled"));
    CU_ASSERT(csl_kube_error_retryable(&e));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&s.got), "{\"type\":\"ADDED\",\"object\":{}}");
    CU_ASSERT(secs >= 0.6 && secs < 10); /* the stall bound, not the (absent) overall timeout */
    csl_buf_free(&s.got);
    csl_kube_free(k);
    raw_stop(&p);
}

typedef struct stopper {
    volatile int *flag;
    int64_t after_ns;
} stopper;

static void *stop_later(void *arg)
{
    stopper *s = arg;
    csl_sleep_ns(s->after_ns);
    *s->flag = 1;
    return NULL;
}

static void test_stream_stop_flag(void)
{
    raw_peer p;
    CU_ASSERT_FATAL(raw_start(&p, stall_reply) == 0);
    csl_kube *k = raw_client(&p);
    CU_ASSERT_FATAL(k != NULL);
    sink s = {CSL_BUF_INIT, 0, 0};
    csl_kube_error e;
    volatile int flag = 0;
    stopper sp = {&flag, 300 * 1000000LL};
    pthread_t th;
    pthread_create(&th, NULL, stop_later, &sp);
    int64_t t0 = csl_mono_ns();
    /* no stall detection: only *stop can end this */
    int st = csl_kube_stream(k, "/w", on_chunk, &s, &flag, 0, &e);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_OK);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT(secs >= 0.25 && secs < 10);
    /* a stop already set: no request at all, status 0 */
    csl_buf_reset(&s.got);
    s.calls = 0;
    csl_kube_stats st0, st1;
    csl_kube_get_stats(k, &st0);
    st = csl_kube_stream(k, "/w", on_chunk, &s, &flag, 0, &e);
    csl_kube_get_stats(k, &st1);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_OK);
    CU_ASSERT_EQUAL(s.calls, 0);
    CU_ASSERT_EQUAL(st1.requests, st0.requests);
    csl_buf_free(&s.got);
    csl_kube_free(k);
    raw_stop(&p);
}

static void test_stream_over_httpd(void)
{
    csl_kube *k = client(NULL);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    sink s = {CSL_BUF_INIT, 0, 0};
    /* an error status: decoded into err, on_data not called */
    int st =
        csl_kube_stream(k, "/api/v1/namespaces/t/configmaps/gone", on_chunk, &s, NULL, 5000, &e);
    CU_ASSERT_EQUAL(st, 410);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_GONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "too old resource version"));
    CU_ASSERT_EQUAL(s.calls, 0);
    /* a whole body, ended by the server */
    st = csl_kube_stream(k, "/api/v1/namespaces/t/configmaps/streamed", on_chunk, &s, NULL, 5000,
                         &e);
    CU_ASSERT_EQUAL(st, 200);
    cJSON *o = cJSON_Parse(csl_buf_str(&s.got));
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_name(o), "streamed");
    cJSON_Delete(o);
    /* on_data returning false ends it, with the status */
    csl_buf_reset(&s.got);
    s.calls = 0;
    s.stop_after = 1;
    st = csl_kube_stream(k, "/api/v1/namespaces/t/configmaps/big", on_chunk, &s, NULL, 5000, &e);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(s.calls, 1);
    CU_ASSERT(s.got.len < 2 * 1024 * 1024);
    /* a stream that never gets its headers stalls too */
    int64_t t0 = csl_mono_ns();
    st = csl_kube_stream(k, "/api/v1/namespaces/t/configmaps/hang", on_chunk, &s, NULL, 500, &e);
    CU_ASSERT_EQUAL(st, -1);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TIMEOUT);
    CU_ASSERT((double)(csl_mono_ns() - t0) / 1e9 < 10);
    csl_buf_free(&s.got);
    csl_kube_free(k);
}

/* ---------------------------------------------------------------- credentials */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static int read_count(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/count", tmpdir);
    FILE *f = fopen(p, "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        fclose(f);
    }
    return n;
}

static void set_accepted(const char *prefix)
{
    pthread_mutex_lock(&peer_mu);
    snprintf(accepted_prefix, sizeof accepted_prefix, "%s", prefix);
    pthread_mutex_unlock(&peer_mu);
}

static const char *served_token(cJSON *o)
{
    cJSON *t = cJSON_GetObjectItem(o, "token");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static void test_token_file_rotation(void)
{
    char tok[256];
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    write_file(tok, "token-one\n", 0600);
    set_accepted("token-one");
    csl_kube_config cfg = {.server = base, .token_file = tok, .token = "ignored-static"};
    char err[256];
    csl_kube *k = csl_kube_new(&cfg, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    cJSON *o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_STRING_EQUAL(served_token(o), "token-one"); /* the file wins over a static token */
    cJSON_Delete(o);
    csl_kube_stats st0, st1;
    csl_kube_get_stats(k, &st0);
    /* rotation: the new content is used at once, no 401 round trip */
    write_file(tok, "token-two-rotated", 0600);
    set_accepted("token-two");
    o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_STRING_EQUAL(served_token(o), "token-two-rotated");
    cJSON_Delete(o);
    csl_kube_get_stats(k, &st1);
    CU_ASSERT_EQUAL(st1.requests - st0.requests, 1);
    CU_ASSERT_EQUAL(st1.auth_refreshes - st0.auth_refreshes, 1);
    /* unchanged file: not read again */
    o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    cJSON_Delete(o);
    csl_kube_get_stats(k, &st0);
    CU_ASSERT_EQUAL(st0.auth_refreshes, st1.auth_refreshes);
    /* the file vanishing keeps the last good token (logged) */
    unlink(tok);
    o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    cJSON_Delete(o);
    csl_kube_free(k);
    /* ... but with no token ever read, the call fails and says which file */
    k = csl_kube_new(&cfg, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "auth", "x", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, tok));
    csl_kube_free(k);
}

static const char plugin[] =
    "#!/bin/sh\n"
    "n=$(cat \"$DIR/count\" 2>/dev/null || echo 0)\n"
    "n=$((n+1))\n"
    "echo $n > \"$DIR/count\"\n"
    "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
    "\"status\":{\"token\":\"tok-%s\",\"expirationTimestamp\":\"%s\"}}' $n \"$EXP\"\n";

static csl_kube *exec_client(const char *exp, char *script, size_t n)
{
    snprintf(script, n, "%s/plugin.sh", tmpdir);
    write_file(script, plugin, 0700);
    char count[256];
    snprintf(count, sizeof count, "%s/count", tmpdir);
    unlink(count);
    char dir_env[200], exp_env[80];
    snprintf(dir_env, sizeof dir_env, "DIR=%s", tmpdir);
    snprintf(exp_env, sizeof exp_env, "EXP=%s", exp);
    char *env[] = {dir_env, exp_env, NULL};
    char *args[] = {NULL};
    csl_kube_config cfg = {.server = base,
                           .exec = {.command = script,
                                    .args = args,
                                    .env = env,
                                    .api_version = "client.authentication.k8s.io/v1"}};
    char err[256];
    csl_kube *k = csl_kube_new(&cfg, NULL, err, sizeof err);
    if (!k) fprintf(stderr, "exec client: %s\n", err);
    return k;
}

static void test_exec_cache_and_401(void)
{
    char script[256];
    csl_kube *k = exec_client("2999-01-01T00:00:00Z", script, sizeof script);
    CU_ASSERT_FATAL(k != NULL);
    set_accepted("tok-1");
    csl_kube_error e;
    for (int i = 0; i < 3; i++) {
        cJSON *o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
        CU_ASSERT_PTR_NOT_NULL(o);
        CU_ASSERT_STRING_EQUAL(served_token(o), "tok-1");
        cJSON_Delete(o);
    }
    CU_ASSERT_EQUAL(read_count(), 1); /* cached until expiry */
    /* the server stops taking tok-1: one 401, the plugin runs again, the
     * call is retried and succeeds */
    set_accepted("tok-2");
    csl_kube_stats st0, st1;
    csl_kube_get_stats(k, &st0);
    cJSON *o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_STRING_EQUAL(served_token(o), "tok-2");
    cJSON_Delete(o);
    csl_kube_get_stats(k, &st1);
    CU_ASSERT_EQUAL(st1.requests - st0.requests, 2);
    CU_ASSERT_EQUAL(read_count(), 2);
    /* a server that refuses everything: 401 after one retry, no loop */
    set_accepted("nobody");
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "auth", "x", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_UNAUTHORIZED);
    CU_ASSERT_EQUAL(read_count(), 3); /* one refresh for the retry, no more */
    /* the next call starts with a fresh credential (the last one was
     * refused), then gives up after one refresh and retry */
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "auth", "x", NULL, &e));
    CU_ASSERT_EQUAL(read_count(), 5);
    set_accepted("tok-6");
    cJSON *ok = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(ok);
    CU_ASSERT_STRING_EQUAL(served_token(ok), "tok-6");
    cJSON_Delete(ok);
    csl_kube_free(k);
}

static void test_exec_expiry(void)
{
    char script[256];
    csl_kube *k = exec_client("2001-01-01T00:00:00Z", script, sizeof script);
    CU_ASSERT_FATAL(k != NULL);
    set_accepted("tok-");
    csl_kube_error e;
    for (int i = 1; i <= 3; i++) {
        cJSON *o = csl_kube_get(k, &cm_res, "auth", "x", NULL, &e);
        CU_ASSERT_PTR_NOT_NULL(o);
        char want[16];
        snprintf(want, sizeof want, "tok-%d", i);
        CU_ASSERT_STRING_EQUAL(served_token(o), want); /* expired: rerun every time */
        cJSON_Delete(o);
    }
    CU_ASSERT_EQUAL(read_count(), 3);
    csl_kube_free(k);
    /* a broken plugin is a CONFIG error naming it */
    snprintf(script, sizeof script, "%s/broken.sh", tmpdir);
    write_file(script, "#!/bin/sh\necho 'no credentials for you' >&2\nexit 3\n", 0700);
    csl_kube_config cfg = {
        .server = base,
        .exec = {.command = script, .api_version = "client.authentication.k8s.io/v1beta1"}};
    char err[256];
    k = csl_kube_new(&cfg, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &cm_res, "auth", "x", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "no credentials for you"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "status 3"));
    csl_kube_free(k);
}

/* ---------------------------------------------------------------- suites */

static int transport_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_kube_errors", CSL_LOG_WARN, CSL_LOG_TEXT, fileno(log_file));
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_kube_errors.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    return peer_start() == 0 ? 0 : 1;
}

static int transport_cleanup(void)
{
    csl_httpd_free(srv);
    srv = NULL;
    const char *files[] = {"token", "count", "plugin.sh", "broken.sh"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    csl_log_setup("test_kube_errors", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    if (log_file) fclose(log_file);
    return 0;
}

static CU_TestInfo decode_tests[] = {
    {"Status decoding table", test_decode_table},
    {"Invalid with causes, truncation", test_decode_invalid_causes},
    {"huge, binary and odd bodies", test_decode_huge_and_odd},
    {"code names and retryable", test_code_names_and_retryable},
    {"paths: core/group, namespaced/cluster, escaping", test_paths},
    {"object helpers", test_obj_helpers},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo transport_tests[] = {
    {"gzip response decoded", test_gzip_decoded},
    {"Retry-After header (seconds and date)", test_retry_after_header},
    {"max_response: DECODE, no crash", test_max_response},
    {"connection reused", test_connection_reused},
    {"threads share one client", test_threads_share_client},
    {"User-Agent and request timeout", test_user_agent_and_timeout},
    {"transport errors and bad configs", test_transport_error},
    {"verbs, content types, queries on the wire", test_verbs_on_the_wire},
    {"delete: DeleteOptions body", test_delete_body},
    {"list_all: pages, 410 restart", test_list_all_pages},
    {"QPS limiter", test_qps_limiter},
    {"client-go metrics", test_metrics},
    {"stream: headers then silence is a stall", test_stream_stall},
    {"stream: *stop ends it", test_stream_stop_flag},
    {"stream: errors, end, consumer stop, no headers", test_stream_over_httpd},
    {"token file rotation", test_token_file_rotation},
    {"exec plugin: cache, 401 refresh", test_exec_cache_and_401},
    {"exec plugin: expiry, failure", test_exec_expiry},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kube errors and paths", NULL, NULL, NULL, NULL, decode_tests},
    {"kube transport (loopback)", transport_init, transport_cleanup, NULL, NULL, transport_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
