/*
 * camus.c — Camus, a video chat server in one C file.
 *
 * Browsers load the web client from this server, then open a WebRTC data
 * channel to it ("Ground Control") by POSTing an SDP offer.  Over that channel
 * they chat; the same session carries their audio and video through the
 * server (an SFU), or, in peer-to-peer rooms, the signaling that lets them
 * stream to each other directly.
 *
 * The file reads top to bottom along the data path, one banner a layer:
 *
 *   CONFIG        knobs, each with its unit; the platform switch (Linux calls, POSIX fallbacks)
 *   UTILITIES     logging, time, string views, buffers, byte order, addresses
 *   CODECS        JSON, HTTP/1.1 requests, SDP, STUN, DCEP, RTP/RTCP: pure parsers and writers over bytes
 *   CRYPTO        random bytes, password hashes, certificates, the state directory's files
 *   LOOP          descriptors with a callback each, timers, end-of-turn hooks: nothing else
 *   GLOBAL STATE  what is process-wide (usrsctp knows sessions by handle; scratch buffers)
 *   TRANSPORT     HTTP(S) connections; the UDP socket, its batches and the RFC 7983 demultiplexer
 *   RTC SESSION   one WebRTC session: ICE-lite and consent, DTLS, SRTP, SCTP, DCEP data channels
 *   APP           clients, rooms, admission and fair shares, tokens, media forwarding (the SFU), the messaging protocol
 *   HTTP ROUTES   the HTTP API, and the web client's files (WEB ASSETS)
 *   PUBLIC API    camus_new / camus_poll / camus_free (camus.h)
 *   MAIN          the command line
 *
 * A layer calls the ones above it in this list directly, and the ones below it
 * only through a function pointer they registered (the loop's io and hook
 * callbacks, the HTTP server's on_request, the UDP demultiplexer's handlers,
 * a session's on_checked / on_open / on_message / on_close).
 *
 * Build:  cc -O2 -o camus camus.c -lmbedtls -lmbedx509 -lmbedcrypto -lusrsctp -lpthread
 * Everything here is static except the camus_ API declared in camus.h.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64 /* 32-bit systems: stat() and readdir() on file systems with 64-bit inode numbers */
#include "camus.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/aes.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cookie.h>
#include <mbedtls/x509_crt.h>
#include <usrsctp.h>

/* ================================================================== CONFIG ================================================================== */

/* What `camus --version` names besides the version: the commit it was built
 * from and how (the Makefile passes both; a bare `cc camus.c` says so). */
#ifndef CAMUS_COMMIT
#define CAMUS_COMMIT "unknown commit"
#endif
#ifndef CAMUS_BUILD
#define CAMUS_BUILD "built by hand"
#endif

#ifndef CAMUS_HTTP_MAX_LINE
#define CAMUS_HTTP_MAX_LINE 8192 /* bytes in a request line */
#endif
#ifndef CAMUS_HTTP_MAX_HEAD
#define CAMUS_HTTP_MAX_HEAD 16384 /* bytes in a request line plus headers */
#endif
#ifndef CAMUS_HTTP_MAX_HEADERS
#define CAMUS_HTTP_MAX_HEADERS 64 /* header lines in a request */
#endif
#ifndef CAMUS_HTTP_MAX_BODY
#define CAMUS_HTTP_MAX_BODY 65536 /* bytes in a request body */
#endif
#ifndef CAMUS_ICE_TCP_MAX_OUT
#define CAMUS_ICE_TCP_MAX_OUT (256 << 10) /* bytes queued on an ICE-TCP connection; more is dropped, as datagrams */
#endif
#ifndef CAMUS_HTTP_MAX_OUT
#define CAMUS_HTTP_MAX_OUT (1 << 20) /* bytes queued for one slow reader before it is dropped */
#endif
#ifndef CAMUS_MAX_ROOMS
#define CAMUS_MAX_ROOMS 1000 /* rooms on one server */
#endif
#ifndef CAMUS_ROOM_NAME_MAX
#define CAMUS_ROOM_NAME_MAX 64 /* bytes in a room name (and its id) */
#endif
#ifndef CAMUS_PASSWORD_MAX
#define CAMUS_PASSWORD_MAX 256 /* bytes in a room password */
#endif
#ifndef CAMUS_GUEST_LIMIT_MAX
#define CAMUS_GUEST_LIMIT_MAX 1000 /* largest guest limit a room may have */
#endif
#ifndef CAMUS_ROOM_BANS
#define CAMUS_ROOM_BANS 32 /* addresses removed from a room and kept out of it; more pushes out the oldest */
#endif
#ifndef CAMUS_ROOM_END_MS
#define CAMUS_ROOM_END_MS 1000 /* ms between an owner ending a room and its sessions closing: time to say so */
#endif
#ifndef CAMUS_PBKDF2_ITERATIONS
#define CAMUS_PBKDF2_ITERATIONS 20000 /* PBKDF2-HMAC-SHA256 rounds for room passwords */
#endif
#ifndef CAMUS_TOKEN_TTL
#define CAMUS_TOKEN_TTL 86400 /* seconds a room password proof stays valid */
#endif
#ifndef CAMUS_JOIN_FAILS
#define CAMUS_JOIN_FAILS 10 /* failed password attempts per address per minute */
#endif
#ifndef CAMUS_ROOM_JOIN_FAILS
#define CAMUS_ROOM_JOIN_FAILS 30 /* failed password attempts on one room per minute, from every address */
#endif
#ifndef CAMUS_HASH_MS
#define CAMUS_HASH_MS 250 /* ms of each second the loop may spend on password hashes (PBKDF2, tens of ms each) */
#endif
#ifndef CAMUS_HASH_BURST_MS
#define CAMUS_HASH_BURST_MS 500 /* ms of hashing saved up at most: the longest the loop stalls on them */
#endif
#ifndef CAMUS_ROOM_MISSES
#define CAMUS_ROOM_MISSES 30 /* lookups of rooms that do not exist, per address per minute */
#endif
#ifndef CAMUS_RATE_SLOTS
#define CAMUS_RATE_SLOTS 256 /* addresses remembered by the per-address rate limits */
#endif
#ifndef CAMUS_ROOMS_PER_HOST
#define CAMUS_ROOMS_PER_HOST 10 /* rooms one address may create per minute */
#endif
#ifndef CAMUS_CONNS_PER_HOST
#define CAMUS_CONNS_PER_HOST 64 /* HTTP connections open at once from one address (an office behind one NAT) */
#endif
#ifndef CAMUS_HANDSHAKES_PER_HOST
#define CAMUS_HANDSHAKES_PER_HOST 16 /* sessions connecting at once from one address */
#endif
#ifndef CAMUS_MAX_PEERS
#define CAMUS_MAX_PEERS 8192 /* WebRTC sessions on one server */
#endif
#ifndef CAMUS_MAX_HANDSHAKES
#define CAMUS_MAX_HANDSHAKES 256 /* sessions past their ICE check and still in DTLS or SCTP setup */
#endif
#ifndef CAMUS_HANDSHAKE_MS
#define CAMUS_HANDSHAKE_MS 20000 /* ms from the offer to an open association */
#endif
#ifndef CAMUS_AMPLIFICATION
#define CAMUS_AMPLIFICATION 3 /* bytes sent per byte received, to an address not yet shown to receive */
#endif
#ifndef CAMUS_CHECK_MS
#define CAMUS_CHECK_MS 10000 /* ms from the offer to its first valid ICE check */
#endif
#ifndef CAMUS_CONSENT_MS
#define CAMUS_CONSENT_MS 30000 /* ms without a valid packet before a peer is dropped (RFC 7675) */
#endif
#ifndef CAMUS_PING_MS
#define CAMUS_PING_MS 60000 /* ms of client silence before a ping, and then before removal */
#endif
#ifndef CAMUS_MAX_MESSAGE
#define CAMUS_MAX_MESSAGE 65536 /* bytes in one data channel message (our a=max-message-size) */
#endif
#ifndef CAMUS_MTU
#define CAMUS_MTU 1200 /* bytes in the largest datagram we send */
#endif
#define CAMUS_DTLS_OVERHEAD 64 /* bytes a DTLS 1.2 record adds, with room to spare (AES-GCM: 37) */
#ifndef CAMUS_SCTP_STREAMS
#define CAMUS_SCTP_STREAMS 32 /* SCTP streams each way: data channel ids 0..31, 16 for either DTLS role */
#endif
#ifndef CAMUS_SCTP_TICK_MS
#define CAMUS_SCTP_TICK_MS 10 /* ms between usrsctp timer ticks while SCTP packets flow */
#endif
#ifndef CAMUS_SCTP_BUSY_MS
#define CAMUS_SCTP_BUSY_MS 1000 /* ms after the last SCTP packet during which usrsctp is ticked often */
#endif
#ifndef CAMUS_SCTP_IDLE_TICK_MS
#define CAMUS_SCTP_IDLE_TICK_MS 250 /* ms between ticks once no packet flowed for a second */
#endif
#ifndef CAMUS_USERNAME_MAX
#define CAMUS_USERNAME_MAX 64 /* bytes in a display name */
#endif
#ifndef CAMUS_CHAT_MAX
#define CAMUS_CHAT_MAX 2000 /* characters in one chat message (the web client's maxlength) */
#endif
#ifndef CAMUS_MSG_BURST
#define CAMUS_MSG_BURST 4 /* a client may send this many seconds' worth of messages at once */
#endif
#ifndef CAMUS_MSG_BYTES
#define CAMUS_MSG_BYTES (1 << 21) /* bytes a second one client may make the server send (a room message counts once per receiver) */
#endif
#ifndef CAMUS_MSG_TOKENS
#define CAMUS_MSG_TOKENS 512 /* JSON tokens in one message */
#endif
#ifndef CAMUS_WEB_FILE_MAX
#define CAMUS_WEB_FILE_MAX (4 << 20) /* bytes in one file served from --web-dir */
#endif
#ifndef CAMUS_JSON_MAX_DEPTH
#define CAMUS_JSON_MAX_DEPTH 32 /* nesting levels of arrays and objects */
#endif
#ifndef CAMUS_SDP_MAX
#define CAMUS_SDP_MAX 60000 /* bytes in an offer (one of a member's renegotiations fits a 64 KiB message) */
#endif
#ifndef CAMUS_SDP_MAX_MEDIA
#define CAMUS_SDP_MAX_MEDIA 64 /* m= sections in an offer (an SFU member: its own, and one per stream it receives) */
#endif
#define CAMUS_SDP_LINE_MAX 2048 /* bytes in one line of an offer */
#define CAMUS_SDP_UFRAG_MAX 256 /* characters in an ice-ufrag or ice-pwd (RFC 8839) */
#ifndef CAMUS_SCTP_PORT
#define CAMUS_SCTP_PORT 5000 /* our SCTP port, and the peer's when its offer names none (RFC 8841) */
#endif
#ifndef CAMUS_PEER_ADDRS
#define CAMUS_PEER_ADDRS 4 /* remote addresses one session may use at once (IPv4, IPv6, after a NAT rebinding) */
#endif
#ifndef CAMUS_MAX_CANDIDATES
#define CAMUS_MAX_CANDIDATES 8 /* host candidates the server offers (its addresses, then --public-ip) */
#endif
#ifndef CAMUS_EARLY_DATAGRAMS
#define CAMUS_EARLY_DATAGRAMS 8 /* DTLS datagrams kept from addresses whose ICE check has not come yet */
#endif
#ifndef CAMUS_EARLY_MS
#define CAMUS_EARLY_MS 5000 /* ms such a datagram is kept */
#endif
#ifndef CAMUS_PROBE_MS
#define CAMUS_PROBE_MS 1000 /* ms between our checks to an address that has not shown it receives */
#endif
#ifndef CAMUS_UDP_BATCH
#define CAMUS_UDP_BATCH 16 /* datagrams in one recvmmsg() or sendmmsg() */
#endif
#ifndef CAMUS_UDP_RCVBUF
#define CAMUS_UDP_RCVBUF (1 << 20) /* bytes the kernel may queue for us (it doubles it; capped at net.core.rmem_max): a \
                                      burst of media while a loop turn is busy waits instead of being dropped */
#endif
#ifndef CAMUS_UDP_READS
#define CAMUS_UDP_READS 256 /* datagrams read in one loop turn, so that TCP clients get their turn */
#endif
#ifndef CAMUS_UDP_DATAGRAM_MAX
#define CAMUS_UDP_DATAGRAM_MAX 2048 /* bytes read of a datagram: larger ones are none of ours */
#endif
#ifndef CAMUS_HTTP_READS
#define CAMUS_HTTP_READS 16 /* reads of 16 KiB from one connection in one loop turn */
#endif
#ifndef CAMUS_ACCEPTS
#define CAMUS_ACCEPTS 64 /* connections accepted in one loop turn */
#endif
#ifndef CAMUS_DTLS_READS
#define CAMUS_DTLS_READS 64 /* records read from one DTLS session in one go */
#endif
#ifndef CAMUS_RATE_WINDOW_MS
#define CAMUS_RATE_WINDOW_MS 60000 /* ms: the window of the per-address and per-room counters */
#endif
#ifndef CAMUS_SRTP_SSRCS
#define CAMUS_SRTP_SSRCS 32 /* SSRCs one direction of an SRTP session keeps state for (rollover counter, replay window) */
#endif
#ifndef CAMUS_MEDIA_MAX
#define CAMUS_MEDIA_MAX 1400 /* bytes in an RTP or RTCP packet we forward or send, SRTP tag included */
#endif
#ifndef CAMUS_SFU_TRACKS
#define CAMUS_SFU_TRACKS 4 /* streams one member may publish (microphone, camera, screen, one spare) */
#endif
#ifndef CAMUS_SFU_SUBS
#define CAMUS_SFU_SUBS 48 /* streams one member may receive (its offer's receiving sections) */
#endif
#ifndef CAMUS_NACK_SLOTS
#define CAMUS_NACK_SLOTS 256 /* packets of a published video stream kept for retransmission (256 x 1.3 KiB; divides 65536) */
#endif
#ifndef CAMUS_MAX_BITRATE
#define CAMUS_MAX_BITRATE 2500 /* kbit/s a publisher's video is steered to at most (REMB); --max-bitrate */
#endif
#ifndef CAMUS_PUBLISH_PPS
#define CAMUS_PUBLISH_PPS 2000 /* packets a second one member may publish, all streams together */
#endif
#ifndef CAMUS_PLI_MS
#define CAMUS_PLI_MS 300 /* ms between keyframe requests sent to one publisher's stream */
#endif
#ifndef CAMUS_RTCP_MS
#define CAMUS_RTCP_MS 1000 /* ms between the receiver reports (and REMB) sent to each publisher */
#endif
#ifndef CAMUS_TIMER_GRAIN_MS
#define CAMUS_TIMER_GRAIN_MS 1000 /* ms: deadlines counted in seconds (consent, pings) are rounded up to this, to share wake-ups */
#endif
#ifndef CAMUS_TIMERS_PER_TURN
#define CAMUS_TIMERS_PER_TURN 100000 /* timers fired in one loop turn at most */
#endif

#ifndef CAMUS_TURN_ALLOCATIONS
#define CAMUS_TURN_ALLOCATIONS 256 /* TURN allocations at once (as many as the default --turn-ports has ports) */
#endif
#ifndef CAMUS_TURN_PER_HOST
#define CAMUS_TURN_PER_HOST 32 /* of them from one address (a household or an office behind one NAT) */
#endif
#ifndef CAMUS_TURN_PER_MEMBER
#define CAMUS_TURN_PER_MEMBER 12 /* of them on one member's credentials: UDP, TCP and TLS to each of 4 peers */
#endif
#ifndef CAMUS_TURN_PERMISSIONS
#define CAMUS_TURN_PERMISSIONS 8 /* peers an allocation may talk to at once */
#endif
#ifndef CAMUS_TURN_CHANNELS
#define CAMUS_TURN_CHANNELS 8 /* channels bound on an allocation */
#endif
#ifndef CAMUS_TURN_KBPS
#define CAMUS_TURN_KBPS 10000 /* kbit/s one allocation relays, both ways together; more is dropped */
#endif
#ifndef CAMUS_TURN_LIFETIME
#define CAMUS_TURN_LIFETIME 3600 /* s an allocation may ask to live between refreshes */
#endif
#ifndef CAMUS_TURN_TTL
#define CAMUS_TURN_TTL 43200 /* s the TURN credentials a member gets are good for */
#endif
#ifndef CAMUS_TURN_PORT_MIN
#define CAMUS_TURN_PORT_MIN 49152 /* default --turn-ports */
#define CAMUS_TURN_PORT_MAX 49407
#endif

/* --small: the caps for a router or a board with little memory, so that everything they allow at once
 * fits in 32 MB with room to spare (a room of 8, and 8 more sessions): fewer sessions, handshakes,
 * connections, rooms and relays; shorter retransmission caches; smaller SCTP, ICE-TCP and UDP queues. */
#ifndef CAMUS_SMALL_PEERS
#define CAMUS_SMALL_PEERS 16
#endif
#ifndef CAMUS_SMALL_HANDSHAKES
#define CAMUS_SMALL_HANDSHAKES 8
#endif
#ifndef CAMUS_SMALL_CONNECTIONS
#define CAMUS_SMALL_CONNECTIONS 48
#endif
#ifndef CAMUS_SMALL_ROOMS
#define CAMUS_SMALL_ROOMS 16
#endif
#ifndef CAMUS_SMALL_TURN_ALLOCATIONS
#define CAMUS_SMALL_TURN_ALLOCATIONS 16
#endif
#ifndef CAMUS_SMALL_NACK_SLOTS
#define CAMUS_SMALL_NACK_SLOTS 128 /* about 1.3 s of a 1 Mbit/s camera */
#endif
#ifndef CAMUS_SMALL_SCTP_BUF
#define CAMUS_SMALL_SCTP_BUF (128 << 10) /* each way, per session (usrsctp's own default is larger) */
#endif
#ifndef CAMUS_SMALL_ICE_TCP_MAX_OUT
#define CAMUS_SMALL_ICE_TCP_MAX_OUT (64 << 10)
#endif
#ifndef CAMUS_SMALL_UDP_RCVBUF
#define CAMUS_SMALL_UDP_RCVBUF (256 << 10)
#endif

/* Defaults of struct camus_config (camus_config_init) and the bounds camus_new() holds them to. */
#ifndef CAMUS_PORT
#define CAMUS_PORT 5000 /* HTTP(S) port, and the UDP port's number unless set */
#endif
#ifndef CAMUS_ROOMS_SAVE_MS
#define CAMUS_ROOMS_SAVE_MS 60000 /* ms at most between a room's activity and the file saying so */
#endif
#ifndef CAMUS_ROOM_EXPIRY_SEC
#define CAMUS_ROOM_EXPIRY_SEC 3600 /* s an empty room lives */
#endif
#ifndef CAMUS_MAX_CONNECTIONS
#define CAMUS_MAX_CONNECTIONS 1000 /* HTTP connections at once */
#endif
#define CAMUS_MAX_CONNECTIONS_LIMIT 65536 /* the most --max-connections may ask for */
#ifndef CAMUS_REQUEST_TIMEOUT_SEC
#define CAMUS_REQUEST_TIMEOUT_SEC 10 /* s to send one whole request */
#endif
#ifndef CAMUS_IDLE_TIMEOUT_SEC
#define CAMUS_IDLE_TIMEOUT_SEC 60 /* s an idle keep-alive connection is kept */
#endif
#ifndef CAMUS_MSG_RATE
#define CAMUS_MSG_RATE 50 /* messages a second one client may send */
#endif

/* ----------------------------------------------------------------- platform
 * Camus builds on any POSIX system.  On Linux it uses a few calls that save
 * system calls or memory; elsewhere, or built with -DCAMUS_PORTABLE (make
 * portable), the POSIX fallbacks beside them:
 *   recvmmsg, sendmmsg            recvfrom, sendto: one datagram a call
 *   accept4, pipe2, SOCK_NONBLOCK accept, pipe, socket, then fcntl
 *   malloc_trim (glibc)           nothing: freed memory stays with the process
 */
#if defined(__linux__) && !defined(CAMUS_PORTABLE)
#define HAVE_MMSG 1
#define HAVE_ACCEPT4 1
#define HAVE_PIPE2 1
#define HAVE_SOCK_FLAGS 1
#else
#define HAVE_MMSG 0
#define HAVE_ACCEPT4 0
#define HAVE_PIPE2 0
#define HAVE_SOCK_FLAGS 0
#endif
#if defined(__GLIBC__) && !defined(CAMUS_PORTABLE)
#include <malloc.h>
#define HAVE_MALLOC_TRIM 1
#else
#define HAVE_MALLOC_TRIM 0
#endif

/* ================================================================ UTILITIES ================================================================= */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* --- logging: one line per event on stderr, "HH:MM:SS.mmm LEVEL who: text", or
 * with --log-format json one object a line, {"time", "level", "msg"}, for log
 * collectors.  stderr is the process's: so is the format (log_json). --- */

static bool log_json;

static void log_line(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(int level, const char *fmt, ...) {
  static const char *names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"}, *json_names[] = {"error", "warn", "info", "debug"};
  char text[1024], line[2 * sizeof text + 96];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  size_t tl = m < 0 ? 0 : MIN((size_t)m, sizeof text - 1), len;
  if (!log_json) {
    len = (size_t)snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                           ts.tv_nsec / 1000000, names[level], text);
  } else {
    len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":\"",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                           ts.tv_nsec / 1000000, json_names[level]);
    for (size_t i = 0; i < tl && len + 8 < sizeof line; i++) { /* what a message holds was checked UTF-8, or is ours */
      unsigned char ch = (unsigned char)text[i];
      if (ch == '"' || ch == '\\')
        line[len++] = '\\', line[len++] = (char)ch;
      else if (ch < 0x20 || ch == 0x7f)
        len += (size_t)snprintf(line + len, sizeof line - len, "\\u%04x", ch);
      else
        line[len++] = (char)ch;
    }
    memcpy(line + len, "\"}\n", 3);
    len += 3;
  }
  (void)!write(2, line, MIN(len, sizeof line));
}

/* The level is each server's own (its config's log_level); a layer logs
 * through its own object: LOG_D(s, ...), LOG_D(c->srv, ...), LOG_D(r->host, ...),
 * each of which has an int log_level. */
#ifndef CAMUS_LOG_MAX
#define CAMUS_LOG_MAX CAMUS_LOG_DEBUG /* build with a lower level to compile the others out */
#endif
#define LOG(who, level, ...)                                                                                 \
  do {                                                                                                       \
    if ((level) <= CAMUS_LOG_MAX && (int)(level) <= (who)->log_level) log_line((level), __VA_ARGS__);       \
  } while (0)
#define LOG_E(who, ...) LOG(who, CAMUS_LOG_ERROR, __VA_ARGS__)
#define LOG_W(who, ...) LOG(who, CAMUS_LOG_WARN, __VA_ARGS__)
#define LOG_I(who, ...) LOG(who, CAMUS_LOG_INFO, __VA_ARGS__)
#define LOG_D(who, ...) LOG(who, CAMUS_LOG_DEBUG, __VA_ARGS__)

/* --- time --- */

/* Milliseconds on the monotonic clock. */
static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Microseconds on the monotonic clock, to measure work. */
static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A token bucket refilled at rate a second, holding burst at most: takes cost if there. */
static bool bucket_take(double *tokens, uint64_t *at, double rate, double burst, double cost, uint64_t now) {
  double add = (double)(now - *at) * rate / 1000.0;
  *at = now;
  *tokens = *tokens + add > burst ? burst : *tokens + add;
  if (*tokens < cost) return false;
  *tokens -= cost;
  return true;
}

/* --- string views: {p, n}, valid as long as the bytes they point into --- */

struct str {
  const char *p;
  size_t n;
};

static bool str_eq(struct str s, const char *lit) { return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0; }

static bool str_ieq(struct str s, const char *lit) {
  size_t n = strlen(lit);
  if (s.n != n) return false;
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)s.p[i]) != tolower((unsigned char)lit[i])) return false;
  return true;
}

static bool str_starts(struct str s, const char *lit) {
  size_t n = strlen(lit);
  return s.n >= n && memcmp(s.p, lit, n) == 0;
}

static bool str_istarts(struct str s, const char *lit) {
  size_t n = strlen(lit);
  return s.n >= n && str_ieq((struct str){s.p, n}, lit);
}

/* Whether the comma-separated header value contains token (case-insensitive). */
static bool str_has_token(struct str s, const char *token) {
  size_t i = 0;
  while (i < s.n) {
    while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ',')) i++;
    size_t start = i;
    while (i < s.n && s.p[i] != ',') i++;
    size_t end = i;
    while (end > start && (s.p[end - 1] == ' ' || s.p[end - 1] == '\t')) end--;
    if (str_ieq((struct str){s.p + start, end - start}, token)) return true;
  }
  return false;
}

/* --- growable byte buffers with a hard cap: on overflow or OOM .err is set and appends stop --- */

struct buf {
  char *p;
  size_t len, cap, max; /* max 0 = no cap */
  bool err;
};

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->err) return;
  if (b->max && b->len + n > b->max) {
    b->err = true;
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + n + 1) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->err = true;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_addf(struct buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->err = true;
  } else if ((size_t)n < sizeof tmp) {
    buf_add(b, tmp, (size_t)n);
  } else {
    char *big = malloc((size_t)n + 1);
    if (!big) {
      b->err = true;
      return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_add(b, big, (size_t)n);
    free(big);
  }
}

/* Drops the first n bytes. */
static void buf_consume(struct buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
  }
  if (b->p) b->p[b->len] = 0;
}

static void buf_free(struct buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->err = false;
}

/* --- big-endian byte readers and writers for wire formats --- */

static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* --- hex --- */

static void hex_encode(char *out, const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = 0;
}

static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads 2n hex digits of s into out[0..n).  Returns false if one is not. */
static bool hex_decode(const char *s, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi = hex_value(s[2 * i]), lo = hi < 0 ? -1 : hex_value(s[2 * i + 1]);
    if (lo < 0) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

/* Constant-time comparison of two equal-length secrets. */
static bool secret_eq(const void *a, const void *b, size_t n) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t d = 0;
  for (size_t i = 0; i < n; i++) d |= x[i] ^ y[i];
  return d == 0;
}

/* --- socket addresses --- */

/* "1.2.3.4" or "[::1]" (bracketed when with_brackets) into out. */
static void addr_ip(const struct sockaddr_storage *sa, char *out, size_t cap, bool with_brackets) {
  char tmp[INET6_ADDRSTRLEN] = "?";
  if (sa->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, tmp, sizeof tmp);
    snprintf(out, cap, "%s", tmp);
  } else {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, tmp, sizeof tmp);
    snprintf(out, cap, with_brackets ? "[%s]" : "%s", tmp);
  }
}

static int addr_port(const struct sockaddr_storage *sa) {
  return sa->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port)
                                  : ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

static socklen_t addr_len(const struct sockaddr_storage *sa) {
  return sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* A peer reached over a TCP connection (ICE-TCP) rather than by datagrams:
 * marked in the last byte of its storage, which no address uses, so that the
 * session layer keeps, compares and hands down such a path like any other. */
#define ADDR_TCP_TAG 'T'
static void addr_set_tcp(struct sockaddr_storage *sa) { ((uint8_t *)sa)[sizeof *sa - 1] = ADDR_TCP_TAG; }
static bool addr_is_tcp(const struct sockaddr_storage *sa) { return ((const uint8_t *)sa)[sizeof *sa - 1] == ADDR_TCP_TAG; }

/* sa as the address it is: an IPv4 peer seen through a dual-stack socket as
 * a mapped IPv6 address becomes IPv4.  Returns sa itself or canon. */
static const struct sockaddr_storage *addr_canonical(const struct sockaddr_storage *sa, struct sockaddr_storage *canon) {
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)sa;
  if (sa->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return sa;
  struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)canon;
  memset(canon, 0, sizeof *canon);
  v4->sin_family = AF_INET;
  v4->sin_port = v6->sin6_port;
  memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  return canon;
}

/* Who an address belongs to, for per-address limits: the IPv4 address, or
 * the /64 prefix of an IPv6 one (a host gets a whole /64).  IPv4-mapped
 * IPv6 addresses count as IPv4. */
static void host_key(const struct sockaddr_storage *sa, uint8_t key[16]) {
  memset(key, 0, 16);
  if (sa->ss_family == AF_INET) {
    memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return;
  }
  const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(a))
    memcpy(key, &a->s6_addr[12], 4);
  else
    memcpy(key + 4, a->s6_addr, 8);
}

static int host_cmp(const void *a, const void *b) { return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, 16); }

/* Fair shares of a server-wide table whose n entries belong to the host keys
 * keys[0..n-1] (sorted in place): returns the host key that holds the most
 * entries (NULL if n is 0) with its count in *most, and host's count in *mine.
 * The tables shed the heaviest holder's entries first. */
static const uint8_t *host_heaviest(const uint8_t **keys, unsigned n, const uint8_t host[16], unsigned *most,
                                    unsigned *mine) {
  const uint8_t *heavy = NULL;
  *most = *mine = 0;
  qsort(keys, n, sizeof *keys, host_cmp);
  for (unsigned i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && !memcmp(keys[j], keys[i], 16);) j++;
    if (j - i > *most) *most = j - i, heavy = keys[i];
    if (!memcmp(keys[i], host, 16)) *mine = j - i;
  }
  return heavy;
}

/* Parses a numeric IPv4 or IPv6 address with a port.  Returns 0 or -1. */
static int addr_parse(const char *host, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)out;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return 0;
  }
  return -1;
}

/* Parses "HOST:PORT" ("[v6]:PORT" for IPv6), numeric.  Returns 0 or -1. */
static int addr_parse_hostport(const char *v, struct sockaddr_storage *out) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon = strrchr(v, ':'), *h = v;
  size_t hl = colon ? (size_t)(colon - v) : 0;
  if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') h++, hl -= 2;
  char *end;
  errno = 0;
  long port = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || hl == 0 || hl >= sizeof host || !colon[1] || *end || errno || port < 0 || port > 65535) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  return addr_parse(host, (int)port, out);
}

/* --- address ranges (CIDR): for the TURN relay's policy and for who may see /metrics --- */

struct cidr {
  uint8_t ip[16]; /* IPv4 in the first 4 bytes */
  int family, bits;
};

/* An address's family and bytes, an IPv4-mapped IPv6 address as IPv4. */
static int addr_bytes(const struct sockaddr_storage *sa, uint8_t ip[16]) {
  struct sockaddr_storage canon;
  sa = addr_canonical(sa, &canon);
  memset(ip, 0, 16);
  if (sa->ss_family == AF_INET) {
    memcpy(ip, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return AF_INET;
  }
  memcpy(ip, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
  return AF_INET6;
}

/* Whether ip (4 or 16 bytes, as addr_bytes() gives them) is in c. */
static bool cidr_has(const struct cidr *c, int family, const uint8_t *ip) {
  if (c->family != family) return false;
  int full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->ip, ip, (size_t)full) != 0) return false;
  return !rest || ((c->ip[full] ^ ip[full]) & (0xff << (8 - rest))) == 0;
}

/* Parses "ADDR/BITS" (or a bare address: all its bits).  Returns 0 or -1. */
static int cidr_parse(const char *text, struct cidr *c) {
  char host[INET6_ADDRSTRLEN];
  const char *slash = strchr(text, '/');
  size_t hl = slash ? (size_t)(slash - text) : strlen(text);
  if (hl == 0 || hl >= sizeof host) return -1;
  memcpy(host, text, hl);
  host[hl] = 0;
  memset(c, 0, sizeof *c);
  if (inet_pton(AF_INET, host, c->ip) == 1)
    c->family = AF_INET, c->bits = 32;
  else if (inet_pton(AF_INET6, host, c->ip) == 1)
    c->family = AF_INET6, c->bits = 128;
  else
    return -1;
  if (slash) {
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || b < 0 || b > c->bits) return -1;
    c->bits = (int)b;
  }
  return 0;
}

/* An address as a fixed key for hashing and comparing: family, port, address, and whether it is a TCP path. */
struct addr_key {
  uint8_t b[20];
};

static struct addr_key addr_key(const struct sockaddr_storage *sa) {
  struct addr_key k = {{0}};
  k.b[0] = (uint8_t)sa->ss_family;
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const void *)sa;
    memcpy(k.b + 1, &v4->sin_port, 2);
    memcpy(k.b + 3, &v4->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *v6 = (const void *)sa;
    memcpy(k.b + 1, &v6->sin6_port, 2);
    memcpy(k.b + 3, &v6->sin6_addr, 16);
  }
  k.b[19] = addr_is_tcp(sa); /* after the longest address: 3 + 16 bytes */
  return k;
}

static bool addr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  struct addr_key x = addr_key(a), y = addr_key(b);
  return memcmp(&x, &y, sizeof x) == 0;
}

static uint32_t addr_hash(const struct addr_key *k) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < sizeof k->b; i++) h = (h ^ k->b[i]) * 16777619u;
  return h;
}

/* Address -> anything (a session, a TURN allocation): an open-addressing hash table, linear probing. */
struct addr_map {
  struct addr_entry {
    struct addr_key k;
    void *p; /* NULL: empty */
  } *e;
  uint32_t mask, n;
};

static void *amap_get(const struct addr_map *m, const struct sockaddr_storage *sa) {
  if (!m->e) return NULL;
  struct addr_key k = addr_key(sa);
  for (uint32_t i = addr_hash(&k) & m->mask;; i = (i + 1) & m->mask) {
    if (!m->e[i].p) return NULL;
    if (memcmp(&m->e[i].k, &k, sizeof k) == 0) return m->e[i].p;
  }
}

static int amap_put(struct addr_map *m, const struct sockaddr_storage *sa, void *p) {
  if ((m->n + 1) * 2 > m->mask + 1 || !m->e) {
    uint32_t cap = m->e ? 2 * (m->mask + 1) : 64;
    struct addr_entry *old = m->e;
    uint32_t old_cap = m->e ? m->mask + 1 : 0;
    m->e = calloc(cap, sizeof *m->e);
    if (!m->e) {
      m->e = old;
      return -1;
    }
    m->mask = cap - 1;
    m->n = 0;
    for (uint32_t i = 0; i < old_cap; i++) {
      if (!old[i].p) continue;
      uint32_t j = addr_hash(&old[i].k) & m->mask;
      while (m->e[j].p) j = (j + 1) & m->mask;
      m->e[j] = old[i];
      m->n++;
    }
    free(old);
  }
  struct addr_key k = addr_key(sa);
  uint32_t i = addr_hash(&k) & m->mask;
  while (m->e[i].p && memcmp(&m->e[i].k, &k, sizeof k) != 0) i = (i + 1) & m->mask;
  if (!m->e[i].p) m->n++;
  m->e[i].k = k;
  m->e[i].p = p;
  return 0;
}

static void amap_del(struct addr_map *m, const struct sockaddr_storage *sa) {
  if (!m->e) return;
  struct addr_key k = addr_key(sa);
  uint32_t i = addr_hash(&k) & m->mask;
  while (m->e[i].p && memcmp(&m->e[i].k, &k, sizeof k) != 0) i = (i + 1) & m->mask;
  if (!m->e[i].p) return;
  m->e[i].p = NULL;
  m->n--;
  /* Move later entries of the same run back, so that no lookup stops early. */
  for (uint32_t j = (i + 1) & m->mask; m->e[j].p; j = (j + 1) & m->mask) {
    uint32_t home = addr_hash(&m->e[j].k) & m->mask;
    if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
      m->e[i] = m->e[j];
      m->e[j].p = NULL;
      i = j;
    }
  }
}

/* --- descriptors, through the platform switch (see CONFIG) --- */

#if !HAVE_SOCK_FLAGS || !HAVE_ACCEPT4 || !HAVE_PIPE2
static int fd_nonblock_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return -1;
  return 0;
}
#endif

/* A non-blocking, close-on-exec socket. */
static int sys_socket(int family, int type) {
#if HAVE_SOCK_FLAGS
  return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = socket(family, type, 0);
  if (fd >= 0 && fd_nonblock_cloexec(fd) != 0) {
    close(fd);
    return -1;
  }
  return fd;
#endif
}

/* accept() giving a non-blocking, close-on-exec descriptor. */
static int sys_accept(int lfd, struct sockaddr_storage *addr, socklen_t *alen) {
#if HAVE_ACCEPT4
  return accept4(lfd, (struct sockaddr *)addr, alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = accept(lfd, (struct sockaddr *)addr, alen);
  if (fd >= 0 && fd_nonblock_cloexec(fd) != 0) {
    close(fd);
    return -1;
  }
  return fd;
#endif
}

/* A pipe whose ends are non-blocking and close-on-exec. */
static int sys_pipe(int fds[2]) {
#if HAVE_PIPE2
  return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
  if (pipe(fds) != 0) return -1;
  if (fd_nonblock_cloexec(fds[0]) != 0 || fd_nonblock_cloexec(fds[1]) != 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  return 0;
#endif
}

/* Hands memory freed by many departed clients back to the system, where the C library can. */
static void sys_trim(void) {
#if HAVE_MALLOC_TRIM
  malloc_trim(0);
#endif
}

/* ================================================================== CODECS ================================================================== */

/* Pure parsers and writers over bytes: no allocation, no I/O, explicit bounds.
 * Views into the input are valid as long as the input is. */

/* -------------------------------------------------------------------- JSON */

/* A strict RFC 8259 parser into a caller-supplied token array (no
 * allocation), and a writer that always produces valid JSON. */

enum json_type { JSON_NULL = 1, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };
enum { JSON_ERR_SYNTAX = -1, JSON_ERR_NOMEM = -2, JSON_ERR_DEPTH = -3, JSON_ERR_DUPLICATE = -4 };

/* One value.  Objects are followed by their members' key and value tokens;
 * `end` is the index just past the value's last descendant. */
struct json_tok {
  uint8_t type;
  uint32_t start, len; /* bytes of the input; strings: between the quotes, still escaped */
  uint32_t n;          /* arrays: elements; objects: members; keys: a hash of their unescaped text */
  uint32_t end;
};

/* Decodes one UTF-8 sequence at p (strict: shortest form, no surrogates, at
 * most U+10FFFF).  Returns its length and sets *cp, or 0 if invalid. */
static int utf8_decode(const uint8_t *p, const uint8_t *end, uint32_t *cp) {
  uint32_t c = p[0];
  int n;
  uint32_t min;
  if (c < 0x80) return *cp = c, 1;
  if ((c & 0xe0) == 0xc0) n = 2, c &= 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0) n = 3, c &= 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0) n = 4, c &= 0x07, min = 0x10000;
  else return 0;
  if (end - p < n) return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = c << 6 | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return n;
}

static bool utf8_valid(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s, *end = p + len;
  uint32_t cp;
  while (p < end) {
    int n = utf8_decode(p, end, &cp);
    if (!n) return false;
    p += n;
  }
  return true;
}

static size_t utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) return out[0] = (char)cp, 1;
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Four hex digits at p (p + 4 <= end checked by the caller); -1 if not hex. */
static long json_hex4(const char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value(p[i]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
}

/* Reads the escape at p (after the backslash).  Returns bytes consumed (after
 * the backslash) and the code point, or 0 if invalid. */
static int json_escape(const char *p, const char *end, uint32_t *cp) {
  if (p >= end) return 0;
  switch (*p) {
  case '"': *cp = '"'; return 1;
  case '\\': *cp = '\\'; return 1;
  case '/': *cp = '/'; return 1;
  case 'b': *cp = '\b'; return 1;
  case 'f': *cp = '\f'; return 1;
  case 'n': *cp = '\n'; return 1;
  case 'r': *cp = '\r'; return 1;
  case 't': *cp = '\t'; return 1;
  case 'u': break;
  default: return 0;
  }
  if (end - p < 5) return 0;
  long hi = json_hex4(p + 1);
  if (hi < 0 || (hi >= 0xdc00 && hi <= 0xdfff)) return 0;
  if (hi < 0xd800 || hi > 0xdbff) return *cp = (uint32_t)hi, 5;
  /* A high surrogate must be followed by an escaped low one. */
  if (end - p < 11 || p[5] != '\\' || p[6] != 'u') return 0;
  long lo = json_hex4(p + 7);
  if (lo < 0xdc00 || lo > 0xdfff) return 0;
  *cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
  return 11;
}

struct json_parser {
  const char *s, *p, *end;
  struct json_tok *t;
  int n, max;
};

static void json_ws(struct json_parser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int json_new(struct json_parser *j, uint8_t type, const char *start) {
  if (j->n == j->max) return JSON_ERR_NOMEM;
  struct json_tok *t = &j->t[j->n];
  *t = (struct json_tok){type, (uint32_t)(start - j->s), 0, 0, 0};
  return j->n++;
}

static int json_string(struct json_parser *j) {
  const char *q = ++j->p; /* after the opening quote */
  while (q < j->end && *q != '"') {
    uint32_t cp;
    if (*q == '\\') {
      int n = json_escape(q + 1, j->end, &cp);
      if (!n) return JSON_ERR_SYNTAX;
      q += 1 + n;
    } else if ((unsigned char)*q < 0x20) {
      return JSON_ERR_SYNTAX;
    } else {
      int n = utf8_decode((const uint8_t *)q, (const uint8_t *)j->end, &cp);
      if (!n) return JSON_ERR_SYNTAX;
      q += n;
    }
  }
  if (q >= j->end) return JSON_ERR_SYNTAX;
  int i = json_new(j, JSON_STRING, j->p);
  if (i < 0) return i;
  j->t[i].len = (uint32_t)(q - j->p);
  j->t[i].end = (uint32_t)j->n;
  j->p = q + 1;
  return i;
}

static int json_number(struct json_parser *j) {
  const char *q = j->p, *e = j->end;
  if (q < e && *q == '-') q++;
  if (q < e && *q == '0') {
    q++;
  } else if (q < e && *q >= '1' && *q <= '9') {
    while (q < e && isdigit((unsigned char)*q)) q++;
  } else {
    return JSON_ERR_SYNTAX;
  }
  if (q < e && *q == '.') {
    if (++q >= e || !isdigit((unsigned char)*q)) return JSON_ERR_SYNTAX;
    while (q < e && isdigit((unsigned char)*q)) q++;
  }
  if (q < e && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < e && (*q == '+' || *q == '-')) q++;
    if (q >= e || !isdigit((unsigned char)*q)) return JSON_ERR_SYNTAX;
    while (q < e && isdigit((unsigned char)*q)) q++;
  }
  int i = json_new(j, JSON_NUMBER, j->p);
  if (i < 0) return i;
  j->t[i].len = (uint32_t)(q - j->p);
  j->t[i].end = (uint32_t)j->n;
  j->p = q;
  return i;
}

/* The next code point of a string token's text at *p (escapes already
 * validated by the parser), advancing *p. */
static uint32_t json_next_cp(const char **p, const char *end) {
  uint32_t cp = 0;
  if (**p == '\\') {
    *p += 1 + json_escape(*p + 1, end, &cp);
  } else {
    int n = utf8_decode((const uint8_t *)*p, (const uint8_t *)end, &cp);
    *p += n ? n : 1;
  }
  return cp;
}

/* FNV-1a over the code points of string token k: keys that are equal once
 * unescaped ("a" and "\u0061") hash alike. */
static uint32_t json_key_hash(const char *s, const struct json_tok *k) {
  const char *p = s + k->start, *end = p + k->len;
  uint32_t h = 2166136261u;
  while (p < end) h = (h ^ json_next_cp(&p, end)) * 16777619u;
  return h;
}

static bool json_key_eq(const char *s, const struct json_tok *a, const struct json_tok *b) {
  const char *p = s + a->start, *pe = p + a->len, *q = s + b->start, *qe = q + b->len;
  if (a->len == b->len && memcmp(p, q, a->len) == 0) return true;
  while (p < pe && q < qe)
    if (json_next_cp(&p, pe) != json_next_cp(&q, qe)) return false;
  return p == pe && q == qe;
}

/* I-JSON (RFC 7493): an object may not name a member twice, since readers
 * disagree on which one counts.  Key k of object obj against its earlier keys. */
static bool json_key_unique(const struct json_parser *j, int obj, int k) {
  const struct json_tok *t = j->t;
  int i = obj + 1;
  for (uint32_t m = 0; m < t[obj].n; m++) {
    if (t[i].n == t[k].n && json_key_eq(j->s, &t[i], &t[k])) return false;
    i = (int)t[i + 1].end;
  }
  return true;
}

static int json_value(struct json_parser *j, int depth) {
  static const struct {
    const char *word;
    uint8_t type;
  } words[] = {{"null", JSON_NULL}, {"true", JSON_TRUE}, {"false", JSON_FALSE}};
  json_ws(j);
  if (j->p >= j->end) return JSON_ERR_SYNTAX;
  char c = *j->p;
  if (c == '"') return json_string(j);
  if (c == '-' || isdigit((unsigned char)c)) return json_number(j);
  if (c != '[' && c != '{') {
    for (size_t k = 0; k < COUNT(words); k++) {
      size_t wl = strlen(words[k].word);
      if ((size_t)(j->end - j->p) >= wl && memcmp(j->p, words[k].word, wl) == 0) {
        int i = json_new(j, words[k].type, j->p);
        if (i < 0) return i;
        j->t[i].len = (uint32_t)wl;
        j->t[i].end = (uint32_t)j->n;
        j->p += wl;
        return i;
      }
    }
    return JSON_ERR_SYNTAX;
  }
  if (depth >= CAMUS_JSON_MAX_DEPTH) return JSON_ERR_DEPTH;
  bool obj = c == '{';
  int i = json_new(j, obj ? JSON_OBJECT : JSON_ARRAY, j->p);
  if (i < 0) return i;
  j->p++;
  json_ws(j);
  if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
    j->p++;
  } else {
    for (;;) {
      if (obj) {
        json_ws(j);
        if (j->p >= j->end || *j->p != '"') return JSON_ERR_SYNTAX;
        int k = json_string(j);
        if (k < 0) return k;
        j->t[k].n = json_key_hash(j->s, &j->t[k]);
        if (!json_key_unique(j, i, k)) return JSON_ERR_DUPLICATE;
        json_ws(j);
        if (j->p >= j->end || *j->p != ':') return JSON_ERR_SYNTAX;
        j->p++;
      }
      int v = json_value(j, depth + 1);
      if (v < 0) return v;
      j->t[i].n++;
      json_ws(j);
      if (j->p >= j->end) return JSON_ERR_SYNTAX;
      if (*j->p == ',') {
        j->p++;
        continue;
      }
      if (*j->p != (obj ? '}' : ']')) return JSON_ERR_SYNTAX;
      j->p++;
      break;
    }
  }
  j->t[i].len = (uint32_t)(j->p - j->s) - j->t[i].start;
  j->t[i].end = (uint32_t)j->n;
  return i;
}

/* Parses the whole input as one JSON value.  Returns the number of tokens,
 * or JSON_ERR_SYNTAX, JSON_ERR_NOMEM (more than max), JSON_ERR_DEPTH or
 * JSON_ERR_DUPLICATE (an object names a member twice). */
static int json_parse(const char *s, size_t len, struct json_tok *t, int max) {
  struct json_parser j = {s, s, s + len, t, 0, max};
  if (len > UINT32_MAX / 2) return JSON_ERR_NOMEM;
  int r = json_value(&j, 0);
  if (r < 0) return r;
  json_ws(&j);
  return j.p == j.end ? j.n : JSON_ERR_SYNTAX;
}

/* Unescapes string token i into out (NUL-terminated); its length, or -1 if
 * i is not a string or does not fit in cap - 1 bytes. */
static int json_str(const char *s, const struct json_tok *t, int i, char *out, size_t cap) {
  if (t[i].type != JSON_STRING || cap == 0) return -1;
  const char *p = s + t[i].start, *end = p + t[i].len;
  size_t o = 0;
  while (p < end) {
    char tmp[4];
    size_t n = 1;
    if (*p == '\\') {
      uint32_t cp = 0;
      int k = json_escape(p + 1, end, &cp); /* valid: the parser checked */
      n = utf8_encode(cp, tmp);
      p += 1 + k;
    } else {
      tmp[0] = *p++;
    }
    if (o + n >= cap) return -1;
    memcpy(out + o, tmp, n);
    o += n;
  }
  out[o] = 0;
  return (int)o;
}

/* Index of the value of member key in object obj, or -1 (the parser let no key appear twice). */
static int json_find(const char *s, const struct json_tok *t, int obj, const char *key) {
  if (t[obj].type != JSON_OBJECT) return -1;
  size_t klen = strlen(key);
  int i = obj + 1;
  for (uint32_t m = 0; m < t[obj].n; m++) {
    char tmp[64];
    if (t[i].len == klen && memcmp(s + t[i].start, key, klen) == 0) return i + 1;
    if (memchr(s + t[i].start, '\\', t[i].len) && json_str(s, t, i, tmp, sizeof tmp) == (int)klen &&
        memcmp(tmp, key, klen) == 0)
      return i + 1;
    i = (int)t[i + 1].end;
  }
  return -1;
}

/* The integer value of number token i, if it has no fraction or exponent and fits. */
static bool json_int(const char *s, const struct json_tok *t, int i, long long *out) {
  if (t[i].type != JSON_NUMBER) return false;
  const char *p = s + t[i].start, *end = p + t[i].len;
  bool neg = *p == '-';
  if (neg) p++;
  unsigned long long v = 0;
  for (; p < end; p++) {
    if (!isdigit((unsigned char)*p)) return false;
    if (v > (ULLONG_MAX - 9) / 10) return false;
    v = v * 10 + (unsigned)(*p - '0');
  }
  if (v > (unsigned long long)LLONG_MAX + (neg ? 1 : 0)) return false;
  *out = neg ? (long long)(0 - v) : (long long)v;
  return true;
}

/* Appends s as a JSON string literal.  Escapes what JSON requires plus < > &
 * and U+2028/2029 (safe inside HTML and scripts); invalid UTF-8 becomes U+FFFD. */
static void json_write_str(struct buf *b, const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s, *end = p + len, *run = p;
  buf_add(b, "\"", 1);
  while (p < end) {
    uint32_t cp;
    int n = utf8_decode(p, end, &cp);
    const char *esc = NULL;
    char tmp[8];
    if (n == 0) {
      esc = "\xef\xbf\xbd";
      n = 1;
    } else if (cp == '"') {
      esc = "\\\"";
    } else if (cp == '\\') {
      esc = "\\\\";
    } else if (cp == '\n') {
      esc = "\\n";
    } else if (cp == '\r') {
      esc = "\\r";
    } else if (cp == '\t') {
      esc = "\\t";
    } else if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029) {
      snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
      esc = tmp;
    }
    if (esc) {
      buf_add(b, run, (size_t)(p - run));
      buf_adds(b, esc);
      run = p + n;
    }
    p += n;
  }
  buf_add(b, run, (size_t)(p - run));
  buf_add(b, "\"", 1);
}

/* --------------------------------------------------------------- HTTP/1.1 */

/* A parsed request head.  The views point into the connection's input buffer
 * and are valid until the request is consumed. */
struct http_header {
  struct str name, value;
};

struct http_req {
  struct str method, target, path, query, body;
  int minor;                 /* HTTP/1.x */
  struct http_header h[CAMUS_HTTP_MAX_HEADERS];
  int nh;
  long long content_length;  /* -1 when absent */
  bool keep_alive;
};

static bool http_tchar(int c) {
  return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Finds the end of the line starting at p (exclusive of CRLF / LF); returns the
 * line length and sets *eol_len, or -1 if no line end lies before end. */
static long http_line(const char *p, const char *end, int *eol_len) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl) return -1;
  *eol_len = (nl > p && nl[-1] == '\r') ? 2 : 1;
  return (long)(nl - p) - (*eol_len - 1);
}

/* The value of a request header, or an empty view whose p is NULL. */
static struct str http_header(const struct http_req *r, const char *name) {
  for (int i = 0; i < r->nh; i++)
    if (str_ieq(r->h[i].name, name)) return r->h[i].value;
  return (struct str){NULL, 0};
}

/* Parses a request head.  Returns its length in bytes (body not included),
 * 0 if more bytes are needed, or minus an HTTP status for a request that must
 * be refused (-400 malformed, -414 line too long, -431 headers too large,
 * -501 unsupported transfer coding). */
static int http_parse(const char *buf, size_t n, struct http_req *r) {
  const char *p = buf, *end = buf + n;
  int eol;
  memset(r, 0, sizeof *r);
  r->content_length = -1;

  long len = http_line(p, end, &eol);
  if (len < 0) return n > CAMUS_HTTP_MAX_LINE ? -414 : 0;
  if (len > CAMUS_HTTP_MAX_LINE) return -414;
  const char *le = p + len, *q = p;
  while (q < le && http_tchar((unsigned char)*q)) q++;
  if (q == p || q >= le || *q != ' ') return -400;
  r->method = (struct str){p, (size_t)(q - p)};
  const char *t = ++q;
  while (q < le && *q != ' ') {
    if ((unsigned char)*q <= 0x20 || *q == 0x7f) return -400;
    q++;
  }
  if (q == t || q >= le) return -400;
  r->target = (struct str){t, (size_t)(q - t)};
  q++;
  if (le - q != 8 || memcmp(q, "HTTP/1.", 7) != 0 || (q[7] != '0' && q[7] != '1')) return -400;
  r->minor = q[7] - '0';
  if (r->target.p[0] != '/') return -400;
  const char *qm = memchr(r->target.p, '?', r->target.n);
  r->path = (struct str){r->target.p, qm ? (size_t)(qm - r->target.p) : r->target.n};
  if (qm) r->query = (struct str){qm + 1, r->target.n - r->path.n - 1};
  r->keep_alive = r->minor == 1;
  p = le + eol;

  bool saw_te = false;
  for (;;) {
    if ((size_t)(p - buf) > CAMUS_HTTP_MAX_HEAD) return -431;
    len = http_line(p, end, &eol);
    if (len < 0) return n > CAMUS_HTTP_MAX_HEAD ? -431 : 0;
    if (len == 0) {
      p += eol;
      break;
    }
    if (r->nh == CAMUS_HTTP_MAX_HEADERS) return -431;
    le = p + len;
    q = p;
    while (q < le && http_tchar((unsigned char)*q)) q++;
    if (q == p || q >= le || *q != ':') return -400; /* no space before the colon, no obsolete folding */
    struct str name = {p, (size_t)(q - p)};
    q++;
    while (q < le && (*q == ' ' || *q == '\t')) q++;
    const char *ve = le;
    while (ve > q && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    for (const char *c = q; c < ve; c++)
      if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) return -400;
    struct str value = {q, (size_t)(ve - q)};
    /* Headers whose meaning a second copy would make ambiguous are refused twice. */
    static const char *const once[] = {"host", "origin", "content-type"};
    for (size_t k = 0; k < COUNT(once); k++)
      if (str_ieq(name, once[k]) && http_header(r, once[k]).p != NULL) return -400;
    r->h[r->nh++] = (struct http_header){name, value};
    if (str_ieq(name, "content-length")) {
      if (value.n == 0 || value.n > 18) return -400;
      long long v = 0;
      for (size_t i = 0; i < value.n; i++) {
        if (!isdigit((unsigned char)value.p[i])) return -400;
        v = v * 10 + (value.p[i] - '0');
      }
      if (r->content_length >= 0 && r->content_length != v) return -400;
      r->content_length = v;
    } else if (str_ieq(name, "transfer-encoding")) {
      saw_te = true;
    } else if (str_ieq(name, "connection")) {
      if (str_has_token(value, "close")) r->keep_alive = false;
      if (str_has_token(value, "keep-alive") && r->minor == 0) r->keep_alive = true;
    }
    p = le + eol;
  }
  if (saw_te) return r->content_length >= 0 ? -400 : -501;
  return (int)(p - buf);
}

static const char *http_reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 421: return "Misdirected Request";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

/* Decodes one application/x-www-form-urlencoded field into out (NUL-terminated).
 * Returns the decoded length, -1 if absent, -2 if malformed or too long. */
static int form_get(struct str body, const char *key, char *out, size_t cap) {
  size_t klen = strlen(key), i = 0;
  while (i < body.n) {
    size_t start = i;
    while (i < body.n && body.p[i] != '&') i++;
    struct str pair = {body.p + start, i - start};
    i++;
    if (pair.n < klen || memcmp(pair.p, key, klen) != 0 || (pair.n > klen && pair.p[klen] != '=')) continue;
    size_t o = 0;
    for (size_t j = klen + 1; j < pair.n; j++) {
      int c = (unsigned char)pair.p[j];
      if (c == '+') {
        c = ' ';
      } else if (c == '%') {
        if (j + 2 >= pair.n) return -2;
        int hi = hex_value(pair.p[j + 1]), lo = hex_value(pair.p[j + 2]);
        if (hi < 0 || lo < 0) return -2;
        c = hi << 4 | lo;
        j += 2;
      }
      if (o + 1 >= cap) return -2;
      out[o++] = (char)c;
    }
    out[o] = 0;
    return (int)o;
  }
  return -1;
}

/* -------------------------------------------------------------------- SDP */

/* The offer a browser POSTs, read defensively (bounded, any attribute order,
 * CRLF or LF), and the answer that mirrors its sections: the first data
 * channel section accepted in the form offered; audio and video sections as
 * the layer above plans them (struct sdp_plan: the SFU receives a member's
 * own streams and sends it the others'), every other one refused. */

enum sdp_setup { SDP_SETUP_NONE, SDP_SETUP_ACTPASS, SDP_SETUP_ACTIVE, SDP_SETUP_PASSIVE };
enum sdp_data { SDP_NOT_DATA, SDP_DATA_NEW, SDP_DATA_OLD }; /* webrtc-datachannel, or DTLS/SCTP + sctpmap */
enum sdp_dir { SDP_SENDRECV, SDP_SENDONLY, SDP_RECVONLY, SDP_INACTIVE }; /* as the offer's sender says */
enum sdp_kind { SDP_OTHER, SDP_AUDIO, SDP_VIDEO };
#define SDP_RTP_PROFILE "UDP/TLS/RTP/SAVPF"
#define SDP_MID_URI "urn:ietf:params:rtp-hdrext:sdes:mid"

struct sdp_media {
  char kind[16], proto[32], fmt[32], mid[33]; /* fmt: the first format only */
  int port;
  enum sdp_data data;
  int sctp_port;
  uint32_t max_message_size;
  /* audio and video (RTP) sections: */
  enum sdp_kind media;
  enum sdp_dir dir;
  bool rtcp_mux, rtcp_rsize, bundle_only;
  int pt;                      /* payload type of Opus (audio) or VP8 (video); -1 none */
  uint8_t mid_ext;             /* a=extmap id of the mid header extension; 0 none */
  uint32_t ssrc;               /* the first a=ssrc (of an FID group, the first of it); 0 none */
  bool ssrc_group;             /* ssrc came from an FID group */
};

struct sdp_offer {
  char ufrag[CAMUS_SDP_UFRAG_MAX + 1], pwd[CAMUS_SDP_UFRAG_MAX + 1];
  uint8_t fingerprint[32];
  enum sdp_setup setup;
  bool bundle;
  struct sdp_media m[CAMUS_SDP_MAX_MEDIA];
  int n_media, data_index;
};

/* Per-offer parse state: where each transport attribute came from (0 none,
 * 1 session, 2 another section, 3 the data section), so the data section's
 * own value wins. */
struct sdp_src {
  int ufrag, pwd, fp, setup;
  bool other_fp, bad_fp;
};

static bool sdp_ice_chars(struct str v, size_t min) {
  if (v.n < min || v.n > CAMUS_SDP_UFRAG_MAX) return false;
  for (size_t i = 0; i < v.n; i++)
    if (!isalnum((unsigned char)v.p[i]) && v.p[i] != '+' && v.p[i] != '/') return false;
  return true;
}

/* Copies a view into a fixed field; false if it does not fit. */
static bool sdp_copy(char *out, size_t cap, struct str v) {
  if (v.n >= cap) return false;
  memcpy(out, v.p, v.n);
  out[v.n] = 0;
  return true;
}

/* The next space-separated word of *v. */
static struct str sdp_word(struct str *v) {
  while (v->n && *v->p == ' ') v->p++, v->n--;
  struct str w = {v->p, 0};
  while (w.n < v->n && v->p[w.n] != ' ') w.n++;
  v->p += w.n;
  v->n -= w.n;
  return w;
}

/* A decimal number of at most 10 digits, no more than max; -1 otherwise.
 * Counted in 64 bits: ten digits overflow a 32-bit long. */
static int64_t sdp_num(struct str w, int64_t max) {
  int64_t v = 0;
  if (w.n == 0 || w.n > 10) return -1;
  for (size_t i = 0; i < w.n; i++) {
    if (!isdigit((unsigned char)w.p[i])) return -1;
    v = v * 10 + (w.p[i] - '0');
  }
  return v <= max ? v : -1;
}

static bool sdp_fingerprint(struct str v, uint8_t out[32]) {
  if (v.n != 95) return false;
  for (int i = 0; i < 32; i++) {
    int hi = hex_value(v.p[3 * i]), lo = hex_value(v.p[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 31 && v.p[3 * i + 2] != ':')) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

/* An attribute of an audio or video section that the SFU reads.  Returns 0, or -1 if malformed. */
static int sdp_rtp_attribute(struct sdp_media *m, struct str name, struct str v) {
  static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
  for (int d = 0; d < 4; d++)
    if (str_eq(name, dirs[d])) m->dir = (enum sdp_dir)d;
  if (str_eq(name, "rtcp-mux")) m->rtcp_mux = true;
  if (str_eq(name, "bundle-only")) m->bundle_only = true;
  if (str_eq(name, "rtcp-rsize")) m->rtcp_rsize = true;
  if (str_eq(name, "rtpmap")) { /* "<pt> <name>/<rate>[/<channels>]": the first Opus or VP8 */
    struct str w = sdp_word(&v), codec = sdp_word(&v);
    int64_t pt = sdp_num(w, 127);
    if (pt < 0) return -1;
    if (m->pt < 0 && (m->media == SDP_AUDIO ? str_ieq(codec, "opus/48000/2") : str_ieq(codec, "VP8/90000")))
      m->pt = (int)pt;
  } else if (str_eq(name, "extmap")) { /* "<id>[/<direction>] <uri>" */
    struct str w = sdp_word(&v), uri = sdp_word(&v);
    const char *slash = memchr(w.p, '/', w.n);
    if (slash) w.n = (size_t)(slash - w.p);
    int64_t id = sdp_num(w, 255);
    if (id <= 0) return -1;
    if (str_eq(uri, SDP_MID_URI) && id <= 14) m->mid_ext = (uint8_t)id; /* one-byte header ids only */
  } else if (str_eq(name, "ssrc") || str_eq(name, "ssrc-group")) {
    struct str w = sdp_word(&v);
    if (str_eq(name, "ssrc-group")) {
      if (!str_eq(w, "FID")) return 0;
      w = sdp_word(&v);
    }
    int64_t ssrc = sdp_num(w, UINT32_MAX);
    if (ssrc < 0) return -1;
    if (str_eq(name, "ssrc-group") ? !m->ssrc_group : !m->ssrc) m->ssrc = (uint32_t)ssrc;
    m->ssrc_group |= str_eq(name, "ssrc-group");
  }
  return 0;
}

/* One a= line; level is 1 at session level, else 2 (or 3 in a data section). */
static int sdp_attribute(struct sdp_offer *o, struct sdp_src *src, struct sdp_media *m, int level, struct str a,
                         const char **err) {
  const char *colon = memchr(a.p, ':', a.n);
  struct str name = {a.p, colon ? (size_t)(colon - a.p) : a.n};
  struct str v = colon ? (struct str){colon + 1, a.n - name.n - 1} : (struct str){"", 0};
  if (str_eq(name, "ice-ufrag")) {
    if (!sdp_ice_chars(v, 4)) return *err = "bad a=ice-ufrag", -1;
    if (level >= src->ufrag) sdp_copy(o->ufrag, sizeof o->ufrag, v), src->ufrag = level;
  } else if (str_eq(name, "ice-pwd")) {
    if (!sdp_ice_chars(v, 22)) return *err = "bad a=ice-pwd", -1;
    if (level >= src->pwd) sdp_copy(o->pwd, sizeof o->pwd, v), src->pwd = level;
  } else if (str_eq(name, "fingerprint")) {
    struct str alg = sdp_word(&v), hex = sdp_word(&v);
    if (!str_ieq(alg, "sha-256")) {
      src->other_fp = true;
    } else if (level >= src->fp) {
      uint8_t fp[32];
      if (!sdp_fingerprint(hex, fp)) return *err = "bad a=fingerprint", -1;
      memcpy(o->fingerprint, fp, 32);
      src->fp = level;
    }
  } else if (str_eq(name, "setup")) {
    enum sdp_setup st = str_eq(v, "actpass") ? SDP_SETUP_ACTPASS
                        : str_eq(v, "active") ? SDP_SETUP_ACTIVE
                        : str_eq(v, "passive") ? SDP_SETUP_PASSIVE
                                               : SDP_SETUP_NONE;
    if (st == SDP_SETUP_NONE) return *err = "a=setup must be actpass, active or passive", -1;
    if (level >= src->setup) o->setup = st, src->setup = level;
  } else if (str_eq(name, "group")) {
    if (str_starts(v, "BUNDLE")) o->bundle = true;
  } else if (!m) {
    return 0;
  } else if (m->media && sdp_rtp_attribute(m, name, v) != 0) {
    return *err = "bad audio or video attribute", -1;
  } else if (str_eq(name, "mid")) {
    if (v.n == 0 || !sdp_copy(m->mid, sizeof m->mid, v)) return *err = "bad a=mid", -1;
    for (size_t i = 0; i < v.n; i++)
      if ((unsigned char)v.p[i] <= ' ' || v.p[i] == 0x7f) return *err = "bad a=mid", -1;
  } else if (str_eq(name, "sctp-port")) {
    int64_t port = sdp_num(v, 65535);
    if (port <= 0) return *err = "bad a=sctp-port", -1;
    m->sctp_port = (int)port;
  } else if (str_eq(name, "max-message-size")) {
    int64_t size = sdp_num(v, INT64_MAX);
    if (size < 0) return *err = "bad a=max-message-size", -1;
    m->max_message_size = size > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)size;
  } else if (str_eq(name, "sctpmap")) {
    struct str port = sdp_word(&v), app = sdp_word(&v);
    if (sdp_num(port, 65535) <= 0 || !str_eq(app, "webrtc-datachannel")) return *err = "bad a=sctpmap", -1;
    m->sctp_port = (int)sdp_num(port, 65535);
  }
  return 0;
}

/* An m= line: "<kind> <port>[/<n>] <proto> <fmt> ...". */
static int sdp_media_line(struct sdp_media *m, struct str v, const char **err) {
  struct str kind = sdp_word(&v), port = sdp_word(&v), proto = sdp_word(&v), fmt = sdp_word(&v);
  const char *slash = memchr(port.p, '/', port.n);
  if (slash) port.n = (size_t)(slash - port.p);
  int64_t p = sdp_num(port, 65535);
  if (p < 0 || !sdp_copy(m->kind, sizeof m->kind, kind) || !sdp_copy(m->proto, sizeof m->proto, proto) ||
      !sdp_copy(m->fmt, sizeof m->fmt, fmt) || kind.n == 0 || proto.n == 0 || fmt.n == 0)
    return *err = "bad m= line", -1;
  m->port = (int)p;
  m->pt = -1;
  if (str_eq(proto, SDP_RTP_PROFILE)) /* (port 0 refuses it, unless a=bundle-only says it is new in the bundle) */
    m->media = str_eq(kind, "audio") ? SDP_AUDIO : str_eq(kind, "video") ? SDP_VIDEO : SDP_OTHER;
  if (str_eq(kind, "application") && p != 0) {
    if (str_eq(proto, "UDP/DTLS/SCTP") && str_eq(fmt, "webrtc-datachannel")) m->data = SDP_DATA_NEW;
    if (str_eq(proto, "DTLS/SCTP")) {
      m->data = SDP_DATA_OLD;
      m->sctp_port = (int)sdp_num(fmt, 65535); /* the old form names the SCTP port as its format */
      if (m->sctp_port <= 0) return *err = "bad m= line: DTLS/SCTP needs an SCTP port", -1;
    }
  }
  return 0;
}

/* Parses an offer.  Returns 0, or -1 with *err set to a short reason that can
 * go back to the client in a 400 reply. */
static int sdp_parse_offer(const char *s, size_t len, struct sdp_offer *o, const char **err) {
  struct sdp_src src = {0};
  const char *p = s, *end = s + len;
  memset(o, 0, sizeof *o);
  o->data_index = -1;
  if (len > CAMUS_SDP_MAX) return *err = "offer too large", -1;
  if (len < 4 || memcmp(s, "v=0", 3) != 0) return *err = "not an SDP offer (no v=0)", -1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
    struct str line = {p, (size_t)(le - p)};
    p = nl ? nl + 1 : end;
    if (line.n && line.p[line.n - 1] == '\r') line.n--;
    if (line.n == 0) continue;
    if (line.n > CAMUS_SDP_LINE_MAX) return *err = "SDP line too long", -1;
    if (line.n < 2 || line.p[1] != '=' || !islower((unsigned char)line.p[0])) return *err = "malformed SDP line", -1;
    for (size_t i = 0; i < line.n; i++)
      if (line.p[i] == 0 || line.p[i] == '\r') return *err = "malformed SDP line", -1;
    struct str v = {line.p + 2, line.n - 2};
    struct sdp_media *m = o->n_media ? &o->m[o->n_media - 1] : NULL;
    if (line.p[0] == 'm') {
      if (o->n_media == CAMUS_SDP_MAX_MEDIA) return *err = "too many m= sections", -1;
      m = &o->m[o->n_media++];
      if (sdp_media_line(m, v, err) != 0) return -1;
      if (m->data && o->data_index < 0) o->data_index = o->n_media - 1;
    } else if (line.p[0] == 'a') {
      int level = !m ? 1 : (o->data_index == o->n_media - 1) ? 3 : 2;
      if (sdp_attribute(o, &src, m, level, v, err) != 0) return -1;
    }
  }
  if (o->data_index < 0) return *err = "no data channel (m=application) section", -1;
  for (int i = 0; i < o->n_media; i++)
    if (o->m[i].port == 0 && !o->m[i].bundle_only) o->m[i].media = SDP_OTHER;
  if (!src.ufrag || !src.pwd) return *err = "no ICE credentials (a=ice-ufrag, a=ice-pwd)", -1;
  if (!src.fp) return *err = src.other_fp ? "no sha-256 fingerprint" : "no a=fingerprint", -1;
  if (!o->m[o->data_index].sctp_port) o->m[o->data_index].sctp_port = CAMUS_SCTP_PORT;
  if (!src.setup) o->setup = SDP_SETUP_ACTPASS;
  return 0;
}

struct sdp_candidate {
  const char *addr;
  int port;
  uint32_t priority;
  bool tcp; /* a passive ICE-TCP candidate (RFC 6544) */
};

/* What the answer says of one audio or video section. */
struct sdp_plan {
  enum sdp_dir dir;            /* ours: SDP_RECVONLY (a member's own stream), SDP_SENDONLY (another's), SDP_INACTIVE */
  bool accept;                 /* false: refused (port 0) */
  uint32_t ssrc;               /* a section we send on (or will): the SSRC we send it with; 0 none */
  char msid[48];               /* SDP_SENDONLY: "<stream id> <track id>" */
};

/* What the answer says of us. */
struct sdp_local {
  const char *ufrag, *pwd;
  const uint8_t *fingerprint; /* 32 bytes */
  const struct sdp_candidate *cands;
  int n_cands;
  uint32_t max_message_size;
  uint64_t session_id;
  const struct sdp_plan *plan; /* one per offered section (read for audio and video); NULL: all refused */
  const char *setup;           /* our a=setup in a later answer (the role the first one set); NULL: from the offer */
};

/* "AB:CD:..." (95 characters and a NUL). */
static void fingerprint_text(const uint8_t fp[32], char out[96]) {
  static const char digits[] = "0123456789ABCDEF";
  for (int i = 0; i < 32; i++) {
    out[3 * i] = digits[fp[i] >> 4];
    out[3 * i + 1] = digits[fp[i] & 15];
    out[3 * i + 2] = i == 31 ? 0 : ':';
  }
}

/* Whether the answer accepts section i: the data channel, or audio and video as planned. */
static bool sdp_accepted(const struct sdp_offer *o, const struct sdp_local *l, int i) {
  const struct sdp_media *m = &o->m[i];
  if (i == o->data_index) return true;
  return l->plan && l->plan[i].accept && m->media && m->pt >= 0 && m->rtcp_mux && m->mid[0] && o->bundle &&
         o->m[o->data_index].mid[0]; /* inside the bundle the answer lists */
}

/* An accepted audio or video section: Opus or VP8 alone, rtcp-mux, the mid extension, feedback. */
static void sdp_write_rtp(struct buf *b, const struct sdp_media *m, const struct sdp_plan *pl) {
  static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
  bool video = m->media == SDP_VIDEO;
  buf_addf(b, "a=%s\r\na=rtcp-mux\r\n", dirs[pl->dir]);
  if (m->rtcp_rsize) buf_adds(b, "a=rtcp-rsize\r\n");
  if (m->mid_ext) buf_addf(b, "a=extmap:%u " SDP_MID_URI "\r\n", m->mid_ext);
  buf_addf(b, "a=rtpmap:%d %s\r\n", m->pt, video ? "VP8/90000" : "opus/48000/2");
  if (video)
    buf_addf(b, "a=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\na=rtcp-fb:%d ccm fir\r\na=rtcp-fb:%d goog-remb\r\n", m->pt,
             m->pt, m->pt, m->pt);
  else
    buf_addf(b, "a=fmtp:%d minptime=10;useinbandfec=1\r\n", m->pt);
  if (pl->dir == SDP_SENDONLY) buf_addf(b, "a=msid:%s\r\n", pl->msid);
  if (pl->ssrc) buf_addf(b, "a=ssrc:%lu cname:camus\r\n", (unsigned long)pl->ssrc);
}

static int sdp_write_answer(struct buf *b, const struct sdp_offer *o, const struct sdp_local *l, const char **err) {
  char fp[96];
  fingerprint_text(l->fingerprint, fp);
  buf_addf(b, "v=0\r\no=- %llu 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n",
           (unsigned long long)(l->session_id & 0x7fffffffffffffffull));
  if (o->bundle && o->m[o->data_index].mid[0]) {
    buf_adds(b, "a=group:BUNDLE");
    for (int i = 0; i < o->n_media; i++)
      if (sdp_accepted(o, l, i)) buf_addf(b, " %s", o->m[i].mid);
    buf_adds(b, "\r\n");
  }
  for (int i = 0; i < o->n_media; i++) {
    const struct sdp_media *m = &o->m[i];
    if (!sdp_accepted(o, l, i)) {
      buf_addf(b, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m->kind, m->proto, m->fmt);
      if (m->mid[0]) buf_addf(b, "a=mid:%s\r\n", m->mid);
      continue;
    }
    if (m->media)
      buf_addf(b, "m=%s 9 " SDP_RTP_PROFILE " %d\r\n", m->kind, m->pt);
    else if (m->data == SDP_DATA_NEW)
      buf_adds(b, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    else
      buf_adds(b, "m=application 9 DTLS/SCTP " STRINGIFY(CAMUS_SCTP_PORT) "\r\n");
    buf_adds(b, "c=IN IP4 0.0.0.0\r\n");
    if (m->mid[0]) buf_addf(b, "a=mid:%s\r\n", m->mid);
    buf_addf(b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:%s\r\n", l->ufrag, l->pwd, fp,
             l->setup ? l->setup : o->setup == SDP_SETUP_ACTIVE ? "passive" : "active");
    if (m->media)
      sdp_write_rtp(b, m, &l->plan[i]);
    else if (m->data == SDP_DATA_NEW)
      buf_adds(b, "a=sctp-port:" STRINGIFY(CAMUS_SCTP_PORT) "\r\n");
    else
      buf_adds(b, "a=sctpmap:" STRINGIFY(CAMUS_SCTP_PORT) " webrtc-datachannel 65535\r\n");
    if (!m->media) buf_addf(b, "a=max-message-size:%u\r\n", (unsigned)l->max_message_size);
    for (int k = 0; k < l->n_cands; k++)
      buf_addf(b, "a=candidate:%d 1 %s %u %s %d typ host%s\r\n", k + 1, l->cands[k].tcp ? "tcp" : "udp",
               (unsigned)l->cands[k].priority, l->cands[k].addr, l->cands[k].port, l->cands[k].tcp ? " tcptype passive" : "");
    buf_adds(b, "a=end-of-candidates\r\n");
  }
  if (b->err) return *err = "out of memory", -1;
  return 0;
}

/* ------------------------------------------------------------------- STUN */

/* STUN (RFC 8489) as ICE uses it: Binding requests and responses, short-term
 * credentials.  Parsing reads through a cursor with bounds checked first;
 * writing goes into a caller-supplied buffer. */
#define STUN_MAGIC 0x2112A442u
#define STUN_HDR 20
enum { STUN_BINDING_REQUEST = 0x0001, STUN_BINDING_INDICATION = 0x0011, STUN_BINDING_SUCCESS = 0x0101,
       STUN_BINDING_ERROR = 0x0111 };
/* TURN's methods (RFC 8656); a message type is a method with class bits: request 0, indication 0x010,
 * success 0x100, error 0x110. */
enum { STUN_BINDING = 0x001, TURN_ALLOCATE = 0x003, TURN_REFRESH = 0x004, TURN_SEND = 0x006, TURN_DATA = 0x007,
       TURN_CREATE_PERMISSION = 0x008, TURN_CHANNEL_BIND = 0x009 };
#define STUN_METHOD(t) ((t) & 0x3eef)
#define STUN_CLASS(t) ((t) & 0x0110)
enum { STUN_REQUEST = 0x000, STUN_INDICATION = 0x010, STUN_SUCCESS = 0x100, STUN_ERROR = 0x110 };
enum {
  STUN_A_MAPPED_ADDRESS = 0x0001, STUN_A_USERNAME = 0x0006, STUN_A_MESSAGE_INTEGRITY = 0x0008,
  STUN_A_ERROR_CODE = 0x0009, STUN_A_UNKNOWN_ATTRIBUTES = 0x000A, STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
  STUN_A_PRIORITY = 0x0024, STUN_A_USE_CANDIDATE = 0x0025, STUN_A_SOFTWARE = 0x8022, STUN_A_FINGERPRINT = 0x8028,
  STUN_A_ICE_CONTROLLED = 0x8029, STUN_A_ICE_CONTROLLING = 0x802A,
  TURN_A_CHANNEL_NUMBER = 0x000C, TURN_A_LIFETIME = 0x000D, TURN_A_XOR_PEER_ADDRESS = 0x0012, TURN_A_DATA = 0x0013,
  STUN_A_REALM = 0x0014, STUN_A_NONCE = 0x0015, TURN_A_XOR_RELAYED_ADDRESS = 0x0016,
  TURN_A_REQUESTED_ADDRESS_FAMILY = 0x0017, TURN_A_EVEN_PORT = 0x0018, TURN_A_REQUESTED_TRANSPORT = 0x0019,
  TURN_A_DONT_FRAGMENT = 0x001A, TURN_A_RESERVATION_TOKEN = 0x0022
};
#define TURN_PEERS_MAX 4 /* XOR-PEER-ADDRESS attributes read from one CreatePermission */
#define STUN_FINGERPRINT_XOR 0x5354554eu

/* A parsed message; pointers are into the datagram, valid while it is. */
struct stun_msg {
  uint16_t type, len;
  const uint8_t *txid;               /* 12 bytes */
  const uint8_t *username;
  uint16_t username_len;
  size_t integrity_at;               /* offset of MESSAGE-INTEGRITY's header; 0: absent */
  bool fingerprint, fingerprint_ok;
  bool has_priority;
  uint32_t priority;
  bool use_candidate;
  bool controlling, controlled;
  uint64_t tiebreaker;
  uint16_t error_code;               /* class * 100 + number, from ERROR-CODE */
  bool has_mapped;
  struct sockaddr_storage mapped;    /* XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) */
  uint16_t unknown[4];               /* comprehension-required attributes we do not know */
  int n_unknown;
  /* TURN's (RFC 8656) */
  const uint8_t *realm, *nonce, *data;
  uint16_t realm_len, nonce_len, data_len;
  bool has_lifetime, has_channel, has_data;
  uint32_t lifetime;
  uint16_t channel;
  int transport;                     /* REQUESTED-TRANSPORT's protocol number; -1 when absent */
  int family;                        /* REQUESTED-ADDRESS-FAMILY: 1 IPv4, 2 IPv6; 0 when absent */
  bool reserves;                     /* EVEN-PORT with R, or RESERVATION-TOKEN: port reservations, which we do not make */
  bool even_port;                    /* EVEN-PORT: the relayed port must be even */
  struct sockaddr_storage peers[TURN_PEERS_MAX]; /* XOR-PEER-ADDRESS */
  int n_peers;
  bool too_many_peers, bad_peer;
};

/* CRC-32 as in IEEE 802.3 (the polynomial of zlib), a nibble at a time. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  static const uint32_t tab[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
                                   0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                   0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    c = (c >> 4) ^ tab[c & 15];
    c = (c >> 4) ^ tab[c & 15];
  }
  return c ^ 0xffffffffu;
}

/* Cheap test for the demultiplexer: a STUN header whose length fits the datagram. */
static bool stun_is(const uint8_t *p, size_t n) {
  return n >= STUN_HDR && (p[0] & 0xc0) == 0 && get_u32(p + 4) == STUN_MAGIC && (get_u16(p + 2) & 3) == 0 &&
         (size_t)get_u16(p + 2) + STUN_HDR == n;
}

/* Reads an (XOR-)MAPPED-ADDRESS value. */
static bool stun_read_address(const uint8_t *v, size_t len, bool xor, const uint8_t *hdr,
                              struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (len < 4) return false;
  uint16_t port = get_u16(v + 2) ^ (xor ? (uint16_t)(STUN_MAGIC >> 16) : 0);
  if (v[1] == 1 && len == 8) {
    struct sockaddr_in *a = (struct sockaddr_in *)(void *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    uint8_t ip[4];
    for (int i = 0; i < 4; i++) ip[i] = v[4 + i] ^ (xor ? hdr[4 + i] : 0);
    memcpy(&a->sin_addr, ip, 4);
    return true;
  }
  if (v[1] == 2 && len == 20) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    for (int i = 0; i < 16; i++) a->sin6_addr.s6_addr[i] = v[4 + i] ^ (xor ? hdr[4 + i] : 0);
    return true;
  }
  return false;
}

/* Parses a message.  Returns 0, or -1 if it is malformed: the header length
 * must match the datagram, every attribute must fit, FINGERPRINT must come
 * last.  Attributes after MESSAGE-INTEGRITY, other than FINGERPRINT, are
 * ignored as RFC 8489 says. */
static int stun_parse(const uint8_t *p, size_t n, struct stun_msg *m) {
  memset(m, 0, sizeof *m);
  m->transport = -1;
  if (!stun_is(p, n)) return -1;
  m->type = get_u16(p);
  m->len = get_u16(p + 2);
  m->txid = p + 8;
  const uint8_t *a = p + STUN_HDR, *end = p + n;
  while (a < end) {
    if (end - a < 4) return -1;
    uint16_t type = get_u16(a), len = get_u16(a + 2);
    const uint8_t *v = a + 4;
    size_t padded = ((size_t)len + 3) & ~(size_t)3;
    if ((size_t)(end - v) < padded) return -1;
    if (m->fingerprint) return -1; /* nothing may follow FINGERPRINT */
    if (type == STUN_A_FINGERPRINT) {
      if (len != 4) return -1;
      m->fingerprint = true;
      m->fingerprint_ok = get_u32(v) == (crc32_ieee(p, (size_t)(a - p)) ^ STUN_FINGERPRINT_XOR);
    } else if (m->integrity_at) {
      /* ignored */
    } else {
      switch (type) {
      case STUN_A_USERNAME:
        if (len > 513) return -1;
        m->username = v;
        m->username_len = len;
        break;
      case STUN_A_MESSAGE_INTEGRITY:
        if (len != 20) return -1;
        m->integrity_at = (size_t)(a - p);
        break;
      case STUN_A_PRIORITY:
        if (len != 4) return -1;
        m->has_priority = true;
        m->priority = get_u32(v);
        break;
      case STUN_A_USE_CANDIDATE: m->use_candidate = true; break;
      case STUN_A_ICE_CONTROLLED:
      case STUN_A_ICE_CONTROLLING:
        if (len != 8) return -1;
        *(type == STUN_A_ICE_CONTROLLED ? &m->controlled : &m->controlling) = true;
        m->tiebreaker = (uint64_t)get_u32(v) << 32 | get_u32(v + 4);
        break;
      case STUN_A_ERROR_CODE:
        if (len < 4) return -1;
        m->error_code = (uint16_t)((v[2] & 7) * 100 + v[3]);
        break;
      case STUN_A_XOR_MAPPED_ADDRESS:
      case STUN_A_MAPPED_ADDRESS:
        if (!m->has_mapped || type == STUN_A_XOR_MAPPED_ADDRESS)
          m->has_mapped = stun_read_address(v, len, type == STUN_A_XOR_MAPPED_ADDRESS, p, &m->mapped);
        break;
      case STUN_A_REALM:
      case STUN_A_NONCE:
        if (len > 763) return -1; /* RFC 8489: fewer than 128 characters, 763 bytes */
        *(type == STUN_A_REALM ? &m->realm : &m->nonce) = v;
        *(type == STUN_A_REALM ? &m->realm_len : &m->nonce_len) = len;
        break;
      case TURN_A_LIFETIME:
        if (len != 4) return -1;
        m->has_lifetime = true;
        m->lifetime = get_u32(v);
        break;
      case TURN_A_CHANNEL_NUMBER:
        if (len != 4) return -1;
        m->has_channel = true;
        m->channel = get_u16(v);
        break;
      case TURN_A_DATA:
        m->has_data = true;
        m->data = v;
        m->data_len = len;
        break;
      case TURN_A_REQUESTED_TRANSPORT:
        if (len != 4) return -1;
        m->transport = v[0];
        break;
      case TURN_A_REQUESTED_ADDRESS_FAMILY:
        if (len != 4) return -1;
        m->family = v[0];
        break;
      case TURN_A_EVEN_PORT: /* R (the top bit) asks for the next port kept too: a reservation */
        if (len != 1) return -1;
        m->even_port = true;
        m->reserves |= (v[0] & 0x80) != 0;
        break;
      case TURN_A_RESERVATION_TOKEN: m->reserves = true; break;
      case TURN_A_DONT_FRAGMENT: break; /* we never fragment, and never set DF: nothing to do */
      case TURN_A_XOR_PEER_ADDRESS:
        if (m->n_peers == TURN_PEERS_MAX)
          m->too_many_peers = true;
        else if (stun_read_address(v, len, true, p, &m->peers[m->n_peers]))
          m->n_peers++;
        else
          m->bad_peer = true;
        break;
      default:
        if (type < 0x8000 && m->n_unknown < 4) m->unknown[m->n_unknown++] = type;
        break;
      }
    }
    a = v + padded;
  }
  return 0;
}

/* HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the header length
 * rewritten to end just after it (RFC 8489 section 14.5). */
static void stun_hmac(const uint8_t *p, size_t mi_at, const void *key, size_t keylen, uint8_t out[20]) {
  const mbedtls_md_info_t *sha1 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
  mbedtls_md_context_t ctx;
  uint8_t hdr[4];
  memcpy(hdr, p, 2);
  put_u16(hdr + 2, (uint16_t)(mi_at + 24 - STUN_HDR));
  mbedtls_md_init(&ctx);
  if (mbedtls_md_setup(&ctx, sha1, 1) != 0 || mbedtls_md_hmac_starts(&ctx, key, keylen) != 0 ||
      mbedtls_md_hmac_update(&ctx, hdr, 4) != 0 || mbedtls_md_hmac_update(&ctx, p + 4, mi_at - 4) != 0 ||
      mbedtls_md_hmac_finish(&ctx, out) != 0)
    memset(out, 0, 20);
  mbedtls_md_free(&ctx);
}

static bool stun_integrity_ok(const uint8_t *p, size_t n, const struct stun_msg *m, const void *key,
                              size_t keylen) {
  uint8_t mac[20];
  if (!m->integrity_at || m->integrity_at + 24 > n) return false;
  stun_hmac(p, m->integrity_at, key, keylen, mac);
  return secret_eq(mac, p + m->integrity_at + 4, 20);
}

/* A message being written into a caller-supplied buffer; on overflow err is set. */
struct stun_writer {
  uint8_t *p;
  size_t cap, len;
  bool err;
};

static void stun_begin(struct stun_writer *w, uint16_t type, const uint8_t txid[12]) {
  w->len = 0;
  w->err = w->cap < STUN_HDR;
  if (w->err) return;
  put_u16(w->p, type);
  put_u16(w->p + 2, 0);
  put_u32(w->p + 4, STUN_MAGIC);
  memcpy(w->p + 8, txid, 12);
  w->len = STUN_HDR;
}

static void stun_attr(struct stun_writer *w, uint16_t type, const void *v, uint16_t len) {
  size_t padded = ((size_t)len + 3) & ~(size_t)3;
  if (w->err || w->cap - w->len < 4 + padded) {
    w->err = true;
    return;
  }
  uint8_t *a = w->p + w->len;
  put_u16(a, type);
  put_u16(a + 2, len);
  if (len) memcpy(a + 4, v, len);
  memset(a + 4 + len, 0, padded - len);
  w->len += 4 + padded;
  put_u16(w->p + 2, (uint16_t)(w->len - STUN_HDR));
}

static void stun_attr_u32(struct stun_writer *w, uint16_t type, uint32_t v) {
  uint8_t b[4];
  put_u32(b, v);
  stun_attr(w, type, b, 4);
}

/* An XOR-MAPPED-ADDRESS, or another attribute of that form (type): XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS. */
static void stun_xor_address(struct stun_writer *w, uint16_t type, const struct sockaddr *sa) {
  uint8_t v[20] = {0};
  if (w->err) return;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
    const uint8_t *ip = (const uint8_t *)&a->sin_addr;
    v[1] = 1;
    put_u16(v + 2, ntohs(a->sin_port) ^ (uint16_t)(STUN_MAGIC >> 16));
    for (int i = 0; i < 4; i++) v[4 + i] = ip[i] ^ w->p[4 + i];
    stun_attr(w, type, v, 8);
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
    v[1] = 2;
    put_u16(v + 2, ntohs(a->sin6_port) ^ (uint16_t)(STUN_MAGIC >> 16));
    for (int i = 0; i < 16; i++) v[4 + i] = a->sin6_addr.s6_addr[i] ^ w->p[4 + i];
    stun_attr(w, type, v, 20);
  }
}

static void stun_error(struct stun_writer *w, int code, const char *reason) {
  uint8_t v[132] = {0};
  size_t n = strlen(reason);
  if (n > 128) n = 128;
  v[2] = (uint8_t)(code / 100);
  v[3] = (uint8_t)(code % 100);
  memcpy(v + 4, reason, n);
  stun_attr(w, STUN_A_ERROR_CODE, v, (uint16_t)(4 + n));
}

static void stun_integrity(struct stun_writer *w, const void *key, size_t keylen) {
  uint8_t mac[20] = {0};
  size_t at = w->len;
  stun_attr(w, STUN_A_MESSAGE_INTEGRITY, mac, 20); /* reserves the room and sets the length */
  if (w->err) return;
  stun_hmac(w->p, at, key, keylen, mac);
  memcpy(w->p + at + 4, mac, 20);
}

static void stun_fingerprint(struct stun_writer *w) {
  size_t at = w->len;
  stun_attr_u32(w, STUN_A_FINGERPRINT, 0);
  if (w->err) return;
  put_u32(w->p + at + 4, crc32_ieee(w->p, at) ^ STUN_FINGERPRINT_XOR);
}

/* ------------------------------------------------------------------- DCEP */
/* DCEP (RFC 8832) messages and the payload protocol identifiers of data channels. */
enum { PPID_DCEP = 50, PPID_STRING = 51, PPID_BINARY = 53, PPID_STRING_EMPTY = 56, PPID_BINARY_EMPTY = 57 };
enum { DCEP_ACK = 0x02, DCEP_OPEN = 0x03 };

struct dcep_open {
  uint8_t channel_type;
  uint16_t priority;
  uint32_t reliability;
  struct str label, protocol; /* point into the message */
};

/* Parses a DATA_CHANNEL_OPEN message.  Returns 0 or -1. */
static int dcep_parse_open(const uint8_t *p, size_t n, struct dcep_open *o) {
  if (n < 12 || p[0] != DCEP_OPEN) return -1;
  o->channel_type = p[1];
  o->priority = get_u16(p + 2);
  o->reliability = get_u32(p + 4);
  size_t ll = get_u16(p + 8), pl = get_u16(p + 10);
  if (n != 12 + ll + pl) return -1;
  switch (o->channel_type & 0x7f) {
  case 0x00: case 0x01: case 0x02: break;
  default: return -1;
  }
  o->label = (struct str){(const char *)p + 12, ll};
  o->protocol = (struct str){(const char *)p + 12 + ll, pl};
  return 0;
}

/* Writes a DATA_CHANNEL_OPEN for a reliable, ordered channel named label
 * into out (cap bytes).  Returns its length, or 0 if it does not fit. */
static size_t dcep_write_open(uint8_t *out, size_t cap, const char *label) {
  size_t ll = strlen(label);
  if (ll > UINT16_MAX || cap < 12 + ll) return 0;
  memset(out, 0, 12);
  out[0] = DCEP_OPEN;
  put_u16(out + 8, (uint16_t)ll);
  memcpy(out + 12, label, ll);
  return 12 + ll;
}

/* --------------------------------------------------------------- RTP, RTCP */

/* RTP headers (RFC 3550) as the SFU reads and rewrites them, with header
 * extensions in either form (RFC 8285); VP8's payload descriptor (RFC 7741),
 * to see keyframes; RTCP compound packets walked one packet at a time, and
 * the few RTCP messages the SFU writes: receiver reports, PLI and generic
 * NACK (RFC 4585), REMB.  Readers take (pointer, length) and check before
 * every read; writers take the room they may fill and return 0 if short. */
enum { RTCP_SR = 200, RTCP_RR = 201, RTCP_SDES = 202, RTCP_BYE = 203, RTCP_RTPFB = 205, RTCP_PSFB = 206 };
enum { RTCP_FMT_NACK = 1, RTCP_FMT_PLI = 1, RTCP_FMT_FIR = 4, RTCP_FMT_AFB = 15 };
#define RTP_HDR 12
#define RTCP_REPORT 24 /* bytes of one report block */

struct rtp_hdr {
  uint8_t pt;
  bool marker;
  uint16_t seq;
  uint32_t ts, ssrc;
  uint16_t ext_profile;        /* 0xBEDE: one-byte elements; 0x100x: two-byte; 0: no extension */
  size_t ext_at, ext_len;      /* the extension's elements: offset and length in bytes */
  size_t payload, payload_len; /* offset and length of the payload, padding excluded */
};

/* Reads an RTP header.  Returns 0, or -1 if malformed. */
static int rtp_parse(const uint8_t *p, size_t n, struct rtp_hdr *h) {
  if (n < RTP_HDR || (p[0] >> 6) != 2) return -1;
  size_t at = RTP_HDR + 4u * (p[0] & 15), pad = 0;
  h->ext_profile = 0;
  h->ext_at = h->ext_len = 0;
  if (p[0] & 0x10) {
    if (n < at + 4) return -1;
    h->ext_profile = get_u16(p + at);
    h->ext_len = 4u * get_u16(p + at + 2);
    h->ext_at = at + 4;
    at += 4 + h->ext_len;
  }
  if (at > n) return -1;
  if (p[0] & 0x20) {
    pad = p[n - 1];
    if (pad == 0 || pad > n - at) return -1;
  }
  h->pt = p[1] & 0x7f;
  h->marker = p[1] >> 7;
  h->seq = get_u16(p + 2);
  h->ts = get_u32(p + 4);
  h->ssrc = get_u32(p + 8);
  h->payload = at;
  h->payload_len = n - at - pad;
  return 0;
}

/* The value of header extension element id, or NULL (its length in *len). */
static const uint8_t *rtp_ext_find(const uint8_t *p, const struct rtp_hdr *h, unsigned id, size_t *len) {
  bool one = h->ext_profile == 0xBEDE, two = (h->ext_profile & 0xfff0) == 0x1000;
  const uint8_t *e = p + h->ext_at, *end = e + h->ext_len;
  if (!one && !two) return NULL;
  while (e < end) {
    unsigned eid = one ? *e >> 4 : *e;
    if (eid == 0) { /* padding */
      e++;
      continue;
    }
    if (one && eid == 15) return NULL;
    if (two && e + 1 >= end) return NULL;
    size_t l = one ? (size_t)(*e & 15) + 1 : e[1], hl = one ? 1 : 2;
    if ((size_t)(end - e) < hl + l) return NULL;
    if (eid == id) {
      *len = l;
      return e + hl;
    }
    e += hl + l;
  }
  return NULL;
}

/* Writes the header of a packet we send: version 2, the padding bit as the
 * original had it, and a one-byte extension carrying the receiver's mid
 * (RFC 8843) when it negotiated one.  Returns the header's length (cap: at
 * least RTP_HDR + 24). */
static size_t rtp_write_header(uint8_t *out, bool padding, bool marker, uint8_t pt, uint16_t seq, uint32_t ts,
                               uint32_t ssrc, unsigned mid_ext, const char *mid) {
  size_t ml = mid_ext ? strlen(mid) : 0;
  bool ext = ml >= 1 && ml <= 16;
  out[0] = (uint8_t)(0x80 | (padding ? 0x20 : 0) | (ext ? 0x10 : 0));
  out[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7f));
  put_u16(out + 2, seq);
  put_u32(out + 4, ts);
  put_u32(out + 8, ssrc);
  if (!ext) return RTP_HDR;
  size_t words = (1 + ml + 3) / 4;
  put_u16(out + 12, 0xBEDE);
  put_u16(out + 14, (uint16_t)words);
  out[16] = (uint8_t)(mid_ext << 4 | (ml - 1));
  memcpy(out + 17, mid, ml);
  memset(out + 17 + ml, 0, 4 * words - 1 - ml);
  return RTP_HDR + 4 + 4 * words;
}

/* Whether a VP8 payload (RFC 7741) starts a keyframe: the first packet of a
 * frame (S set, partition 0) whose VP8 header has the P bit clear. */
static bool vp8_keyframe(const uint8_t *p, size_t n) {
  size_t at = 1;
  if (n < 1 || !(p[0] & 0x10) || (p[0] & 7) != 0) return false;
  if (p[0] & 0x80) { /* X: extended control bits */
    if (n < 2) return false;
    uint8_t x = p[1];
    at = 2;
    if (x & 0x80) { /* I: a picture id of 7 or 15 bits */
      if (n <= at) return false;
      at += p[at] & 0x80 ? 2 : 1;
    }
    if (x & 0x40) at++;        /* L: TL0PICIDX */
    if (x & 0x30) at++;        /* T or K: TID, Y, KEYIDX */
  }
  return at < n && !(p[at] & 1);
}

/* One packet of a compound RTCP packet. */
struct rtcp_pkt {
  uint8_t pt, count;           /* count: reports, or FMT for feedback */
  const uint8_t *body;         /* after the 4-byte header */
  size_t len;                  /* of the body */
};

/* The packet at *at of the compound p[0..n): 1 and *at moved past it; 0 at
 * the end; -1 if malformed (a length that runs past the end). */
static int rtcp_next(const uint8_t *p, size_t n, size_t *at, struct rtcp_pkt *r) {
  if (*at >= n) return 0;
  if (n - *at < 4 || (p[*at] >> 6) != 2) return -1;
  size_t len = 4u * get_u16(p + *at + 2);
  if (len > n - *at - 4) return -1;
  r->pt = p[*at + 1];
  r->count = p[*at] & 31;
  r->body = p + *at + 4;
  r->len = len;
  *at += 4 + len;
  return 1;
}

/* A report block about one source (RFC 3550 6.4.1). */
struct rtcp_report {
  uint32_t ssrc;
  uint8_t fraction_lost;       /* of 256, since the last report */
  int32_t lost;                /* cumulative, 24 bits signed */
  uint32_t highest, jitter, lsr, dlsr;
};

static void rtcp_report_read(const uint8_t *b, struct rtcp_report *r) {
  r->ssrc = get_u32(b);
  r->fraction_lost = b[4];
  uint32_t l = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
  r->lost = (int32_t)(l & 0x800000 ? l | 0xff000000u : l);
  r->highest = get_u32(b + 8);
  r->jitter = get_u32(b + 12);
  r->lsr = get_u32(b + 16);
  r->dlsr = get_u32(b + 20);
}

/* The header of an RTCP packet of len bytes in all (a multiple of 4). */
static void rtcp_header(uint8_t *out, uint8_t count, uint8_t pt, size_t len) {
  out[0] = (uint8_t)(0x80 | (count & 31));
  out[1] = pt;
  put_u16(out + 2, (uint16_t)(len / 4 - 1));
}

/* A receiver report from sender with at most one block.  Returns its length, or 0 if cap is short. */
static size_t rtcp_write_rr(uint8_t *out, size_t cap, uint32_t sender, const struct rtcp_report *r) {
  size_t len = 8 + (r ? RTCP_REPORT : 0);
  if (cap < len) return 0;
  rtcp_header(out, r ? 1 : 0, RTCP_RR, len);
  put_u32(out + 4, sender);
  if (!r) return len;
  uint8_t *b = out + 8;
  uint32_t lost = (uint32_t)(r->lost > 0x7fffff ? 0x7fffff : r->lost < -0x800000 ? -0x800000 : r->lost) & 0xffffff;
  put_u32(b, r->ssrc);
  put_u32(b + 4, (uint32_t)r->fraction_lost << 24 | lost);
  put_u32(b + 8, r->highest);
  put_u32(b + 12, r->jitter);
  put_u32(b + 16, r->lsr);
  put_u32(b + 20, r->dlsr);
  return len;
}

/* A picture loss indication (RFC 4585 6.3.1) about media.  Returns 12, or 0 if cap is short. */
static size_t rtcp_write_pli(uint8_t *out, size_t cap, uint32_t sender, uint32_t media) {
  if (cap < 12) return 0;
  rtcp_header(out, RTCP_FMT_PLI, RTCP_PSFB, 12);
  put_u32(out + 4, sender);
  put_u32(out + 8, media);
  return 12;
}

/* A generic NACK (RFC 4585 6.2.1) for packet pid and those of blp's bits (bit i: pid + 1 + i). */
static size_t rtcp_write_nack(uint8_t *out, size_t cap, uint32_t sender, uint32_t media, uint16_t pid, uint16_t blp) {
  if (cap < 16) return 0;
  rtcp_header(out, RTCP_FMT_NACK, RTCP_RTPFB, 16);
  put_u32(out + 4, sender);
  put_u32(out + 8, media);
  put_u16(out + 12, pid);
  put_u16(out + 14, blp);
  return 16;
}

/* Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb): bps for the n streams ssrcs. */
static size_t rtcp_write_remb(uint8_t *out, size_t cap, uint32_t sender, uint64_t bps, const uint32_t *ssrcs, int n) {
  size_t len = 20 + 4u * (size_t)n;
  if (n < 1 || n > 255 || cap < len) return 0;
  unsigned exp = 0;
  while (bps >> exp > 0x3ffff) exp++;
  rtcp_header(out, RTCP_FMT_AFB, RTCP_PSFB, len);
  put_u32(out + 4, sender);
  put_u32(out + 8, 0);
  memcpy(out + 12, "REMB", 4);
  put_u32(out + 16, (uint32_t)n << 24 | exp << 18 | (uint32_t)(bps >> exp));
  for (int i = 0; i < n; i++) put_u32(out + 20 + 4 * i, ssrcs[i]);
  return len;
}

/* ================================================================== CRYPTO ================================================================== */

/* Random bytes and keys come from one CTR-DRBG seeded from the system's entropy. */
struct crypto {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
};

static int crypto_init(struct crypto *c) {
  mbedtls_entropy_init(&c->entropy);
  mbedtls_ctr_drbg_init(&c->drbg);
  return mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, (const uint8_t *)"camus", 5);
}

static void crypto_free(struct crypto *c) {
  mbedtls_ctr_drbg_free(&c->drbg);
  mbedtls_entropy_free(&c->entropy);
}

static void random_bytes(struct crypto *c, void *out, size_t n) {
  if (mbedtls_ctr_drbg_random(&c->drbg, out, n) != 0) abort(); /* only fails on misuse */
}

static void hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, uint8_t out[32]) {
  mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, msg, n, out);
}

/* PBKDF2-HMAC-SHA256 of a room password. */
static int password_hash(const char *pw, size_t n, const uint8_t salt[16], uint8_t out[32]) {
  mbedtls_md_context_t md;
  mbedtls_md_init(&md);
  int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const uint8_t *)pw, n, salt, 16, CAMUS_PBKDF2_ITERATIONS, 32, out);
  mbedtls_md_free(&md);
  return rc;
}

/* A certificate with its key, for HTTPS or DTLS. */
struct identity {
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  uint8_t fingerprint[32]; /* SHA-256 of the DER certificate */
};

static void identity_init(struct identity *id) {
  mbedtls_x509_crt_init(&id->crt);
  mbedtls_pk_init(&id->key);
}

static void identity_free(struct identity *id) {
  mbedtls_x509_crt_free(&id->crt);
  mbedtls_pk_free(&id->key);
}


static void identity_fingerprint(struct identity *id) {
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), id->crt.raw.p, id->crt.raw.len, id->fingerprint);
}

/* Makes a fresh ECDSA P-256 key and a self-signed certificate for it, valid
 * from yesterday for ten years.  With pem_cert/pem_key, also returns both as
 * PEM text (caller frees).  Returns 0 or an mbedTLS error code. */
static int identity_generate(struct identity *id, struct crypto *c, const char *cn, char **pem_cert,
                             char **pem_key) {
  mbedtls_x509write_cert w;
  mbedtls_mpi serial;
  uint8_t der[1024], serial_bytes[16];
  char subject[128], from[16], until[16];
  mbedtls_x509write_crt_init(&w);
  mbedtls_mpi_init(&serial);
  int rc = mbedtls_pk_setup(&id->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (rc) goto fail;
  rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(id->key), mbedtls_ctr_drbg_random, &c->drbg);
  if (rc) goto fail;
  random_bytes(c, serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7f; /* positive */
  if ((rc = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes))) goto fail;
  time_t now = time(NULL) - 86400;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(from, sizeof from, "%Y%m%d%H%M%S", &tm);
  tm.tm_year += 10;
  strftime(until, sizeof until, "%Y%m%d%H%M%S", &tm);
  snprintf(subject, sizeof subject, "CN=%s", cn);
  mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w, &id->key);
  mbedtls_x509write_crt_set_issuer_key(&w, &id->key);
  if ((rc = mbedtls_x509write_crt_set_subject_name(&w, subject)) ||
      (rc = mbedtls_x509write_crt_set_issuer_name(&w, subject)) ||
      (rc = mbedtls_x509write_crt_set_serial(&w, &serial)) ||
      (rc = mbedtls_x509write_crt_set_validity(&w, from, until)))
    goto fail;
  if (pem_cert) {
    /* subjectAltName DNS:localhost, so that browsers name the only problem: the missing trust. */
    static const uint8_t san[] = {0x30, 0x0b, 0x82, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};
    rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san, sizeof san);
    if (rc) goto fail;
  }
  int len = mbedtls_x509write_crt_der(&w, der, sizeof der, mbedtls_ctr_drbg_random, &c->drbg);
  if (len < 0) {
    rc = len;
    goto fail;
  }
  if ((rc = mbedtls_x509_crt_parse_der(&id->crt, der + sizeof der - len, (size_t)len))) goto fail;
  identity_fingerprint(id);
  if (pem_cert) {
    *pem_cert = malloc(2048);
    *pem_key = malloc(1024);
    if (!*pem_cert || !*pem_key) {
      rc = MBEDTLS_ERR_X509_ALLOC_FAILED;
      goto fail;
    }
    if ((rc = mbedtls_x509write_crt_pem(&w, (uint8_t *)*pem_cert, 2048, mbedtls_ctr_drbg_random, &c->drbg)) ||
        (rc = mbedtls_pk_write_key_pem(&id->key, (uint8_t *)*pem_key, 1024)))
      goto fail;
  }
fail:
  if (rc && pem_cert) {
    free(*pem_cert);
    free(*pem_key);
    *pem_cert = *pem_key = NULL;
  }
  mbedtls_x509write_crt_free(&w);
  mbedtls_mpi_free(&serial);
  return rc;
}

/* A whole small file, NUL-terminated (what mbedTLS's PEM parsers want), read
 * without following a symbolic link in its last component.  Caller frees. */
static char *state_file_read(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  char *data = NULL;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < 65536 &&
      (data = malloc((size_t)st.st_size + 1)) != NULL) {
    ssize_t got = read(fd, data, (size_t)st.st_size);
    if (got == st.st_size) {
      data[got] = 0;
      *len = (size_t)got + 1;
    } else {
      free(data);
      data = NULL;
    }
  }
  if (fd >= 0) close(fd);
  return data;
}

/* Loads a PEM certificate (chain) and key: the operator's own files (which
 * may well be symbolic links, as Let's Encrypt makes them), or ours in the
 * state directory (which may not). */
static int identity_load(struct identity *id, const char *cert_file, const char *key_file, bool ours) {
  int rc;
  if (!ours) {
    rc = mbedtls_x509_crt_parse_file(&id->crt, cert_file);
    if (rc == 0) rc = mbedtls_pk_parse_keyfile(&id->key, key_file, NULL);
  } else {
    size_t cl = 0, kl = 0;
    char *cert = state_file_read(cert_file, &cl), *key = state_file_read(key_file, &kl);
    rc = cert && key ? mbedtls_x509_crt_parse(&id->crt, (const uint8_t *)cert, cl) : MBEDTLS_ERR_X509_FILE_IO_ERROR;
    if (rc == 0) rc = mbedtls_pk_parse_key(&id->key, (const uint8_t *)key, kl, NULL, 0);
    if (key) mbedtls_platform_zeroize(key, kl);
    free(cert);
    free(key);
  }
  if (rc == 0) identity_fingerprint(id);
  return rc;
}

/* Writes a new file of ours: never over an existing one, never through a symbolic link. */
static int state_file_write(const char *path, const char *data, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return -1;
  size_t n = strlen(data), off = 0;
  while (off < n) {
    ssize_t w = write(fd, data + off, n - off);
    if (w <= 0 && errno != EINTR) {
      close(fd);
      return -1;
    }
    if (w > 0) off += (size_t)w;
  }
  return close(fd);
}

/* The state directory holds private keys: it is made if missing, and must
 * be a directory of this user's in which nobody else may write. */
static int state_dir_check(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
    return -1;
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "state directory %s is not a directory", dir);
    return -1;
  }
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "state directory %s belongs to another user (uid %u)", dir, (unsigned)st.st_uid);
    return -1;
  }
  if (st.st_mode & 022) {
    snprintf(err, errlen, "others may write in state directory %s: chmod go-w %s", dir, dir);
    return -1;
  }
  return 0;
}

/* The HTTPS identity: the given files, or the self-signed pair in dir, made
 * on first use (then *made is set).  Returns 0, or -1 with a message in err. */
static int identity_for_https(struct identity *id, struct crypto *c, const char *cert_file, const char *key_file,
                              const char *dir, bool *made, char *err, size_t errlen) {
  char cpath[PATH_MAX], kpath[PATH_MAX], msg[128];
  if (cert_file) {
    int rc = identity_load(id, cert_file, key_file, false);
    if (rc) {
      mbedtls_strerror(rc, msg, sizeof msg);
      snprintf(err, errlen, "cannot load %s / %s: %s", cert_file, key_file, msg);
      return -1;
    }
    return 0;
  }
  if (state_dir_check(dir, err, errlen) != 0) return -1;
  snprintf(cpath, sizeof cpath, "%s/cert.pem", dir);
  snprintf(kpath, sizeof kpath, "%s/key.pem", dir);
  struct stat st;
  if (lstat(cpath, &st) == 0 || lstat(kpath, &st) == 0) {
    int rc = identity_load(id, cpath, kpath, true);
    if (rc == 0) return 0;
    mbedtls_strerror(rc, msg, sizeof msg);
    snprintf(err, errlen, "cannot load %s and %s: %s (delete both to make new ones)", cpath, kpath, msg);
    return -1;
  }
  char *pc = NULL, *pk = NULL;
  int rc = identity_generate(id, c, "localhost", &pc, &pk);
  if (rc == 0 && (state_file_write(kpath, pk, 0600) != 0 || state_file_write(cpath, pc, 0644) != 0)) {
    snprintf(err, errlen, "cannot write %s: %s", cpath, strerror(errno));
    rc = -1;
  } else if (rc) {
    mbedtls_strerror(rc, msg, sizeof msg);
    snprintf(err, errlen, "cannot make a certificate: %s", msg);
  } else {
    *made = true;
  }
  if (pk) mbedtls_platform_zeroize(pk, strlen(pk));
  free(pc);
  free(pk);
  return rc ? -1 : 0;
}

/* --------------------------------------------------------- SRTP (RFC 3711) */

/* SRTP and SRTCP with AES_CM_128_HMAC_SHA1_80, the profile DTLS-SRTP agrees
 * on with browsers (RFC 5764): session keys derived from a master key and
 * salt (key derivation rate 0), AES in counter mode, 80-bit HMAC-SHA1 tags,
 * a rollover counter and a replay window per SSRC.  One struct srtp is one
 * direction of one session.  Packets are transformed in the caller's
 * buffer: nothing is allocated per packet, and a packet is authenticated
 * before anything but its header is read. */
#define SRTP_TAG 10    /* bytes of the authentication tag (HMAC-SHA1, 80 bits) */
#define SRTP_WINDOW 64 /* packets of the replay window (RFC 3711 3.3.2 asks for at least 64) */
enum { SRTP_OK = 0, SRTP_MALFORMED = -1, SRTP_AUTH = -2, SRTP_REPLAYED = -3, SRTP_FULL = -4 };

/* One SSRC's state: the rollover counter and highest sequence number (RTP),
 * and the replay windows of its RTP and RTCP indexes. */
struct srtp_ssrc {
  uint32_t ssrc;
  bool used, rtp_seen, rtcp_seen;
  uint32_t roc;
  uint16_t s_l;                  /* highest sequence number (RFC 3711 3.3.1) */
  uint64_t rtp_top, rtp_window;  /* highest index received; bit i: index top - i was */
  uint32_t rtcp_top, rtcp_next;  /* SRTCP: highest index received; next index to send */
  uint64_t rtcp_window;
};

/* Session keys of one kind (RTP or RTCP): the cipher, its salt, and HMAC-SHA1
 * keyed ahead of time: SHA-1 states that have taken the key's inner and
 * outer pads (RFC 2104), so that a packet's tag costs no compressions of them. */
struct srtp_keys {
  mbedtls_aes_context aes;
  uint8_t salt[14];
  mbedtls_sha1_context inner, outer;
};

struct srtp {
  struct srtp_keys rtp, rtcp;
  struct srtp_ssrc ssrc[CAMUS_SRTP_SSRCS];
};

/* The keystream of AES-CM (RFC 3711 4.1.1) for iv, XORed onto p: a block
 * at a time, eight bytes at a time (mbedTLS's own CTR mode goes a byte at a
 * time, and took three times as long). */
static void srtp_ctr(mbedtls_aes_context *aes, const uint8_t iv[16], uint8_t *p, size_t n) {
  uint8_t counter[16], ks[16];
  memcpy(counter, iv, 16);
  for (size_t at = 0; at < n; at += 16) {
    mbedtls_aes_crypt_ecb(aes, MBEDTLS_AES_ENCRYPT, counter, ks);
    if (n - at >= 16) {
      uint64_t a, b, x, y;
      memcpy(&a, p + at, 8), memcpy(&b, p + at + 8, 8), memcpy(&x, ks, 8), memcpy(&y, ks + 8, 8);
      a ^= x, b ^= y;
      memcpy(p + at, &a, 8), memcpy(p + at + 8, &b, 8);
    } else {
      for (size_t i = 0; i < n - at; i++) p[at + i] ^= ks[i];
    }
    for (int i = 15; i >= 0 && ++counter[i] == 0; i--) {}
  }
}

/* The session key of label (0..5) from the master key and salt, n bytes (RFC 3711 4.3.1, kdr 0). */
static void srtp_derive(const uint8_t master_key[16], const uint8_t master_salt[14], uint8_t label, uint8_t *out,
                        size_t n) {
  mbedtls_aes_context aes;
  uint8_t iv[16] = {0};
  memcpy(iv, master_salt, 14);
  iv[7] ^= label;
  memset(out, 0, n);
  mbedtls_aes_init(&aes);
  mbedtls_aes_setkey_enc(&aes, master_key, 128);
  srtp_ctr(&aes, iv, out, n);
  mbedtls_aes_free(&aes);
}

static int srtp_keys_init(struct srtp_keys *k, const uint8_t key[16], const uint8_t salt[14], uint8_t first_label) {
  uint8_t ck[16], ak[20];
  srtp_derive(key, salt, first_label, ck, sizeof ck);
  srtp_derive(key, salt, first_label + 1, ak, sizeof ak);
  srtp_derive(key, salt, first_label + 2, k->salt, sizeof k->salt);
  uint8_t pad[2][64];
  mbedtls_aes_init(&k->aes);
  mbedtls_sha1_init(&k->inner);
  mbedtls_sha1_init(&k->outer);
  memset(pad, 0, sizeof pad);
  for (int i = 0; i < 64; i++) pad[0][i] = (uint8_t)((i < 20 ? ak[i] : 0) ^ 0x36), pad[1][i] = (uint8_t)((i < 20 ? ak[i] : 0) ^ 0x5c);
  int rc = mbedtls_aes_setkey_enc(&k->aes, ck, 128);
  if (!rc) rc = mbedtls_sha1_starts_ret(&k->inner);
  if (!rc) rc = mbedtls_sha1_update_ret(&k->inner, pad[0], 64);
  if (!rc) rc = mbedtls_sha1_starts_ret(&k->outer);
  if (!rc) rc = mbedtls_sha1_update_ret(&k->outer, pad[1], 64);
  mbedtls_platform_zeroize(pad, sizeof pad);
  mbedtls_platform_zeroize(ck, sizeof ck);
  mbedtls_platform_zeroize(ak, sizeof ak);
  return rc;
}

/* One direction's keys from its master key and salt (as DTLS-SRTP exports them).  Returns 0 or an mbedTLS error. */
static int srtp_init(struct srtp *s, const uint8_t master_key[16], const uint8_t master_salt[14]) {
  memset(s, 0, sizeof *s);
  int rc = srtp_keys_init(&s->rtp, master_key, master_salt, 0);
  return rc ? rc : srtp_keys_init(&s->rtcp, master_key, master_salt, 3);
}

static void srtp_free(struct srtp *s) {
  for (int i = 0; i < 2; i++) {
    struct srtp_keys *k = i ? &s->rtcp : &s->rtp;
    mbedtls_aes_free(&k->aes);
    mbedtls_sha1_free(&k->inner);
    mbedtls_sha1_free(&k->outer);
  }
  mbedtls_platform_zeroize(s, sizeof *s);
}

/* The state of ssrc; with make, made on first sight while there is room. */
static struct srtp_ssrc *srtp_ssrc(struct srtp *s, uint32_t ssrc, bool make) {
  struct srtp_ssrc *free_one = NULL;
  for (int i = 0; i < CAMUS_SRTP_SSRCS; i++) {
    if (s->ssrc[i].used && s->ssrc[i].ssrc == ssrc) return &s->ssrc[i];
    if (!s->ssrc[i].used && !free_one) free_one = &s->ssrc[i];
  }
  if (free_one && make) *free_one = (struct srtp_ssrc){.ssrc = ssrc, .used = true};
  return make ? free_one : NULL;
}

/* After a packet of an SSRC not seen before passed its check: its state,
 * kept from now on (so that forged packets cannot fill the table). */
static int srtp_keep(struct srtp *s, const struct srtp_ssrc *tmp) {
  struct srtp_ssrc *st = srtp_ssrc(s, tmp->ssrc, true);
  if (!st) return SRTP_FULL;
  *st = *tmp;
  return SRTP_OK;
}

/* The 80-bit tag of p[0..n) followed by the 4 bytes of tail (RFC 3711 4.2). */
static void srtp_tag(struct srtp_keys *k, const uint8_t *p, size_t n, const uint8_t tail[4], uint8_t out[SRTP_TAG]) {
  uint8_t mac[20];
  mbedtls_sha1_context c;
  mbedtls_sha1_clone(&c, &k->inner);
  mbedtls_sha1_update_ret(&c, p, n);
  mbedtls_sha1_update_ret(&c, tail, 4);
  mbedtls_sha1_finish_ret(&c, mac);
  mbedtls_sha1_clone(&c, &k->outer);
  mbedtls_sha1_update_ret(&c, mac, 20);
  mbedtls_sha1_finish_ret(&c, mac);
  memcpy(out, mac, SRTP_TAG);
}

/* AES-CM's IV: the session salt, XORed with the SSRC and the packet index (RFC 3711 4.1.1). */
static void srtp_iv(const struct srtp_keys *k, uint32_t ssrc, uint64_t index, uint8_t iv[16]) {
  memcpy(iv, k->salt, 14);
  iv[14] = iv[15] = 0;
  for (int i = 0; i < 4; i++) iv[4 + i] ^= (uint8_t)(ssrc >> (24 - 8 * i));
  for (int i = 0; i < 6; i++) iv[8 + i] ^= (uint8_t)(index >> (40 - 8 * i));
}

/* Where an RTP packet's payload starts (after CSRCs and a header extension), or 0 if malformed. */
static size_t rtp_payload_at(const uint8_t *p, size_t n) {
  if (n < 12 || (p[0] >> 6) != 2) return 0;
  size_t at = 12 + 4u * (p[0] & 15);
  if (p[0] & 0x10) {
    if (n < at + 4) return 0;
    at += 4 + 4u * get_u16(p + at + 2);
  }
  return at <= n ? at : 0;
}

/* The rollover counter a packet with sequence number seq was sent under,
 * guessed from the highest one seen (RFC 3711 Appendix A). */
static uint32_t srtp_roc_guess(const struct srtp_ssrc *st, uint16_t seq) {
  if (!st->rtp_seen) return st->roc;
  if (st->s_l < 32768) return seq > st->s_l && seq - st->s_l > 32768 ? st->roc - 1 : st->roc;
  return st->s_l - 32768 > seq ? st->roc + 1 : st->roc;
}

/* Protects the RTP packet p[0..n) in place, its tag appended (cap: room in
 * p), with the sender state st of its SSRC (which the caller keeps: the SFU
 * holds one per stream it sends).  Returns the new length, or SRTP_MALFORMED. */
static int srtp_protect_with(struct srtp *s, struct srtp_ssrc *st, uint8_t *p, size_t n, size_t cap) {
  size_t at = rtp_payload_at(p, n);
  if (!at || cap < n + SRTP_TAG || n > INT_MAX - SRTP_TAG) return SRTP_MALFORMED;
  st->ssrc = get_u32(p + 8);
  uint16_t seq = get_u16(p + 2);
  uint32_t v = srtp_roc_guess(st, seq); /* a sequence number that wrapped counts one more roll over */
  uint64_t index = (uint64_t)v << 16 | seq;
  if (!st->rtp_seen || index > st->rtp_top) st->rtp_top = index, st->roc = v, st->s_l = seq;
  st->rtp_seen = true;
  uint8_t iv[16], roc[4];
  srtp_iv(&s->rtp, st->ssrc, index, iv);
  srtp_ctr(&s->rtp.aes, iv, p + at, n - at);
  put_u32(roc, v);
  srtp_tag(&s->rtp, p, n, roc, p + n);
  return (int)(n + SRTP_TAG);
}

/* The same, with the state of the packet's SSRC kept in s.  Returns the new
 * length, or SRTP_MALFORMED / SRTP_FULL (too many SSRCs). */
__attribute__((unused)) /* used by the unit tests */
static int srtp_protect(struct srtp *s, uint8_t *p, size_t n, size_t cap) {
  if (n < RTP_HDR) return SRTP_MALFORMED;
  struct srtp_ssrc *st = srtp_ssrc(s, get_u32(p + 8), true);
  return st ? srtp_protect_with(s, st, p, n, cap) : SRTP_FULL;
}

/* Checks and decrypts the SRTP packet p[0..n) in place.  Returns the RTP
 * length, or SRTP_MALFORMED, SRTP_AUTH (wrong tag), SRTP_REPLAYED or SRTP_FULL. */
static int srtp_unprotect(struct srtp *s, uint8_t *p, size_t n) {
  if (n < 12 + SRTP_TAG) return SRTP_MALFORMED;
  n -= SRTP_TAG;
  size_t at = rtp_payload_at(p, n);
  if (!at) return SRTP_MALFORMED;
  struct srtp_ssrc tmp = {.ssrc = get_u32(p + 8), .used = true}, *st = srtp_ssrc(s, tmp.ssrc, false);
  if (!st) st = &tmp;
  /* The rollover counter the sender used, guessed from the sequence number (RFC 3711 Appendix A). */
  uint16_t seq = get_u16(p + 2);
  uint32_t v = srtp_roc_guess(st, seq);
  uint64_t index = (uint64_t)v << 16 | seq;
  if (st->rtp_seen && index <= st->rtp_top &&
      (st->rtp_top - index >= SRTP_WINDOW || (st->rtp_window >> (st->rtp_top - index) & 1)))
    return SRTP_REPLAYED;
  uint8_t tag[SRTP_TAG], roc[4], iv[16];
  put_u32(roc, v);
  srtp_tag(&s->rtp, p, n, roc, tag);
  if (!secret_eq(tag, p + n, SRTP_TAG)) return SRTP_AUTH;
  srtp_iv(&s->rtp, st->ssrc, index, iv);
  srtp_ctr(&s->rtp.aes, iv, p + at, n - at);
  if (!st->rtp_seen || index > st->rtp_top) {
    uint64_t shift = st->rtp_seen ? index - st->rtp_top : SRTP_WINDOW;
    st->rtp_window = shift >= SRTP_WINDOW ? 1 : st->rtp_window << shift | 1;
    st->rtp_top = index;
    st->roc = v;
    st->s_l = seq;
  } else {
    st->rtp_window |= 1ull << (st->rtp_top - index);
  }
  st->rtp_seen = true;
  return st == &tmp && srtp_keep(s, &tmp) != SRTP_OK ? SRTP_FULL : (int)n;
}

/* Protects the RTCP packet p[0..n) in place: encrypted after its first 8
 * bytes, then E and the 31-bit SRTCP index, then the tag (RFC 3711 3.4).
 * st is the state of its first SSRC, kept by the caller. */
static int srtcp_protect_with(struct srtp *s, struct srtp_ssrc *st, uint8_t *p, size_t n, size_t cap) {
  if (n < 8 || (p[0] >> 6) != 2 || cap < n + 4 + SRTP_TAG || n > INT_MAX - 4 - SRTP_TAG) return SRTP_MALFORMED;
  st->ssrc = get_u32(p + 4);
  uint32_t index = st->rtcp_next++ & 0x7fffffff;
  uint8_t iv[16];
  srtp_iv(&s->rtcp, st->ssrc, index, iv);
  srtp_ctr(&s->rtcp.aes, iv, p + 8, n - 8);
  put_u32(p + n, 0x80000000u | index);
  srtp_tag(&s->rtcp, p, n, p + n, p + n + 4);
  return (int)(n + 4 + SRTP_TAG);
}

/* The same, with the state of the packet's first SSRC kept in s. */
static int srtcp_protect(struct srtp *s, uint8_t *p, size_t n, size_t cap) {
  if (n < 8) return SRTP_MALFORMED;
  struct srtp_ssrc *st = srtp_ssrc(s, get_u32(p + 4), true);
  return st ? srtcp_protect_with(s, st, p, n, cap) : SRTP_FULL;
}

/* Checks and decrypts the SRTCP packet p[0..n) in place.  Returns the RTCP length, or an SRTP_ error. */
static int srtcp_unprotect(struct srtp *s, uint8_t *p, size_t n) {
  if (n < 8 + 4 + SRTP_TAG) return SRTP_MALFORMED;
  size_t body = n - 4 - SRTP_TAG;
  struct srtp_ssrc tmp = {.ssrc = get_u32(p + 4), .used = true}, *st = srtp_ssrc(s, tmp.ssrc, false);
  if (!st) st = &tmp;
  uint32_t e_index = get_u32(p + body), index = e_index & 0x7fffffff;
  if (st->rtcp_seen && index <= st->rtcp_top &&
      (st->rtcp_top - index >= SRTP_WINDOW || (st->rtcp_window >> (st->rtcp_top - index) & 1)))
    return SRTP_REPLAYED;
  uint8_t tag[SRTP_TAG], iv[16];
  srtp_tag(&s->rtcp, p, body, p + body, tag);
  if (!secret_eq(tag, p + body + 4, SRTP_TAG)) return SRTP_AUTH;
  if (e_index & 0x80000000u) {
    srtp_iv(&s->rtcp, st->ssrc, index, iv);
    srtp_ctr(&s->rtcp.aes, iv, p + 8, body - 8);
  }
  if (!st->rtcp_seen || index > st->rtcp_top) {
    uint32_t shift = st->rtcp_seen ? index - st->rtcp_top : SRTP_WINDOW;
    st->rtcp_window = shift >= SRTP_WINDOW ? 1 : st->rtcp_window << shift | 1;
    st->rtcp_top = index;
  } else {
    st->rtcp_window |= 1ull << (st->rtcp_top - index);
  }
  st->rtcp_seen = true;
  return st == &tmp && srtp_keep(s, &tmp) != SRTP_OK ? SRTP_FULL : (int)body;
}

/* ================================================================== LOOP ==================================================================== */

/* One poll() loop, as Redis's ae.c is to Redis: it knows descriptors, timers
 * and the end of a turn, and nothing of HTTP, sessions or rooms.
 *   - Descriptors are registered with a callback and its context; the pollfd
 *     array grows with them (no fixed count), rebuilt each turn from the slots.
 *   - Timers live in a binary min-heap keyed by their due time on the
 *     monotonic clock, so poll() sleeps exactly until the next one.
 *   - End-of-turn hooks run after the callbacks and timers of every turn, in
 *     the order they were added: the layers above reap what they marked dead
 *     and flush what they queued (nothing is freed inside a callback). */
struct timer {
  uint64_t at;   /* due time, ms */
  size_t slot;   /* 1 + index in the heap; 0 when not armed */
  void (*fn)(struct timer *);
};

typedef void io_fn(void *ctx, short revents);
typedef void hook_fn(void *ctx);

struct loop_io {
  int fd;        /* -1: a free slot; -2: freed this turn (reused from the next) */
  short events;  /* POLLIN, POLLOUT */
  io_fn *fn;
  void *ctx;
};

#define LOOP_HOOKS 8

struct loop {
  struct timer **heap;
  size_t n, cap;
  uint64_t now;             /* mono_ms() at the last wake-up */
  struct loop_io *io;       /* slots; a slot's number stays its own until freed */
  unsigned n_io, cap_io;
  struct pollfd *pfd;       /* this turn's poll set */
  unsigned *pfd_slot;       /* the slot of each of its entries */
  unsigned cap_pfd;
  struct {
    hook_fn *fn;
    void *ctx;
  } hooks[LOOP_HOOKS];
  unsigned n_hooks;
};

static void heap_swap(struct loop *l, size_t a, size_t b) {
  struct timer *t = l->heap[a];
  l->heap[a] = l->heap[b];
  l->heap[b] = t;
  l->heap[a]->slot = a + 1;
  l->heap[b]->slot = b + 1;
}

static void heap_fix(struct loop *l, size_t i) {
  while (i > 0 && l->heap[(i - 1) / 2]->at > l->heap[i]->at) {
    heap_swap(l, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t c = 2 * i + 1, m = i;
    if (c < l->n && l->heap[c]->at < l->heap[m]->at) m = c;
    if (c + 1 < l->n && l->heap[c + 1]->at < l->heap[m]->at) m = c + 1;
    if (m == i) break;
    heap_swap(l, i, m);
    i = m;
  }
}

static void timer_stop(struct loop *l, struct timer *t) {
  if (!t->slot) return;
  size_t i = t->slot - 1;
  t->slot = 0;
  l->n--;
  if (i == l->n) return;
  l->heap[i] = l->heap[l->n];
  l->heap[i]->slot = i + 1;
  heap_fix(l, i);
}

/* Arms (or re-arms) t to fire at time at.  Returns -1 only when out of memory. */
static int timer_at(struct loop *l, struct timer *t, uint64_t at) {
  if (!t->slot) {
    if (l->n == l->cap) {
      size_t nc = l->cap ? 2 * l->cap : 64;
      struct timer **h = realloc(l->heap, nc * sizeof *h);
      if (!h) return -1;
      l->heap = h;
      l->cap = nc;
    }
    l->heap[l->n++] = t;
    t->slot = l->n;
  }
  t->at = at;
  heap_fix(l, t->slot - 1);
  return 0;
}

static int timer_in(struct loop *l, struct timer *t, uint64_t ms) { return timer_at(l, t, l->now + ms); }

/* Arms t at the first multiple of CAMUS_TIMER_GRAIN_MS at or after at: the
 * many deadlines that need no precision share their wake-ups. */
static int timer_at_coarse(struct loop *l, struct timer *t, uint64_t at) {
  return timer_at(l, t, (at + CAMUS_TIMER_GRAIN_MS - 1) / CAMUS_TIMER_GRAIN_MS * CAMUS_TIMER_GRAIN_MS);
}

/* poll()'s timeout: until the next timer, capped by max (-1 = no cap). */
static int timers_timeout(const struct loop *l, int max) {
  if (!l->n) return max;
  uint64_t at = l->heap[0]->at;
  int64_t d = at > l->now ? (int64_t)(at - l->now) : 0;
  if (d > INT_MAX) d = INT_MAX;
  return max >= 0 && max < d ? max : (int)d;
}

/* Fires every due timer; a callback may re-arm its timer or any other. */
static void timers_run(struct loop *l) {
  for (int guard = 0; l->n && l->heap[0]->at <= l->now && guard < CAMUS_TIMERS_PER_TURN; guard++) {
    struct timer *t = l->heap[0];
    timer_stop(l, t);
    t->fn(t);
  }
}


/* Registers fd: fn(ctx, revents) runs when poll() reports one of events on
 * it.  Returns the slot (for loop_io_events and loop_io_del), or -1 when out of memory. */
static int loop_io_add(struct loop *l, int fd, short events, io_fn *fn, void *ctx) {
  unsigned i = 0;
  while (i < l->n_io && l->io[i].fd != -1) i++;
  if (i == l->n_io) {
    if (l->n_io == l->cap_io) {
      unsigned nc = l->cap_io ? 2 * l->cap_io : 16;
      struct loop_io *a = realloc(l->io, nc * sizeof *a);
      if (!a) return -1;
      l->io = a;
      l->cap_io = nc;
    }
    l->n_io++;
  }
  l->io[i] = (struct loop_io){fd, events, fn, ctx};
  return (int)i;
}

static void loop_io_events(struct loop *l, int slot, short events) { l->io[slot].events = events; }

/* Unregisters a slot; no callback of it runs after this, even in this turn. */
static void loop_io_del(struct loop *l, int slot) {
  if (slot >= 0 && (unsigned)slot < l->n_io) l->io[slot].fd = -2;
}

/* Adds a hook run at the end of every turn.  Returns 0, or -1 if there are LOOP_HOOKS already. */
static int loop_hook_add(struct loop *l, hook_fn *fn, void *ctx) {
  if (l->n_hooks == LOOP_HOOKS) return -1;
  l->hooks[l->n_hooks].fn = fn;
  l->hooks[l->n_hooks++].ctx = ctx;
  return 0;
}

/* One turn: waits at most timeout_ms (-1: until a descriptor or timer is
 * due), runs the callbacks of the descriptors that are ready, the timers that
 * are due and the end-of-turn hooks.  Returns -1 only if the poll set cannot grow. */
static int loop_turn(struct loop *l, int timeout_ms) {
  if (l->n_io > l->cap_pfd) {
    struct pollfd *p = realloc(l->pfd, l->n_io * sizeof *p);
    if (p) l->pfd = p;
    unsigned *q = p ? realloc(l->pfd_slot, l->n_io * sizeof *q) : NULL;
    if (q) l->pfd_slot = q;
    if (!p || !q) return -1;
    l->cap_pfd = l->n_io;
  }
  unsigned n = 0;
  for (unsigned i = 0; i < l->n_io; i++) {
    if (l->io[i].fd == -2) l->io[i].fd = -1; /* freed last turn: now a slot like any */
    if (l->io[i].fd < 0) continue;
    l->pfd[n] = (struct pollfd){.fd = l->io[i].fd, .events = l->io[i].events};
    l->pfd_slot[n++] = i;
  }
  l->now = mono_ms();
  int ready = poll(l->pfd, n, timers_timeout(l, timeout_ms));
  l->now = mono_ms();
  for (unsigned k = 0; ready > 0 && k < n; k++) {
    struct loop_io *io = &l->io[l->pfd_slot[k]];
    short re = l->pfd[k].revents;
    if (re && io->fd == l->pfd[k].fd) io->fn(io->ctx, re); /* a slot freed meanwhile has fd -2 */
  }
  timers_run(l);
  for (unsigned h = 0; h < l->n_hooks; h++) l->hooks[h].fn(l->hooks[h].ctx);
  return 0;
}

static void loop_free(struct loop *l) {
  free(l->heap);
  free(l->io);
  free(l->pfd);
  free(l->pfd_slot);
  memset(l, 0, sizeof *l);
}

/* ============================================================== GLOBAL STATE ================================================================ */

/* Everything mutable that is not a server's own.  usrsctp is process-wide and
 * knows sessions only by an opaque handle; ours packs (gen << SESSION_SLOT_BITS
 * | slot) into it, so that a late callback for a freed session finds nothing
 * instead of freed memory.  The scratch buffers are too large for the stack
 * and used by one function at a time (the loop has one thread). */
struct rtc;

#define SESSION_SLOT_BITS 20

static struct {
  struct rtc **table;       /* by slot; NULL: free */
  uint32_t cap, gen;
} sessions;

static struct {
  int users;                /* servers (or load generators) in this process using usrsctp */
  struct timer tick;        /* drives usrsctp's timers while associations exist */
  struct loop *loop;
  uint64_t last;            /* when usrsctp was last told the time */
  uint64_t busy_at;         /* when an SCTP packet last went in or out */
  unsigned assocs;          /* sockets open */
} sctp;

static struct {
  uint8_t udp_in[CAMUS_UDP_BATCH][CAMUS_UDP_DATAGRAM_MAX]; /* udp_readable */
  struct sockaddr_storage udp_from[CAMUS_UDP_BATCH];
  uint8_t dtls_record[MBEDTLS_SSL_IN_CONTENT_LEN];          /* dtls_step */
  char chat_text[4 * CAMUS_CHAT_MAX + 1];                   /* chat_error */
  uint8_t media_out[CAMUS_MEDIA_MAX];                       /* rtc_media_buf, for hosts that send by copy */
} scratch;

/* =============================================================== TRANSPORT ================================================================ */

/* Bytes in and out: HTTP(S) connections on the TCP port, datagrams on the UDP
 * port.  Requests go up to whoever registered on_request; datagrams go up,
 * sorted by their first byte (RFC 7983), to on_stun and on_dtls. */

static int socket_bind(const struct sockaddr_storage *addr, int type) {
  int fd = sys_socket(addr->ss_family, type);
  if (fd < 0) return -1;
  int one = 1;
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr->ss_family == AF_INET6) {
    int zero = 0; /* "::" takes IPv4 too */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  if (bind(fd, (const struct sockaddr *)addr, addr_len(addr)) != 0 ||
      (type == SOCK_STREAM && listen(fd, 128) != 0)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int socket_port(int fd) {
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return -1;
  return addr_port(&sa);
}


/* ---------------------------------------------------------- HTTP connections */

/* The HTTP(S) server: a listening socket and its connections. */
struct http_srv {
  struct loop *loop;
  int log_level;
  int fd, slot, port;
  mbedtls_ssl_config *tls;        /* HTTPS when set */
  unsigned max_conns;             /* connections at once (--max-connections) */
  unsigned request_timeout_sec, idle_timeout_sec;
  struct conn **conns;
  unsigned n_conns, cap_conns, next_id;
  uint64_t accepted, refused, answered[6]; /* for the operator: connections, and responses by class (1xx..5xx) */
  void (*on_request)(void *ctx, struct conn *c, struct http_req *r); /* answers with http_send() */
  /* Optional: a frame of an ICE-TCP connection (RFC 6544, 4571), from c->path; and its end. */
  void (*on_frame)(void *ctx, struct conn *c, uint8_t *p, size_t n);
  void (*on_frames_end)(void *ctx, struct conn *c);
  void *ctx;
  struct addr_map framed;         /* the framed connections by their path */
  size_t max_framed_out;          /* bytes queued on one of them, past which a message is lost: CAMUS_ICE_TCP_MAX_OUT or less */
};

enum { FRAMING_UNKNOWN = 1, FRAMING_ICE, FRAMING_TURN };

/* One TCP (or TLS) client.  Requests are parsed from `in` once complete and
 * answered into `out`; a connection is closed by marking it dead and reaped at
 * the end of the loop turn, never in the middle of a handler. */
struct conn {
  struct http_srv *srv;
  int fd, slot;
  unsigned id;
  struct sockaddr_storage addr;
  uint8_t host[16];          /* host_key(addr) */
  char ip[INET6_ADDRSTRLEN + 2];
  mbedtls_ssl_context *tls;
  bool tls_want_write;       /* the TLS layer waits for the socket to drain */
  struct buf in, out;
  size_t out_off;            /* bytes of out already sent */
  struct timer timer;        /* request deadline while busy, idle deadline otherwise */
  bool busy;                 /* part of a request has arrived */
  bool closing;              /* close once out is flushed */
  bool dead;                 /* close at the end of this turn */
  bool sniffed;              /* its first byte was looked at: HTTP, TLS, or STUN (ICE-TCP, TURN) */
  bool inner_sniffed;        /* and, over TLS, its first byte decrypted: HTTP or TURN */
  uint8_t framed;            /* STUN (see "ICE-TCP and TURN on the same port"): FRAMING_ICE or _TURN; 0: HTTP */
  struct sockaddr_storage path; /* when framed: the peer's address, canonical and tagged TCP */
};


static const char security_headers[] =
    "Content-Security-Policy: default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n";

/* Queues a whole response.  extra holds further header lines, each ending in CRLF. */
static void http_send(struct conn *c, const struct http_req *r, int status, const char *ctype, const void *body,
                      size_t n, const char *extra) {
  bool head = r && str_eq(r->method, "HEAD");
  /* A request refused before its body was read leaves the stream unusable: close after it. */
  bool keep = r && r->keep_alive && !c->closing && status < 500 && status != 408 && status != 411 &&
              status != 413 && status != 414 && status != 431;
  c->srv->answered[status / 100 % 6]++;
  buf_addf(&c->out, "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n", status, http_reason(status), security_headers,
           status == 304 ? 0 : n);
  if (ctype) buf_addf(&c->out, "Content-Type: %s\r\n", ctype);
  if (c->srv->tls) buf_adds(&c->out, "Strict-Transport-Security: max-age=31536000\r\n");
  if (extra) buf_adds(&c->out, extra);
  buf_adds(&c->out, !keep ? "Connection: close\r\n\r\n" : r->minor == 0 ? "Connection: keep-alive\r\n\r\n" : "\r\n");
  if (!head && status != 304) buf_add(&c->out, body, n);
  if (!keep) c->closing = true;
  if (c->out.err) c->dead = true; /* a reader too slow to keep up */
}

/* A JSON error body: {"error": msg}. */
static void http_error(struct conn *c, const struct http_req *r, int status, const char *msg) {
  struct buf b = {0};
  buf_adds(&b, "{\"error\":");
  json_write_str(&b, msg, strlen(msg));
  buf_adds(&b, "}");
  if (b.err)
    http_send(c, r, 500, "application/json", "{}", 2, NULL);
  else
    http_send(c, r, status, "application/json", b.p, b.len, NULL);
  buf_free(&b);
}

static void conn_timeout(struct timer *t) {
  struct conn *c = CONTAINER(t, struct conn, timer);
  if (c->busy && !c->closing) {
    LOG_D(c->srv, "http#%u: request too slow", c->id);
    http_error(c, NULL, 408, "request timeout");
  } else {
    c->dead = true;
  }
}

/* Moves the connection's single timer to the request or the idle deadline. */
static void conn_arm(struct conn *c) {
  struct http_srv *h = c->srv;
  unsigned sec = c->busy ? h->request_timeout_sec : h->idle_timeout_sec;
  if (c->framed == FRAMING_TURN) sec = CAMUS_TURN_LIFETIME + 60; /* its allocation's lifetime decides */
  if (timer_in(h->loop, &c->timer, (uint64_t)sec * 1000) != 0) c->dead = true;
}

static int tls_send_cb(void *ctx, const unsigned char *p, size_t n) {
  struct conn *c = ctx;
  ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
  if (w >= 0) return (int)w;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? MBEDTLS_ERR_SSL_WANT_WRITE
                                                                     : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int tls_recv_cb(void *ctx, unsigned char *p, size_t n) {
  struct conn *c = ctx;
  ssize_t r = recv(c->fd, p, n, 0);
  if (r >= 0) return (int)r;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? MBEDTLS_ERR_SSL_WANT_READ
                                                                     : MBEDTLS_ERR_NET_RECV_FAILED;
}


/* Whether a connection is idle: between requests, nothing to send (an ICE-TCP one never is). */
static bool conn_idle(const struct conn *c) {
  if (c->framed) return false;
  return !c->dead && !c->busy && !c->closing && c->out.len == c->out_off && !c->tls_want_write;
}

/* The table of connections is full: the address holding the most
 * connections loses one (an idle one first, else its oldest), if it holds
 * more than host would.  (It is reaped at the end of this turn.)  Returns
 * whether one was shed. */
static bool conn_shed(struct http_srv *h, const uint8_t host[16]) {
  const uint8_t **keys = malloc((h->n_conns + 1) * sizeof *keys);
  if (!keys) return false;
  unsigned n = 0, most, mine;
  for (unsigned i = 0; i < h->n_conns; i++)
    if (!h->conns[i]->dead) keys[n++] = h->conns[i]->host;
  const uint8_t *heavy = host_heaviest(keys, n, host, &most, &mine);
  struct conn *victim = NULL;
  for (unsigned i = 0; heavy && most > mine + 1 && i < h->n_conns; i++) {
    struct conn *c = h->conns[i];
    if (c->dead || memcmp(c->host, heavy, 16) != 0) continue;
    if (!victim || (conn_idle(c) && !conn_idle(victim)) || (conn_idle(c) == conn_idle(victim) && c->id < victim->id))
      victim = c;
  }
  free(keys);
  if (!victim) return false;
  LOG_D(h, "http#%u: shed (%s holds the most connections)", victim->id, victim->ip);
  victim->dead = true;
  return true;
}

/* Whether the table has room for a connection from host: a share for each
 * address (CAMUS_CONNS_PER_HOST), and the whole (max_conns) once idle
 * connections of the heaviest address are shed.  Else the status to refuse with. */
static int conn_admit(struct http_srv *h, const uint8_t host[16]) {
  unsigned mine = 0, live = 0;
  for (unsigned k = 0; k < h->n_conns; k++) {
    live += !h->conns[k]->dead;
    mine += !h->conns[k]->dead && memcmp(h->conns[k]->host, host, 16) == 0;
  }
  if (mine >= CAMUS_CONNS_PER_HOST) return 429;
  if (live >= h->max_conns && !conn_shed(h, host)) return 503;
  return 0;
}

static void conn_io(void *ctx, short revents);

static void conn_free(struct conn *c) {
  struct http_srv *h = c->srv;
  LOG_D(h, "http#%u: closed", c->id);
  if (c->framed && h->on_frames_end) h->on_frames_end(h->ctx, c);
  if (c->framed) amap_del(&h->framed, &c->path);
  timer_stop(h->loop, &c->timer);
  loop_io_del(h->loop, c->slot);
  if (c->tls) {
    if (!c->dead || c->closing) mbedtls_ssl_close_notify(c->tls);
    mbedtls_ssl_free(c->tls);
    free(c->tls);
  }
  close(c->fd);
  buf_free(&c->in);
  buf_free(&c->out);
  free(c);
}

/* A connection for an accepted descriptor, in the table and the loop; NULL
 * (the descriptor closed) when out of memory. */
static struct conn *conn_new(struct http_srv *h, int fd, const struct sockaddr_storage *addr, const uint8_t host[16]) {
  struct conn *c = NULL;
  if (h->n_conns == h->cap_conns) {
    unsigned nc = h->cap_conns ? 2 * h->cap_conns : 16;
    struct conn **a = realloc(h->conns, nc * sizeof *a);
    if (!a) goto fail;
    h->conns = a;
    h->cap_conns = nc;
  }
  if (!(c = calloc(1, sizeof *c))) goto fail;
  c->srv = h;
  c->fd = fd;
  c->slot = -1;
  c->id = ++h->next_id;
  c->addr = *addr;
  memcpy(c->host, host, 16);
  addr_ip(addr, c->ip, sizeof c->ip, false);
  c->in.max = CAMUS_HTTP_MAX_HEAD + CAMUS_HTTP_MAX_BODY;
  c->out.max = CAMUS_HTTP_MAX_OUT;
  c->timer.fn = conn_timeout;
  if (h->tls) {
    if (!(c->tls = calloc(1, sizeof *c->tls))) goto fail;
    mbedtls_ssl_init(c->tls);
    if (mbedtls_ssl_setup(c->tls, h->tls) != 0) goto fail;
    mbedtls_ssl_set_bio(c->tls, c, tls_send_cb, tls_recv_cb, NULL);
  }
  /* A client that connects must start its request soon; until it does, silence closes it quietly. */
  if ((c->slot = loop_io_add(h->loop, fd, POLLIN, conn_io, c)) < 0 ||
      timer_in(h->loop, &c->timer, (uint64_t)h->request_timeout_sec * 1000) != 0)
    goto fail;
  h->conns[h->n_conns++] = c;
  LOG_D(h, "http#%u: connected from %s", c->id, c->ip);
  return c;
fail:
  if (c) {
    c->dead = true; /* no close_notify */
    conn_free(c);
  } else {
    close(fd);
  }
  return NULL;
}

/* The listening socket is readable: takes what connections it can. */
static void http_accept(void *ctx, short revents) {
  (void)revents;
  struct http_srv *h = ctx;
  for (int i = 0; i < CAMUS_ACCEPTS; i++) {
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    int fd = sys_accept(h->fd, &addr, &alen);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
        LOG_W(h, "accept: %s", strerror(errno));
      return;
    }
    uint8_t host[16];
    host_key(&addr, host);
    int refuse = conn_admit(h, host);
    if (refuse) {
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                 "Retry-After: 5\r\nConnection: close\r\n\r\n";
      static const char many[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n"
                                 "Retry-After: 5\r\nConnection: close\r\n\r\n";
      if (!h->tls) (void)!send(fd, refuse == 503 ? busy : many, refuse == 503 ? sizeof busy - 1 : sizeof many - 1, MSG_NOSIGNAL);
      close(fd);
      h->refused++;
      if (refuse == 503)
        LOG_W(h, "http: connection limit (%u) reached, refusing a client", h->max_conns);
      else
        LOG_I(h, "http: %d connections from one address, refusing another", CAMUS_CONNS_PER_HOST);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (conn_new(h, fd, &addr, host)) h->accepted++;
  }
}

/* Parses and answers every complete request in c->in. */
static void conn_process(struct conn *c) {
  while (!c->closing && !c->dead && c->in.len > 0) {
    if (!c->busy) {
      c->busy = true;
      conn_arm(c);
    }
    struct http_req r;
    int head = http_parse(c->in.p, c->in.len, &r);
    if (head == 0) return;
    if (head < 0) {
      LOG_D(c->srv, "http#%u: refused request (%d)", c->id, -head);
      http_error(c, NULL, -head, http_reason(-head));
      return;
    }
    long long cl = r.content_length < 0 ? 0 : r.content_length;
    if (cl > CAMUS_HTTP_MAX_BODY) {
      http_error(c, &r, 413, "request body too large");
      return;
    }
    if (r.content_length < 0 && str_eq(r.method, "POST")) {
      http_error(c, &r, 411, "Content-Length required");
      return;
    }
    if (c->in.len < (size_t)head + (size_t)cl) return;
    r.body = (struct str){c->in.p + head, (size_t)cl};
    c->srv->on_request(c->srv->ctx, c, &r);
    buf_consume(&c->in, (size_t)head + (size_t)cl);
    c->busy = false;
    conn_arm(c);
  }
}

static long conn_frame_len(struct conn *c, const uint8_t *p, size_t n, size_t *at, size_t *len);

/* Sends what is queued; returns false on a fatal error.  TURN over TLS goes
 * a TLS record a message: a stream is a stream, but some clients (coturn's)
 * take each record for one message. */
static bool conn_flush(struct conn *c) {
  while (c->out_off < c->out.len) {
    const char *p = c->out.p + c->out_off;
    size_t n = c->out.len - c->out_off, at, len;
    long whole = c->tls && c->framed == FRAMING_TURN ? conn_frame_len(c, (const uint8_t *)p, n, &at, &len) : 0;
    if (whole > 0 && (size_t)whole < n) n = (size_t)whole;
    if (c->tls) {
      int w = mbedtls_ssl_write(c->tls, (const uint8_t *)p, n);
      if (w == MBEDTLS_ERR_SSL_WANT_WRITE || w == MBEDTLS_ERR_SSL_WANT_READ) return true;
      if (w < 0) return false;
      c->out_off += (size_t)w;
    } else {
      ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
      if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c->out_off += (size_t)w;
    }
  }
  c->out.len = c->out_off = 0;
  if (c->closing) c->dead = true;
  return true;
}

/* ------------------------------------- ICE-TCP and TURN on the same port */

/* A connection whose first byte is 0 or 1 carries STUN rather than HTTP or
 * TLS (no method's letter, and no TLS record (22), starts so): ICE over TCP
 * (RFC 6544), whose frames have a 16-bit length first (RFC 4571), or TURN
 * over TCP (RFC 8656), whose STUN messages and ChannelData come bare.  Which
 * one the magic cookie tells: at byte 6 of the first message, or at 4.  TURN
 * also comes over TLS on the HTTPS port, told by the first byte decrypted. */
static void conn_become_framed(struct conn *c, bool keep_tls) {
  struct sockaddr_storage canon;
  c->framed = FRAMING_UNKNOWN;
  if (c->tls && !keep_tls) { /* it never spoke TLS: nothing was read through it */
    mbedtls_ssl_free(c->tls);
    free(c->tls);
    c->tls = NULL;
  }
  memset(&c->path, 0, sizeof c->path);
  const struct sockaddr_storage *a = addr_canonical(&c->addr, &canon);
  memcpy(&c->path, a, addr_len(a));
  addr_set_tcp(&c->path);
  c->in.max = 4 + CAMUS_UDP_DATAGRAM_MAX + 3;
  if (amap_put(&c->srv->framed, &c->path, c) != 0) c->dead = true; /* out of memory: as if it had hung up */
}

/* The length of the message or frame at p[0..n) in c's framing (its header
 * and padding included), 0 if more must come first, or -1 if it is none of
 * ours; the payload's offset and length in *at and *len. */
static long conn_frame_len(struct conn *c, const uint8_t *p, size_t n, size_t *at, size_t *len) {
  if (c->framed == FRAMING_UNKNOWN) {
    if (n < 10) return 0;
    int framing = get_u32(p + 4) == STUN_MAGIC ? FRAMING_TURN : get_u32(p + 6) == STUN_MAGIC ? FRAMING_ICE : 0;
    if (!framing) return -1; /* still framed (unknown): conn_free() takes it out of the map of paths */
    c->framed = (uint8_t)framing;
    LOG_D(c->srv, "http#%u: %s", c->id, c->framed == FRAMING_ICE ? "ICE over TCP" : c->tls ? "TURN over TLS" : "TURN over TCP");
  }
  if (c->framed == FRAMING_ICE) {
    if (n < 2) return 0;
    *at = 2, *len = get_u16(p);
    return *len == 0 || *len > CAMUS_UDP_DATAGRAM_MAX ? -1 : (long)(2 + *len);
  }
  if (n < 4) return 0;
  if (p[0] <= 1) { /* a STUN message: its header says how long */
    *at = 0, *len = STUN_HDR + (size_t)get_u16(p + 2);
    return *len > CAMUS_UDP_DATAGRAM_MAX ? -1 : (long)*len;
  }
  if (p[0] < 64 || p[0] > 79) return -1;
  *at = 0, *len = 4 + (size_t)get_u16(p + 2); /* ChannelData, padded to four bytes over TCP (RFC 8656 12.5) */
  return *len > CAMUS_UDP_DATAGRAM_MAX ? -1 : (long)((*len + 3) & ~(size_t)3);
}

/* Bytes read from a framed connection: each whole message goes up, as
 * much at a time as the buffer (one message) holds. */
static void conn_take_frames(struct conn *c, const uint8_t *data, size_t n) {
  while (n && !c->dead) {
    size_t take = MIN(n, c->in.max - c->in.len), at = 0, off, len;
    buf_add(&c->in, data, take);
    data += take, n -= take;
    long whole;
    while (!c->dead && (whole = conn_frame_len(c, (const uint8_t *)c->in.p + at, c->in.len - at, &off, &len)) != 0) {
      if (whole < 0) {
        LOG_D(c->srv, "http#%u: not a frame of ours: closed", c->id);
        c->dead = true;
        break;
      }
      if (c->in.len - at < (size_t)whole) break;
      c->srv->on_frame(c->srv->ctx, c, (uint8_t *)c->in.p + at + off, len);
      at += (size_t)whole;
    }
    buf_consume(&c->in, at);
    if (at) conn_arm(c); /* idle for as long as an HTTP connection may be, then closed */
    if (!at && c->in.len == c->in.max) c->dead = true; /* cannot happen: a message fits; but never spin */
  }
}

/* Queues data as one message on the framed connection of path to, in its
 * framing; false if there is none, or it is too far behind (the message is
 * lost, as a datagram may be). */
static bool conn_frame_send(struct http_srv *h, const struct sockaddr_storage *to, const void *data, size_t n) {
  static const uint8_t zeros[3];
  struct conn *c = amap_get(&h->framed, to);
  if (!c || c->dead) return false;
  size_t pad = c->framed == FRAMING_TURN && n && ((const uint8_t *)data)[0] >= 64 ? (4 - n % 4) % 4 : 0;
  if (n > 0xffff || c->out.len - c->out_off + 2 + n + pad > h->max_framed_out) return false;
  if (c->framed == FRAMING_ICE) {
    uint8_t len[2];
    put_u16(len, (uint16_t)n);
    buf_add(&c->out, len, 2);
  }
  buf_add(&c->out, data, n);
  buf_add(&c->out, zeros, pad);
  return !c->out.err;
}

/* The first byte tells STUN from HTTP(S).  Returns false while nothing has come yet. */
static bool conn_sniff(struct conn *c) {
  uint8_t b;
  ssize_t k = recv(c->fd, &b, 1, MSG_PEEK);
  if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
  c->sniffed = true;
  if (k == 1 && b <= 1 && c->srv->on_frame) conn_become_framed(c, false);
  return true;
}

static void conn_readable(struct conn *c) {
  char tmp[16384];
  if (!c->sniffed && !conn_sniff(c)) return;
  for (int i = 0; i < CAMUS_HTTP_READS && !c->dead; i++) {
    ssize_t n;
    if (c->tls) {
      int r = mbedtls_ssl_read(c->tls, (uint8_t *)tmp, sizeof tmp);
      c->tls_want_write = r == MBEDTLS_ERR_SSL_WANT_WRITE;
      if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) break;
      if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == 0) {
        c->dead = true;
        break;
      }
      if (r < 0) {
        char msg[100];
        mbedtls_strerror(r, msg, sizeof msg);
        LOG_D(c->srv, "http#%u: TLS: %s", c->id, msg);
        c->dead = true;
        break;
      }
      n = r;
    } else {
      n = recv(c->fd, tmp, sizeof tmp, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
      if (n <= 0) {
        c->dead = true;
        break;
      }
    }
    if (c->tls && !c->inner_sniffed && n > 0) { /* the first bytes inside TLS: STUN (TURN over TLS), or HTTP */
      c->inner_sniffed = true;
      if ((uint8_t)tmp[0] <= 1 && c->srv->on_frame) conn_become_framed(c, true);
    }
    if (c->framed) {
      conn_take_frames(c, (const uint8_t *)tmp, (size_t)n);
      continue;
    }
    if (c->closing) continue; /* drain and ignore what follows a final response */
    size_t room = c->in.max - c->in.len;
    if ((size_t)n > room) {
      /* More than one request may fit: parse what we have, then check again. */
      buf_add(&c->in, tmp, room);
      conn_process(c);
      if (c->in.len + ((size_t)n - room) > c->in.max) {
        if (!c->closing) http_error(c, NULL, 431, "request too large");
        continue;
      }
      buf_add(&c->in, tmp + room, (size_t)n - room);
    } else {
      buf_add(&c->in, tmp, (size_t)n);
    }
    conn_process(c);
    if (c->out.len > CAMUS_HTTP_MAX_OUT / 2) break; /* let the reader catch up first */
  }
}


static void conn_io(void *ctx, short revents) {
  struct conn *c = ctx;
  if (revents & (POLLIN | POLLHUP | POLLERR)) conn_readable(c);
  if ((revents & POLLOUT) && c->tls_want_write) conn_readable(c);
  if (!c->dead && c->out.len > c->out_off && !conn_flush(c)) c->dead = true;
}

/* End of a turn: sends what handlers and timers queued, reaps the dead, and
 * tells the loop which connections wait to write. */
static void http_turn_end(void *ctx) {
  struct http_srv *h = ctx;
  for (unsigned i = 0; i < h->n_conns;) {
    struct conn *c = h->conns[i];
    if (!c->dead && c->out.len > c->out_off && !conn_flush(c)) c->dead = true;
    if (c->dead) {
      h->conns[i] = h->conns[--h->n_conns];
      conn_free(c);
      continue;
    }
    loop_io_events(h->loop, c->slot, (short)(POLLIN | (c->out.len > c->out_off || c->tls_want_write ? POLLOUT : 0)));
    i++;
  }
}

/* Listens on addr.  Returns 0, or -1 with errno set. */
static int http_listen(struct http_srv *h, const struct sockaddr_storage *addr) {
  if ((h->fd = socket_bind(addr, SOCK_STREAM)) < 0) return -1;
  h->port = socket_port(h->fd);
  if ((h->slot = loop_io_add(h->loop, h->fd, POLLIN, http_accept, h)) < 0 || loop_hook_add(h->loop, http_turn_end, h) != 0) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

static void http_close(struct http_srv *h) {
  h->on_frames_end = NULL; /* the sessions go next, all of them */
  for (unsigned i = 0; i < h->n_conns; i++) conn_free(h->conns[i]);
  free(h->conns);
  free(h->framed.e);
  h->conns = NULL;
  h->framed = (struct addr_map){0};
  h->n_conns = 0;
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
}

/* -------------------------------------------------------------- the UDP port */

/* Datagrams queued for one sendmmsg() at the end of the loop turn. */
struct udp_out {
  unsigned n;
  size_t len[CAMUS_UDP_BATCH];
  struct sockaddr_storage to[CAMUS_UDP_BATCH];
  uint8_t data[CAMUS_UDP_BATCH][CAMUS_MEDIA_MAX];
};

/* The UDP socket every WebRTC session shares.  Datagrams are sorted by their
 * first byte (RFC 7983): 0-3 STUN (Binding for ICE, the rest for TURN),
 * 20-63 DTLS, 64-79 TURN channels, 128-191 RTP and RTCP. */
struct udp {
  struct loop *loop;
  int log_level;
  int fd, slot, port, family;
  int rcvbuf;                     /* bytes of receive queue to ask for; 0: CAMUS_UDP_RCVBUF */
  struct udp_out *out;            /* allocated on first use */
  void (*on_stun)(void *ctx, const uint8_t *p, size_t n, const struct sockaddr_storage *from);
  void (*on_dtls)(void *ctx, const uint8_t *p, size_t n, const struct sockaddr_storage *from);
  void (*on_media)(void *ctx, uint8_t *p, size_t n, const struct sockaddr_storage *from); /* may change p[0..n) */
  void *ctx;
  /* Optional: STUN of another method than Binding, and ChannelData (the TURN relay's). */
  void (*on_turn)(void *turn, uint8_t *p, size_t n, const struct sockaddr_storage *from);
  void *turn;
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes; /* for the operator (/metrics) */
};

/* Hands the queued datagrams to the kernel: one system call for many. */
static void udp_flush(struct udp *u) {
  struct udp_out *o = u->out;
  if (!o || !o->n) return;
#if HAVE_MMSG
  struct mmsghdr msg[CAMUS_UDP_BATCH];
  struct iovec iov[CAMUS_UDP_BATCH];
  for (unsigned i = 0; i < o->n; i++) {
    iov[i] = (struct iovec){o->data[i], o->len[i]};
    msg[i].msg_hdr = (struct msghdr){.msg_name = &o->to[i], .msg_namelen = addr_len(&o->to[i]), .msg_iov = &iov[i],
                                     .msg_iovlen = 1};
  }
  for (unsigned done = 0; done < o->n;) {
    int k = sendmmsg(u->fd, msg + done, o->n - done, 0);
    if (k <= 0) {
      if (errno != EAGAIN) LOG_D(u, "udp: sendmmsg: %s", strerror(errno));
      k = 1; /* skip the one that failed: like a datagram lost on the way */
    } else {
      for (int i = 0; i < k; i++) u->tx_bytes += o->len[done + (unsigned)i];
      u->tx_packets += (unsigned)k;
    }
    done += (unsigned)k;
  }
#else
  for (unsigned i = 0; i < o->n; i++)
    if (sendto(u->fd, o->data[i], o->len[i], 0, (const struct sockaddr *)&o->to[i], addr_len(&o->to[i])) < 0) {
      if (errno != EAGAIN) LOG_D(u, "udp: sendto: %s", strerror(errno));
    } else {
      u->tx_packets++, u->tx_bytes += o->len[i];
    }
#endif
  o->n = 0;
}

/* Where a datagram for to goes: a dual-stack socket reaches IPv4 peers through mapped addresses. */
static const struct sockaddr_storage *udp_dest(const struct udp *u, const struct sockaddr_storage *to,
                                               struct sockaddr_storage *mapped) {
  if (u->family != AF_INET6 || to->ss_family != AF_INET) return to;
  const struct sockaddr_in *v4 = (const void *)to;
  struct sockaddr_in6 *v6 = (void *)mapped;
  memset(mapped, 0, sizeof *mapped);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = v4->sin_port;
  v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
  return mapped;
}

/* Room for the next datagram of the queue, CAMUS_MEDIA_MAX bytes, written
 * in place and queued by udp_commit() (nothing else may be queued between).
 * NULL if there is no queue. */
static uint8_t *udp_reserve(struct udp *u) {
  if (!u->out && !(u->out = calloc(1, sizeof *u->out))) return NULL;
  if (u->out->n == CAMUS_UDP_BATCH) udp_flush(u);
  return u->out->data[u->out->n];
}

/* Queues the n bytes written at udp_reserve() for to. */
static void udp_commit(struct udp *u, size_t n, const struct sockaddr_storage *to) {
  struct udp_out *o = u->out;
  unsigned i = o->n++;
  o->len[i] = n;
  to = udp_dest(u, to, &o->to[i]);
  if (to != &o->to[i]) memcpy(&o->to[i], to, addr_len(to));
}

/* Queues a datagram (sent by udp_flush() at the end of the loop turn). */
static void udp_send(struct udp *u, const void *data, size_t n, const struct sockaddr_storage *to) {
  uint8_t *slot = n <= CAMUS_MEDIA_MAX ? udp_reserve(u) : NULL;
  if (!slot) { /* no queue, or larger than we make: sent now, in order */
    struct sockaddr_storage mapped;
    udp_flush(u);
    to = udp_dest(u, to, &mapped);
    if (sendto(u->fd, data, n, 0, (const struct sockaddr *)to, addr_len(to)) < 0) {
      if (errno != EAGAIN) LOG_D(u, "udp: sendto: %s", strerror(errno));
    } else {
      u->tx_packets++, u->tx_bytes += n;
    }
    return;
  }
  memcpy(slot, data, n);
  udp_commit(u, n, to);
}

/* One datagram (or an ICE-TCP frame, from a tagged address): its sender's
 * address made canonical, then up by its first byte. */
static void udp_input(struct udp *u, uint8_t *data, size_t n, const struct sockaddr_storage *from) {
  struct sockaddr_storage canon;
  from = addr_canonical(from, &canon);
  u->rx_packets++, u->rx_bytes += n;
  if (n == 0) return;
  uint8_t b = data[0];
  if (b <= 3) {
    if (!stun_is(data, n)) return;
    if (STUN_METHOD(get_u16(data)) != STUN_BINDING && u->on_turn)
      u->on_turn(u->turn, data, n, from);
    else
      u->on_stun(u->ctx, data, n, from);
  } else if (b >= 64 && b <= 79) {
    if (u->on_turn) u->on_turn(u->turn, data, n, from);
  } else if (b >= 20 && b <= 63) {
    u->on_dtls(u->ctx, data, n, from);
  } else if (b >= 128 && b <= 191 && u->on_media) {
    u->on_media(u->ctx, data, n, from);
  }
}

/* Up to CAMUS_UDP_BATCH datagrams from fd, the i-th into scratch.udp_in[i]
 * at offset room (headroom for a header the caller may put in front) and its
 * sender into scratch.udp_from[i].  Returns how many, with their lengths in
 * len[]; one larger than fits (MSG_TRUNC) is counted with length SIZE_MAX, to
 * be dropped whole rather than cut. */
static int udp_recv(int fd, size_t room, size_t len[CAMUS_UDP_BATCH]) {
#if HAVE_MMSG
  struct mmsghdr msg[CAMUS_UDP_BATCH];
  struct iovec iov[CAMUS_UDP_BATCH];
  for (int i = 0; i < CAMUS_UDP_BATCH; i++) {
    iov[i] = (struct iovec){scratch.udp_in[i] + room, sizeof scratch.udp_in[i] - room};
    msg[i].msg_hdr = (struct msghdr){.msg_name = &scratch.udp_from[i], .msg_namelen = sizeof scratch.udp_from[i],
                                     .msg_iov = &iov[i], .msg_iovlen = 1};
  }
  int got = recvmmsg(fd, msg, CAMUS_UDP_BATCH, MSG_DONTWAIT, NULL);
  for (int i = 0; i < got; i++) len[i] = msg[i].msg_hdr.msg_flags & MSG_TRUNC ? SIZE_MAX : msg[i].msg_len;
  return MAX(got, 0);
#else
  int got = 0;
  for (; got < CAMUS_UDP_BATCH; got++) {
    struct iovec iov = {scratch.udp_in[got] + room, sizeof scratch.udp_in[got] - room};
    struct msghdr mh = {.msg_name = &scratch.udp_from[got], .msg_namelen = sizeof scratch.udp_from[got],
                        .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) break;
    len[got] = mh.msg_flags & MSG_TRUNC ? SIZE_MAX : (size_t)n;
  }
  return got;
#endif
}

/* Reads what arrived, CAMUS_UDP_BATCH datagrams a system call, CAMUS_UDP_READS at most a turn. */
static void udp_readable(void *ctx, short revents) {
  (void)revents;
  struct udp *u = ctx;
  size_t len[CAMUS_UDP_BATCH];
  for (int turn = 0; turn < CAMUS_UDP_READS / CAMUS_UDP_BATCH; turn++) {
    int got = udp_recv(u->fd, 0, len);
    for (int i = 0; i < got; i++) /* one larger than any packet of ours is not for us */
      if (len[i] != SIZE_MAX) udp_input(u, scratch.udp_in[i], len[i], &scratch.udp_from[i]);
    if (got < CAMUS_UDP_BATCH) return;
  }
}

static void udp_turn_end(void *ctx) { udp_flush(ctx); }

/* Binds addr.  Returns 0, or -1 with errno set. */
static int udp_open(struct udp *u, const struct sockaddr_storage *addr) {
  if ((u->fd = socket_bind(addr, SOCK_DGRAM)) < 0) return -1;
  int rcvbuf = u->rcvbuf ? u->rcvbuf : CAMUS_UDP_RCVBUF;
  (void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* a smaller queue is no reason to fail */
  u->family = addr->ss_family;
  u->port = socket_port(u->fd);
  if ((u->slot = loop_io_add(u->loop, u->fd, POLLIN, udp_readable, u)) < 0 || loop_hook_add(u->loop, udp_turn_end, u) != 0) {
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

static void udp_close(struct udp *u) {
  udp_flush(u);
  free(u->out);
  u->out = NULL;
  if (u->fd >= 0) close(u->fd);
  u->fd = -1;
}

/* ----------------------------------------------------------- the TURN relay */

/* A TURN server (RFC 8656) on the UDP port, for browsers that cannot reach
 * each other: Allocate, Refresh, CreatePermission and ChannelBind requests,
 * Send and Data indications, and ChannelData (first byte 64-79, RFC 7983).
 * Requests carry long-term credentials (a REALM, a NONCE we sign with the
 * time it runs out, and MESSAGE-INTEGRITY keyed with MD5(user:realm:pass))
 * in the ephemeral form of the "TURN REST API": user "<expiry>:<id>",
 * password base64(HMAC-SHA1(secret, user)), so that nothing is stored per
 * user and a leaked password is worth nothing past its expiry.  Each
 * allocation is a UDP socket on a port of --turn-ports; data goes only to
 * and from peers the client gave a permission for, and never to loopback,
 * link-local, private or the server's own addresses (but its relay and
 * media ports) unless the operator allowed their ranges (--turn-allow).
 * What a client sends the media port goes up to it without a hop through the
 * network, and what the server sends a relayed address comes back the same
 * way (turn_from_media): a member of an SFU room that reaches Camus only by
 * TURN over TLS costs no more system calls than one over ICE-TCP. */
#define TURN_REALM "camus"
#define TURN_PERMISSION_MS 300000 /* RFC 8656: a permission lasts 5 minutes */
#define TURN_CHANNEL_MS 600000    /* and a channel binding 10 */
#define TURN_NONCE_SEC 600        /* how long a nonce of ours is good for */
/* The error codes refusals are counted by, for the operator; the last counts every other one. */
static const int turn_refusal_codes[] = {401, 438, 403, 486, 437, 441, 400, 0};
#define TURN_REFUSAL_CODES ((int)COUNT(turn_refusal_codes))


struct turn_alloc {
  struct turn *t;
  struct sockaddr_storage client;  /* the far end of its 5-tuple */
  struct sockaddr_storage relayed; /* the address peers send to */
  uint8_t host[16];                /* host_key(client), for the quota per address */
  int fd, slot;
  uint64_t until;                  /* ms: expiry, refreshed by Refresh */
  uint8_t key[16];                 /* MD5(user:realm:password): signs our answers */
  uint8_t txid[12];                /* of the Allocate that made it: a retransmission gets the same answer */
  char user[129];                  /* as turn_key() takes it: whole, so that its member is counted right */
  struct turn_perm {
    struct sockaddr_storage peer; /* the port does not matter */
    uint64_t until;
    uint8_t kind;                 /* what its address is to the relay (enum turn_peer_kind), found once */
  } perms[CAMUS_TURN_PERMISSIONS];
  struct turn_channel {
    uint16_t number; /* 0: free */
    struct sockaddr_storage peer;
    uint64_t until;
  } channels[CAMUS_TURN_CHANNELS];
  double tokens;                   /* bytes it may still relay, both ways (a bucket of CAMUS_TURN_KBPS) */
  uint64_t tokens_at;
  uint64_t bytes_in, bytes_out, dropped;
  struct sockaddr_storage media_peer; /* the server's address at its media port the client last sent to */
};

struct turn {
  struct loop *loop;
  int log_level;
  /* Down: a message to a client (on the UDP port, or its TCP or TLS connection when to is tagged TCP). */
  void (*send)(void *ctx, const void *data, size_t n, const struct sockaddr_storage *to);
  /* Across: what a client sends the server's media port, as a datagram from its relayed address. */
  void (*to_media)(void *ctx, uint8_t *p, size_t n, const struct sockaddr_storage *from);
  void *ctx;
  struct crypto *crypto;
  uint8_t secret[64];              /* of the REST credentials */
  size_t secret_len;
  uint8_t nonce_key[32];
  int port_min, port_max, next_port;
  int media_port;                  /* the server's own UDP port, which members may relay to */
  struct cidr allow[CAMUS_MAX_TURN_ALLOW];
  int n_allow;
  const struct sockaddr_storage *own; /* the server's own addresses: local ones first, then --public-ip ones */
  int n_own;
  struct sockaddr_storage public_v4;  /* the first IPv4 --public-ip: what peers are told (behind a NAT) */
  struct turn_alloc *allocs[CAMUS_TURN_ALLOCATIONS];
  unsigned n, max;                     /* allocations, and the cap on them (CAMUS_TURN_ALLOCATIONS or fewer) */
  struct addr_map by_client, by_relay; /* the allocations by their client's address and by their relayed one */
  struct timer sweep;
  uint64_t made, relayed; /* for the operator: allocations made; bytes relayed by those released */
  uint64_t refused[TURN_REFUSAL_CODES]; /* and requests refused, by code */
};

/* What an address is to the relay: one the operator allowed (--turn-allow)
 * or any public one is open; the server's own are open only at its relay
 * ports (two clients of ours relaying to each other) and its media port (a
 * member of an SFU room that reaches it only through TURN); the unspecified
 * address, multicast, broadcast, loopback, link-local, private and shared
 * (carrier NAT) ranges are refused.  Found once per permission. */
enum turn_peer_kind { TURN_PEER_REFUSED, TURN_PEER_OPEN, TURN_PEER_OWN };

static enum turn_peer_kind turn_peer_kind(const struct turn *t, const struct sockaddr_storage *peer) {
  static const struct cidr closed[] = {
      {{0}, AF_INET, 8},           {{127}, AF_INET, 8},          {{10}, AF_INET, 8},
      {{172, 16}, AF_INET, 12},    {{192, 168}, AF_INET, 16},    {{169, 254}, AF_INET, 16},
      {{100, 64}, AF_INET, 10},    {{224}, AF_INET, 3},          {{0}, AF_INET6, 128},
      {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, AF_INET6, 128}, {{0xfc}, AF_INET6, 7},
      {{0xfe, 0x80}, AF_INET6, 10}, {{0xff}, AF_INET6, 8}};
  uint8_t ip[16];
  int family = addr_bytes(peer, ip);
  for (int i = 0; i < t->n_allow; i++)
    if (cidr_has(&t->allow[i], family, ip)) return TURN_PEER_OPEN;
  for (int i = 0; i < t->n_own; i++) {
    uint8_t own[16];
    if (addr_bytes(&t->own[i], own) == family && !memcmp(own, ip, 16)) return TURN_PEER_OWN;
  }
  for (size_t i = 0; i < COUNT(closed); i++)
    if (cidr_has(&closed[i], family, ip)) return TURN_PEER_REFUSED;
  bool broadcast = family == AF_INET && ip[0] == 255 && ip[1] == 255 && ip[2] == 255 && ip[3] == 255;
  return broadcast ? TURN_PEER_REFUSED : TURN_PEER_OPEN;
}

/* Whether data may go to and from a port of an address of that kind. */
static bool turn_port_ok(const struct turn *t, enum turn_peer_kind kind, int port) {
  if (port == 0 || kind == TURN_PEER_REFUSED) return false;
  return kind == TURN_PEER_OPEN || (port >= t->port_min && port <= t->port_max) || port == t->media_port;
}

static struct turn_alloc *turn_find(const struct turn *t, const struct sockaddr_storage *client) {
  return amap_get(&t->by_client, client);
}

static void turn_free(struct turn_alloc *a, const char *why) {
  struct turn *t = a->t;
  char ip[INET6_ADDRSTRLEN + 2];
  addr_ip(&a->client, ip, sizeof ip, true);
  LOG_I(t, "turn: %s:%d (%s) released relay port %d: %s; %llu bytes relayed out, %llu in, %llu dropped", ip,
        addr_port(&a->client), a->user, addr_port(&a->relayed), why, (unsigned long long)a->bytes_out,
        (unsigned long long)a->bytes_in, (unsigned long long)a->dropped);
  loop_io_del(t->loop, a->slot);
  close(a->fd);
  amap_del(&t->by_client, &a->client);
  amap_del(&t->by_relay, &a->relayed);
  t->relayed += a->bytes_in + a->bytes_out;
  for (unsigned i = 0; i < t->n; i++)
    if (t->allocs[i] == a) t->allocs[i] = t->allocs[--t->n];
  free(a);
}

/* Whether n more bytes fit the allocation's bitrate: a second's worth at most at once. */
static bool turn_budget(struct turn_alloc *a, size_t n) {
  double rate = CAMUS_TURN_KBPS * 125.0;
  if (bucket_take(&a->tokens, &a->tokens_at, rate, rate, (double)n, a->t->loop->now)) return true;
  a->dropped++;
  return false;
}

static struct turn_perm *turn_permission(struct turn_alloc *a, const struct sockaddr_storage *peer) {
  uint8_t ip[16], q[16];
  int family = addr_bytes(peer, ip);
  for (int i = 0; i < CAMUS_TURN_PERMISSIONS; i++)
    if (a->perms[i].until > a->t->loop->now && addr_bytes(&a->perms[i].peer, q) == family && !memcmp(q, ip, 16))
      return &a->perms[i];
  return NULL;
}

/* Installs or refreshes the permission for peer's address; false if all are taken. */
static bool turn_permit(struct turn_alloc *a, const struct sockaddr_storage *peer) {
  struct turn_perm *p = turn_permission(a, peer);
  for (int i = 0; !p && i < CAMUS_TURN_PERMISSIONS; i++)
    if (a->perms[i].until <= a->t->loop->now) p = &a->perms[i];
  if (!p) return false;
  p->peer = *peer;
  p->until = a->t->loop->now + TURN_PERMISSION_MS;
  p->kind = (uint8_t)turn_peer_kind(a->t, peer);
  return true;
}

/* The live channel with that number, or (number 0) to that peer. */
static struct turn_channel *turn_channel(struct turn_alloc *a, uint16_t number, const struct sockaddr_storage *peer) {
  if (!number && !peer) return NULL;
  for (int i = 0; i < CAMUS_TURN_CHANNELS; i++) {
    struct turn_channel *c = &a->channels[i];
    if (c->number && c->until > a->t->loop->now && (number ? c->number == number : addr_same(&c->peer, peer))) return c;
  }
  return NULL;
}

/* The member a REST user name "<expiry>:<id>" was made for: its id. */
static struct str turn_member(const void *user, size_t n) {
  const char *colon = memchr(user, ':', n);
  return colon ? (struct str){colon + 1, n - (size_t)(colon + 1 - (const char *)user)} : (struct str){user, n};
}

/* A nonce: when it runs out (seconds, hex) and a MAC of that with the
 * client's address, so that it needs no state and is good for one client. */
static void turn_nonce(const struct turn *t, const struct sockaddr_storage *client, uint64_t until, char out[33]) {
  uint8_t msg[8 + 20], mac[32];
  struct addr_key k = addr_key(client);
  for (int i = 0; i < 8; i++) msg[i] = (uint8_t)(until >> (56 - 8 * i));
  memcpy(msg + 8, k.b, 20);
  hmac_sha256(t->nonce_key, sizeof t->nonce_key, msg, sizeof msg, mac);
  snprintf(out, 33, "%016llx", (unsigned long long)until);
  hex_encode(out + 16, mac, 8);
}

static bool turn_nonce_ok(const struct turn *t, const struct sockaddr_storage *client, const uint8_t *n, size_t len) {
  char want[33];
  uint64_t until = 0;
  if (len != 32) return false;
  for (int i = 0; i < 16; i++) {
    int h = hex_value(n[i]);
    if (h < 0) return false;
    until = until << 4 | (uint64_t)h;
  }
  if (until < (uint64_t)time(NULL)) return false;
  turn_nonce(t, client, until, want);
  return secret_eq(want, n, 32);
}

/* The password of a REST-API user name: base64(HMAC-SHA1(secret, user)). */
static void turn_password(const struct turn *t, const char *user, size_t n, char out[32]) {
  uint8_t mac[20];
  size_t olen = 0;
  if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), t->secret, t->secret_len, (const uint8_t *)user, n,
                      mac) != 0 ||
      mbedtls_base64_encode((uint8_t *)out, 32, &olen, mac, sizeof mac) != 0)
    olen = 0;
  out[olen] = 0;
}

/* Credentials for a member (id) of a room: good for CAMUS_TURN_TTL seconds. */
static void turn_credentials(const struct turn *t, const char *id, char user[64], char pass[32]) {
  int n = snprintf(user, 64, "%llu:%s", (unsigned long long)time(NULL) + CAMUS_TURN_TTL, id);
  turn_password(t, user, (size_t)n, pass);
}

/* The long-term key of a request's USERNAME, if its expiry is still to come
 * and its MESSAGE-INTEGRITY checks with it.  Returns false otherwise. */
static bool turn_key(const struct turn *t, const uint8_t *p, size_t n, const struct stun_msg *m, uint8_t key[16]) {
  char user[129], pass[32], text[sizeof user + sizeof TURN_REALM + 32];
  unsigned long long until = 0;
  size_t i = 0;
  if (!m->username || m->username_len >= sizeof user) return false;
  memcpy(user, m->username, m->username_len);
  user[m->username_len] = 0;
  while (i < 12 && isdigit((unsigned char)user[i])) until = until * 10 + (unsigned)(user[i++] - '0');
  if (i == 0 || user[i] != ':' || until < (unsigned long long)time(NULL)) return false;
  turn_password(t, user, m->username_len, pass);
  int tl = snprintf(text, sizeof text, "%s:" TURN_REALM ":%s", user, pass);
  if (tl < 0 || (size_t)tl >= sizeof text || mbedtls_md5_ret((const uint8_t *)text, (size_t)tl, key) != 0) return false;
  return stun_integrity_ok(p, n, m, key, 16);
}

/* An answer to the request m from `to`: success or error (code), signed with key when given. */
static void turn_reply(struct turn *t, const struct sockaddr_storage *to, struct stun_writer *w, const uint8_t *key) {
  if (key) stun_integrity(w, key, 16);
  stun_fingerprint(w);
  if (!w->err) t->send(t->ctx, w->p, w->len, to);
}

/* An error answer.  Unsigned, it goes over UDP to an address that has shown
 * nothing: no larger than amplification allows, its reason phrase left out
 * if that makes it fit (a browser's first Allocate is 28 bytes, and must get
 * its 401 with a realm and a nonce: 84 bytes so). */
static void turn_refuse(struct turn *t, const struct stun_msg *m, const struct sockaddr_storage *to, int code,
                        const char *reason, const uint8_t *key) {
  uint8_t out[256];
  size_t most = key || addr_is_tcp(to) ? sizeof out : (size_t)CAMUS_AMPLIFICATION * (STUN_HDR + m->len);
  int k = 0;
  while (k < TURN_REFUSAL_CODES - 1 && turn_refusal_codes[k] != code) k++;
  t->refused[k]++;
  for (int terse = 0; terse < 2; terse++) {
    struct stun_writer w = {out, sizeof out, 0, false};
    stun_begin(&w, (uint16_t)(STUN_METHOD(m->type) | STUN_ERROR), m->txid);
    stun_error(&w, code, terse ? "" : reason);
    if (code == 401 || code == 438) { /* a realm and a fresh nonce to try (again) with */
      char nonce[33];
      turn_nonce(t, to, (uint64_t)time(NULL) + TURN_NONCE_SEC, nonce);
      stun_attr(&w, STUN_A_REALM, TURN_REALM, sizeof TURN_REALM - 1);
      stun_attr(&w, STUN_A_NONCE, nonce, 32);
    }
    if (code == 420) { /* which (RFC 8489 section 14.13) */
      uint8_t list[8];
      for (int i = 0; i < m->n_unknown; i++) put_u16(list + 2 * i, m->unknown[i]);
      stun_attr(&w, STUN_A_UNKNOWN_ATTRIBUTES, list, (uint16_t)(2 * m->n_unknown));
    }
    if (w.len + (key ? 24 : 0) + 8 <= most) {
      turn_reply(t, to, &w, key);
      return;
    }
  }
}

static void turn_relay_readable(void *ctx, short revents);

/* The lifetime a request gets (RFC 8656 7.2, 8.2): what it asks within [the default 600 s, CAMUS_TURN_LIFETIME]. */
static uint32_t turn_lifetime(const struct stun_msg *m) {
  return m->has_lifetime ? MIN(MAX(m->lifetime, 600u), (uint32_t)MAX(CAMUS_TURN_LIFETIME, 600)) : 600u;
}

/* Allocate: a relay port for the client, if its quotas allow.  Returns 0
 * (answered), or the error code to answer with and *why. */
static int turn_allocate(struct turn *t, const struct stun_msg *m, const struct sockaddr_storage *from,
                         const uint8_t key[16], const char **why) {
  uint8_t out[256], host[16];
  struct stun_writer w = {out, sizeof out, 0, false};
  struct turn_alloc *a = turn_find(t, from);
  if (a && memcmp(a->txid, m->txid, 12) != 0) return *why = "Allocation Mismatch", 437;
  if (!a) {
    if (m->transport < 0) return *why = "Bad Request: no REQUESTED-TRANSPORT", 400;
    if (m->transport != 17) return *why = "Unsupported Transport Protocol", 442;
    if (m->reserves) return *why = "Insufficient Capacity: no port reservations", 508;
    if (m->family == 2) return *why = "Address Family not Supported", 440;
    /* The quotas: the whole relay's, the address's, and the member's (the id after the expiry in its user name). */
    struct str member = turn_member(m->username, m->username_len);
    unsigned from_host = 0, from_member = 0;
    host_key(from, host);
    for (unsigned i = 0; i < t->n; i++) {
      struct turn_alloc *o = t->allocs[i];
      struct str theirs = turn_member(o->user, strlen(o->user));
      from_host += !memcmp(o->host, host, 16);
      from_member += theirs.n == member.n && !memcmp(theirs.p, member.p, member.n);
    }
    if (t->n >= t->max || from_host >= CAMUS_TURN_PER_HOST || from_member >= CAMUS_TURN_PER_MEMBER)
      return *why = "Allocation Quota Reached", 486;
    if (!(a = calloc(1, sizeof *a))) return *why = "Insufficient Capacity", 508;
    a->t = t;
    a->fd = -1;
    /* Bound to the one address it is known by (RFC 8656: data to peers leaves from the relayed address),
     * the server's first own IPv4 address; peers are told the first --public-ip instead if there is one. */
    struct sockaddr_storage bind_to = {0};
    for (int i = 0; i < t->n_own && !bind_to.ss_family; i++)
      if (t->own[i].ss_family == AF_INET) bind_to = t->own[i];
    if (bind_to.ss_family != AF_INET) addr_parse("127.0.0.1", 0, &bind_to);
    int span = t->port_max - t->port_min + 1;
    for (int k = 0; k < span && a->fd < 0; k++) {
      int port = t->port_min + (t->next_port + k) % span;
      if (m->even_port && port % 2) continue;
      ((struct sockaddr_in *)(void *)&bind_to)->sin_port = htons((uint16_t)port);
      if ((a->fd = socket_bind(&bind_to, SOCK_DGRAM)) >= 0) t->next_port = (t->next_port + k + 1) % span;
    }
    if (a->fd < 0 || (a->slot = loop_io_add(t->loop, a->fd, POLLIN, turn_relay_readable, a)) < 0) {
      if (a->fd >= 0) close(a->fd);
      free(a);
      return *why = "Insufficient Capacity: no relay port free", 508;
    }
    a->client = *from;
    memcpy(a->host, host, 16);
    memcpy(a->key, key, 16);
    memcpy(a->txid, m->txid, 12);
    snprintf(a->user, sizeof a->user, "%.*s", (int)m->username_len, (const char *)m->username);
    a->relayed = t->public_v4.ss_family == AF_INET ? t->public_v4 : bind_to;
    ((struct sockaddr_in *)(void *)&a->relayed)->sin_port = htons((uint16_t)socket_port(a->fd));
    if (amap_put(&t->by_client, from, a) != 0 || amap_put(&t->by_relay, &a->relayed, a) != 0) {
      amap_del(&t->by_client, from);
      loop_io_del(t->loop, a->slot);
      close(a->fd);
      free(a);
      return *why = "Insufficient Capacity", 508;
    }
    t->allocs[t->n++] = a;
    t->made++;
    char ip[INET6_ADDRSTRLEN + 2], rip[INET6_ADDRSTRLEN + 2];
    addr_ip(from, ip, sizeof ip, true);
    addr_ip(&a->relayed, rip, sizeof rip, true);
    LOG_I(t, "turn: %s:%d (%s) allocated relay %s:%d", ip, addr_port(from), a->user, rip, addr_port(&a->relayed));
  }
  uint32_t life = turn_lifetime(m);
  a->until = t->loop->now + (uint64_t)life * 1000;
  stun_begin(&w, TURN_ALLOCATE | STUN_SUCCESS, m->txid);
  stun_xor_address(&w, TURN_A_XOR_RELAYED_ADDRESS, (const struct sockaddr *)&a->relayed);
  stun_xor_address(&w, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)from);
  stun_attr_u32(&w, TURN_A_LIFETIME, life);
  turn_reply(t, from, &w, key);
  return 0;
}

/* Refresh, CreatePermission, ChannelBind: on the client's allocation.  Returns as turn_allocate(). */
static int turn_request(struct turn *t, struct turn_alloc *a, const struct stun_msg *m,
                        const struct sockaddr_storage *from, const uint8_t key[16], const char **why) {
  uint8_t out[128];
  struct stun_writer w = {out, sizeof out, 0, false};
  uint16_t method = STUN_METHOD(m->type);
  if (method == TURN_REFRESH) {
    uint32_t life = m->has_lifetime && m->lifetime == 0 ? 0 : turn_lifetime(m);
    stun_begin(&w, TURN_REFRESH | STUN_SUCCESS, m->txid);
    stun_attr_u32(&w, TURN_A_LIFETIME, life);
    turn_reply(t, from, &w, key);
    if (life == 0)
      turn_free(a, "released by its client");
    else
      a->until = t->loop->now + (uint64_t)life * 1000;
    return 0;
  }
  if (m->n_peers == 0 || m->bad_peer || m->too_many_peers) return *why = "Bad Request", 400;
  for (int i = 0; i < m->n_peers; i++)
    if (m->peers[i].ss_family != a->relayed.ss_family) return *why = "Peer Address Family Mismatch", 443;
  for (int i = 0; i < m->n_peers; i++)
    if (!turn_port_ok(t, turn_peer_kind(t, &m->peers[i]), addr_port(&m->peers[i])))
      return *why = "Forbidden: not a peer we relay to", 403;
  if (method == TURN_CHANNEL_BIND) {
    const struct sockaddr_storage *peer = &m->peers[0];
    if (!m->has_channel || m->channel < 0x4000 || m->channel > 0x4fff || m->n_peers != 1)
      return *why = "Bad Request: one peer and a channel number within 0x4000-0x4FFF", 400;
    struct turn_channel *c = turn_channel(a, m->channel, NULL), *d = turn_channel(a, 0, peer);
    if ((c && c != d) || (d && d != c)) return *why = "Bad Request: channel number or peer bound otherwise", 400;
    for (int i = 0; !c && i < CAMUS_TURN_CHANNELS; i++)
      if (!a->channels[i].number || a->channels[i].until <= t->loop->now) c = &a->channels[i];
    if (!c || !turn_permit(a, peer)) return *why = "Insufficient Capacity", 508;
    c->number = m->channel;
    c->peer = *peer;
    c->until = t->loop->now + TURN_CHANNEL_MS;
  } else {
    for (int i = 0; i < m->n_peers; i++)
      if (!turn_permit(a, &m->peers[i])) return *why = "Insufficient Capacity", 508;
  }
  stun_begin(&w, (uint16_t)(method | STUN_SUCCESS), m->txid);
  turn_reply(t, from, &w, key);
  return 0;
}

/* Data from the client to a peer it has a permission for.  To the server's
 * own media port it goes up without leaving the process, but only what a
 * member sends there (RFC 7983: STUN Binding, DTLS, RTP and RTCP), never
 * TURN again. */
static void turn_to_peer(struct turn_alloc *a, const struct sockaddr_storage *peer, uint8_t *data, size_t n) {
  struct turn *t = a->t;
  struct turn_perm *perm = turn_permission(a, peer);
  int port = addr_port(peer);
  /* A permission is for an address (RFC 8656 9): the policy is for a port too, checked each time. */
  if (!perm || !turn_port_ok(t, perm->kind, port)) return;
  if (perm->kind == TURN_PEER_OWN && port == t->media_port && t->to_media) { /* the SFU's own caps meter it */
    bool turn = n == 0 || (data[0] >= 64 && data[0] <= 79) || (data[0] <= 3 && (n < 2 || STUN_METHOD(get_u16(data)) != STUN_BINDING));
    if (turn) return;
    a->media_peer = *peer;
    a->bytes_out += n;
    t->to_media(t->ctx, data, n, &a->relayed);
    return;
  }
  if (!turn_budget(a, n)) return;
  if (sendto(a->fd, data, n, 0, (const struct sockaddr *)peer, addr_len(peer)) >= 0) a->bytes_out += n;
}

/* Data from a peer to the client, data[-36..0) free for a header: on a
 * channel if one is bound, else in a Data indication.  metered: within the
 * allocation's bitrate (not what the server's own SFU sends, which its caps
 * meter already). */
static void turn_from_peer(struct turn_alloc *a, const struct sockaddr_storage *peer, uint8_t *data, size_t n, bool metered) {
  struct turn *t = a->t;
  struct turn_perm *perm = turn_permission(a, peer);
  if (!perm || !turn_port_ok(t, perm->kind, addr_port(peer)) || (metered && !turn_budget(a, n))) return;
  a->bytes_in += n;
  struct turn_channel *c = turn_channel(a, 0, peer);
  if (c) {
    put_u16(data - 4, c->number);
    put_u16(data - 2, (uint16_t)n);
    t->send(t->ctx, data - 4, 4 + n, &a->client);
    return;
  }
  uint8_t out[CAMUS_UDP_DATAGRAM_MAX + 64], txid[12];
  struct stun_writer w = {out, sizeof out, 0, false};
  random_bytes(t->crypto, txid, sizeof txid);
  stun_begin(&w, TURN_DATA | STUN_INDICATION, txid);
  stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)peer);
  stun_attr(&w, TURN_A_DATA, data, (uint16_t)n);
  if (!w.err) t->send(t->ctx, w.p, w.len, &a->client);
}

/* The allocation whose relayed address `to` is, if any: what the server sends there goes to its client. */
static struct turn_alloc *turn_relaying(const struct turn *t, const struct sockaddr_storage *to) {
  return t->by_relay.n ? amap_get(&t->by_relay, to) : NULL;
}

/* The server's datagram to an allocation's relayed address: to its client, from the media port. */
static void turn_from_media(struct turn_alloc *a, const void *data, size_t n) {
  uint8_t buf[36 + CAMUS_UDP_DATAGRAM_MAX];
  if (n > sizeof buf - 36 || !a->media_peer.ss_family) return;
  memcpy(buf + 36, data, n);
  turn_from_peer(a, &a->media_peer, buf + 36, n, false);
}

/* A STUN message of TURN's, or ChannelData, from a client on the UDP port. */
static void turn_input(void *ctx, uint8_t *p, size_t n, const struct sockaddr_storage *from) {
  struct turn *t = ctx;
  struct turn_alloc *a = turn_find(t, from);
  if (p[0] >= 64 && p[0] <= 79) { /* ChannelData: number, length, data (RFC 8656 section 12.4) */
    struct turn_channel *c;
    if (n < 4 || !a || (size_t)get_u16(p + 2) > n - 4 || !(c = turn_channel(a, get_u16(p), NULL))) return;
    turn_to_peer(a, &c->peer, p + 4, get_u16(p + 2));
    return;
  }
  struct stun_msg m;
  if (stun_parse(p, n, &m) != 0 || (m.fingerprint && !m.fingerprint_ok)) return;
  uint16_t method = STUN_METHOD(m.type), cls = STUN_CLASS(m.type);
  if (cls == STUN_INDICATION) {
    if (method == TURN_SEND && a && m.n_peers == 1 && m.has_data)
      turn_to_peer(a, &m.peers[0], p + (m.data - p), m.data_len); /* m.data points into p */
    return;
  }
  if (cls != STUN_REQUEST ||
      (method != TURN_ALLOCATE && method != TURN_REFRESH && method != TURN_CREATE_PERMISSION && method != TURN_CHANNEL_BIND))
    return;
  /* Long-term credentials (RFC 8489 section 9.2): a first request learns the realm and a nonce. */
  uint8_t key[16];
  const uint8_t *signed_with = NULL;
  const char *why = "Unauthorized"; /* no credentials yet (a client's first try), or wrong ones */
  int code = 401;
  if (!m.integrity_at) {
    code = 401;
  } else if (!m.username || !m.realm || !m.nonce) {
    code = 400, why = "Bad Request: USERNAME, REALM and NONCE go with MESSAGE-INTEGRITY";
  } else if (!turn_nonce_ok(t, from, m.nonce, m.nonce_len)) {
    code = 438, why = "Stale Nonce";
  } else if (m.realm_len == sizeof TURN_REALM - 1 && !memcmp(m.realm, TURN_REALM, m.realm_len) && turn_key(t, p, n, &m, key)) {
    signed_with = key;
    if (m.n_unknown)
      code = 420, why = "Unknown Attribute";
    else if (method == TURN_ALLOCATE)
      code = turn_allocate(t, &m, from, key, &why);
    else if (!a)
      code = 437, why = "Allocation Mismatch";
    else if (memcmp(a->key, key, 16) != 0)
      code = 441, why = "Wrong Credentials";
    else
      code = turn_request(t, a, &m, from, key, &why);
  }
  if (code) turn_refuse(t, &m, from, code, why, signed_with);
}

/* Datagrams from peers to a relay port: to its client, read in batches with room in front for a header. */
static void turn_relay_readable(void *ctx, short revents) {
  (void)revents;
  struct turn_alloc *a = ctx;
  size_t len[CAMUS_UDP_BATCH];
  for (int turn = 0; turn < CAMUS_UDP_READS / CAMUS_UDP_BATCH; turn++) {
    int got = udp_recv(a->fd, 36, len);
    for (int i = 0; i < got; i++) {
      struct sockaddr_storage canon;
      if (len[i] == SIZE_MAX || len[i] > CAMUS_UDP_DATAGRAM_MAX - 36 - 8) { /* larger than we relay: dropped whole */
        a->dropped++;
        continue;
      }
      turn_from_peer(a, addr_canonical(&scratch.udp_from[i], &canon), scratch.udp_in[i] + 36, len[i], true);
    }
    if (got < CAMUS_UDP_BATCH) return;
  }
}

/* Once a second: allocations past their lifetime go. */
static void turn_sweep(struct timer *tm) {
  struct turn *t = CONTAINER(tm, struct turn, sweep);
  for (unsigned i = 0; i < t->n;) {
    struct turn_alloc *a = t->allocs[i];
    if (a->until <= t->loop->now)
      turn_free(a, "its lifetime ran out");
    else
      i++;
  }
  timer_in(t->loop, &t->sweep, 1000);
}

/* A client's TCP or TLS connection closed: so does its allocation. */
static void turn_client_gone(struct turn *t, const struct sockaddr_storage *client) {
  struct turn_alloc *a = turn_find(t, client);
  if (a) turn_free(a, "its connection closed");
}

static void turn_close(struct turn *t) {
  timer_stop(t->loop, &t->sweep);
  while (t->n) turn_free(t->allocs[0], "the server stops");
  free(t->by_client.e);
  free(t->by_relay.e);
  t->by_client = t->by_relay = (struct addr_map){0};
}

/* ============================================================== RTC SESSION =============================================================== */

/* One WebRTC session, as a browser (or the load generator) makes it with
 * this server: ICE-lite and consent freshness (RFC 8445, 7675), then DTLS
 * (mbedTLS), then an SCTP association (usrsctp) carrying DCEP data channels
 * (RFC 8831, 8832).  Its face is small: rtc_new(), rtc_send(), rtc_close(),
 * and upward the host's on_checked / on_open / on_message / on_close.  It
 * knows nothing of rooms: whoever made it keeps its own state in `user`.
 *
 * Every transition of a session's state is made in rtc_set_state(); a
 * session is freed only at the end of a loop turn (rtc->dead), never from
 * inside an mbedTLS or usrsctp callback. */
enum rtc_state { RTC_ICE, RTC_DTLS, RTC_SCTP, RTC_OPEN, RTC_CLOSED };
static const char *const rtc_state_name[] = {"ice", "dtls", "sctp", "open", "closed"};

#define RTC_CHANNELS (CAMUS_SCTP_STREAMS / 2) /* data channels of one session */

/* A remote address of a session, vouched for by an ICE check.  A check proves
 * the sender knows the session's password, not that it receives at the
 * address it claims: a forged source could aim our answers at someone
 * else.  So until the address shows it receives what we send (a DTLS
 * handshake finished or a DTLS cookie returned through it, or an answer to
 * our own check), we send it at most CAMUS_AMPLIFICATION times the bytes
 * it sent us. */
struct rtc_addr {
  struct sockaddr_storage sa;
  uint32_t rx, tx;          /* bytes from it and to it while unproven */
  bool proven;
  uint8_t probe[12];        /* transaction id of our check to it; all zero when none is out */
  uint64_t probe_at;
};

struct channel {
  uint16_t sid;
  uint8_t type;            /* DCEP channel type: bit 0x80 unordered, low bits reliability policy */
  uint32_t reliability;    /* retransmissions or lifetime, per type */
  bool open, echo;         /* echo: a diagnostics channel labelled "echo" that returns what it gets */
  bool opening;            /* we sent DATA_CHANNEL_OPEN and wait for the ACK */
  bool ends_session;       /* set by the layer above: the peer closing it closes the session */
};

/* A datagram that arrived before the STUN check that vouches for its sender. */
struct early {
  struct sockaddr_storage addr;
  uint64_t at;
  uint16_t len;
  uint8_t data[CAMUS_MTU];
};

/* What the sessions of one server (or of the load generator) share, and the
 * callbacks through which they reach the layers around them. */
/* What a session's media did: packets in and out, those dropped (failed authentication, replayed, malformed), bytes. */
struct rtc_media_counts {
  uint64_t in, out, auth, replayed, malformed, bytes_in, bytes_out;
};

static void rtc_media_add(struct rtc_media_counts *sum, const struct rtc_media_counts *m) {
  sum->in += m->in, sum->out += m->out, sum->auth += m->auth, sum->replayed += m->replayed;
  sum->malformed += m->malformed, sum->bytes_in += m->bytes_in, sum->bytes_out += m->bytes_out;
}

struct rtc_host {
  struct loop *loop;
  struct crypto *crypto;
  int log_level;
  /* Down: sends a datagram (the server queues it on its UDP socket). */
  void (*send)(void *ctx, struct rtc *r, const void *data, size_t n, const struct sockaddr_storage *to);
  /* Down, optional: room for a datagram of CAMUS_MEDIA_MAX bytes written in place (media), then
   * queued with commit; without them, media goes through a scratch buffer and send. */
  uint8_t *(*reserve)(void *ctx, struct rtc *r);
  void (*commit)(void *ctx, struct rtc *r, size_t n, const struct sockaddr_storage *to);
  /* Up: the first valid ICE check (may the session start DTLS?); a data
   * channel opened; a message on one; the session is about to be freed. */
  bool (*on_checked)(void *ctx, struct rtc *r);
  void (*on_open)(void *ctx, struct rtc *r, struct channel *ch);
  void (*on_message)(void *ctx, struct rtc *r, struct channel *ch, const uint8_t *data, size_t n, bool binary);
  void (*on_close)(void *ctx, struct rtc *r);
  /* Up: an authenticated, decrypted RTP or RTCP packet (p[0..n) may be changed). */
  void (*on_media)(void *ctx, struct rtc *r, uint8_t *p, size_t n, bool rtcp);
  void *ctx;

  bool ready;                    /* DTLS settings made and usrsctp started (at the first session) */
  struct identity id;            /* our DTLS certificate, new each run */
  mbedtls_ssl_config dtls_client_conf, dtls_server_conf;
  mbedtls_ssl_cookie_ctx cookies;
  struct addr_map amap;          /* remote address -> session */
  unsigned n;                    /* sessions */
  unsigned n_unchecked;          /* waiting for their first ICE check */
  unsigned n_handshakes;         /* checked and in DTLS or SCTP setup: the costly part */
  unsigned max_peers, max_handshakes; /* the caps on both: CAMUS_MAX_PEERS and CAMUS_MAX_HANDSHAKES, or fewer */
  int sctp_buf;                  /* each association's send and receive buffers; 0: usrsctp's defaults */
  unsigned peak;                 /* most sessions since memory was last handed back */
  uint64_t opened, ended;        /* for the operator: sessions that connected; that were freed */
  struct rtc_media_counts gone;  /* and the media of those freed */
  bool reap;                     /* some session is dead */
  struct early early[CAMUS_EARLY_DATAGRAMS];
  unsigned early_next;
  struct rtc *handshaking;       /* the session whose DTLS handshake mbedTLS is running (its key export) */
};

/* What a session is made from: the remote side's offer (or answer). */
struct rtc_params {
  const char *remote_ufrag, *remote_pwd;
  const uint8_t *remote_fp;      /* SHA-256 of the certificate the remote side will show */
  bool dtls_server;              /* we are the DTLS server */
  uint16_t remote_sctp_port;
  uint32_t max_message;          /* the remote's a=max-message-size, 0: 64 KiB */
  const uint8_t *who;            /* host_key() of the address that asked for it (fair shares) */
};

struct rtc {
  struct rtc_host *host;
  void *user;                    /* the layer above's */
  uint32_t slot, gen;            /* place in sessions.table; (gen, slot) is usrsctp's handle for it */
  enum rtc_state state;
  bool dead;
  char id[33];                   /* 32 random hex characters: the session's name in logs and above */
  char ufrag[17], pwd[33];       /* ours */
  char *remote_ufrag, *remote_pwd; /* one allocation of both (RFC 8839 allows 256 characters; browsers use 20-32) */
  uint8_t remote_fp[32];
  uint8_t who[16];               /* host_key() of the address that asked for it */
  uint64_t tiebreaker;
  struct rtc_addr addrs[CAMUS_PEER_ADDRS]; /* validated by a STUN check */
  int n_addrs, sel;              /* sel: the address DTLS is sent to (the nominated one) */
  int rx_addr;                   /* the address the datagram being handled came from */
  unsigned hs_sent;              /* the addresses (bit i: addrs[i]) our DTLS handshake was sent to */
  int hs_addr;                   /* as DTLS server: 1 + the address the ServerHello went to; 0 before */
  uint64_t created, last_seen;
  struct timer life;             /* handshake deadline, then consent freshness */

  bool dtls_server, dtls_up;
  mbedtls_ssl_context *ssl;
  struct timer dtls_timer;
  uint64_t dtls_int_at, dtls_fin_at; /* mbedTLS retransmission timer; fin_at 0 = off */
  const uint8_t *rx;             /* the datagram being handed to mbedTLS */
  size_t rx_len;

  uint8_t *srtp_master;          /* DTLS-SRTP keying material (RFC 5764 4.2), 60 bytes; NULL: none agreed */
  struct srtp *srtp;             /* [0] what comes in, [1] what goes out: made at the first packet */
  struct rtc_media_counts media;

  struct socket *sock;           /* usrsctp */
  uint16_t remote_sctp_port;
  uint32_t max_message;
  struct buf partial;            /* a message arriving in pieces */
  struct channel ch[RTC_CHANNELS];
};

static void *rtc_handle(const struct rtc *p) {
  return (void *)(uintptr_t)((uintptr_t)p->gen << SESSION_SLOT_BITS | p->slot);
}

static struct rtc *rtc_from_handle(void *h) {
  uintptr_t v = (uintptr_t)h;
  uint32_t slot = (uint32_t)(v & ((1u << SESSION_SLOT_BITS) - 1));
  if (slot >= sessions.cap || !sessions.table[slot]) return NULL;
  struct rtc *p = sessions.table[slot];
  return p->gen == (uint32_t)(v >> SESSION_SLOT_BITS) ? p : NULL;
}

/* The session whose ufrag is u: our ufrags start with the slot number in hex. */
static struct rtc *rtc_by_ufrag(struct rtc_host *s, const char *u, size_t n) {
  uint32_t slot = 0;
  if (n != 16) return NULL;
  for (int i = 0; i < 5; i++) {
    int h = hex_value(u[i]);
    if (h < 0) return NULL;
    slot = slot << 4 | (uint32_t)h;
  }
  if (slot >= sessions.cap || !sessions.table[slot]) return NULL;
  struct rtc *p = sessions.table[slot];
  return p->host == s && !p->dead && memcmp(p->ufrag, u, 16) == 0 ? p : NULL;
}

/* A datagram to a session's remote side. */
static void rtc_xmit(struct rtc *p, const void *data, size_t n, const struct sockaddr_storage *to) {
  p->host->send(p->host->ctx, p, data, n, to);
}

/* ----------------------------------------------------------------- ICE-lite */

static void rtc_set_state(struct rtc *p, enum rtc_state st);
static void rtc_close(struct rtc *p, const char *why);
static void dtls_input(struct rtc *p, const uint8_t *data, size_t n, const struct sockaddr_storage *from);

/* DTLS records that arrived from an address no STUN check has vouched for yet: kept briefly. */
static void early_keep(struct rtc_host *s, const struct sockaddr_storage *from, const uint8_t *p, size_t n) {
  struct early *e = &s->early[s->early_next++ % COUNT(s->early)];
  if (n > sizeof e->data) return;
  e->addr = *from;
  e->at = s->loop->now;
  e->len = (uint16_t)n;
  memcpy(e->data, p, n);
}

static void early_replay(struct rtc_host *s, struct rtc *p, const struct sockaddr_storage *from) {
  for (size_t i = 0; i < COUNT(s->early) && !p->dead; i++) {
    struct early *e = &s->early[i];
    if (!e->len || s->loop->now - e->at > CAMUS_EARLY_MS || !addr_same(&e->addr, from)) continue;
    size_t len = e->len;
    e->len = 0;
    dtls_input(p, e->data, len, from);
  }
}

/* --- sending to a peer's addresses, within what each has shown it receives --- */

static struct rtc_addr *rtc_addr_find(struct rtc *p, const struct sockaddr_storage *sa) {
  for (int i = 0; i < p->n_addrs; i++)
    if (addr_same(&p->addrs[i].sa, sa)) return &p->addrs[i];
  return NULL;
}

static void rtc_addr_heard(struct rtc_addr *a, size_t n) {
  if (!a->proven) a->rx = n > UINT32_MAX - a->rx ? UINT32_MAX : a->rx + (uint32_t)n;
}

/* Queues a datagram to a; false if a has not shown it receives, and this
 * would take more than CAMUS_AMPLIFICATION times what it sent (the datagram
 * is dropped, as if lost on the way).  answer: it answers a check. */
static bool rtc_addr_send(struct rtc *p, struct rtc_addr *a, const void *data, size_t n, bool answer) {
  if (!a->proven) {
    /* An answer to a check (its reply, or our own check that proves the address) is never held
     * back: each is sent only because a check came, and is no larger than one. */
    if (!answer && (uint64_t)a->tx + n > (uint64_t)CAMUS_AMPLIFICATION * a->rx) {
      LOG_D(p->host, "peer %s: %zu bytes held back from an unproven address (%u sent, %u heard)", p->id, n,
            (unsigned)a->tx, (unsigned)a->rx);
      return false;
    }
    a->tx += (uint32_t)n;
  }
  rtc_xmit(p, data, n, &a->sa);
  return true;
}

/* Our own check to an unproven address of a peer whose DTLS is up: its
 * authenticated answer (keyed with the browser's password, carrying our
 * random transaction id) proves the address receives.  One a second at most. */
static void rtc_addr_probe(struct rtc *p, struct rtc_addr *a) {
  struct rtc_host *s = p->host;
  if (a->proven || !p->dtls_up || (a->probe_at && s->loop->now - a->probe_at < CAMUS_PROBE_MS)) return;
  uint8_t out[CAMUS_SDP_UFRAG_MAX + 120];
  char user[CAMUS_SDP_UFRAG_MAX + 18];
  int ul = snprintf(user, sizeof user, "%s:%s", p->remote_ufrag, p->ufrag);
  uint8_t tb[8];
  struct stun_writer w = {out, sizeof out, 0, false};
  random_bytes(s->crypto, a->probe, sizeof a->probe);
  a->probe[0] |= 1; /* never all zero */
  a->probe_at = s->loop->now;
  for (int i = 0; i < 8; i++) tb[i] = (uint8_t)(p->tiebreaker >> (56 - 8 * i));
  stun_begin(&w, STUN_BINDING_REQUEST, a->probe);
  stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)ul);
  stun_attr_u32(&w, STUN_A_PRIORITY, 126u << 24 | 65535u << 8 | 255u);
  stun_attr(&w, STUN_A_ICE_CONTROLLED, tb, 8);
  stun_integrity(&w, p->remote_pwd, strlen(p->remote_pwd));
  stun_fingerprint(&w);
  if (!w.err) rtc_addr_send(p, a, out, w.len, true);
}

/* --- STUN: answering checks, learning addresses --- */

/* The session a check is for, if its USERNAME ("our ufrag:theirs") and
 * MESSAGE-INTEGRITY (keyed with our password) say so; NULL otherwise. */
static struct rtc *stun_check_session(struct rtc_host *s, const uint8_t *data, size_t n, const struct stun_msg *m) {
  const uint8_t *colon = memchr(m->username, ':', m->username_len);
  struct rtc *p = colon ? rtc_by_ufrag(s, (const char *)m->username, (size_t)(colon - m->username)) : NULL;
  if (!p || !m->integrity_at || !stun_integrity_ok(data, n, m, p->pwd, strlen(p->pwd))) return NULL;
  size_t rl = strlen(p->remote_ufrag);
  if ((size_t)(m->username + m->username_len - colon - 1) != rl || memcmp(colon + 1, p->remote_ufrag, rl) != 0)
    return NULL;
  return p;
}

/* Makes a checked address one of p's (the caller made sure no other live
 * session owns it).  Returns it, or NULL if p has as many as it may hold. */
static struct rtc_addr *stun_learn(struct rtc_host *s, struct rtc *p, const struct sockaddr_storage *from,
                                    const struct stun_msg *m) {
  struct rtc_addr *a = rtc_addr_find(p, from);
  if (!a) {
    if (p->n_addrs == CAMUS_PEER_ADDRS || amap_put(&s->amap, from, p) != 0) return NULL;
    a = &p->addrs[p->n_addrs++];
    *a = (struct rtc_addr){.sa = *from, .proven = addr_is_tcp(from)}; /* TCP's own handshake proved it receives */
    char ip[INET6_ADDRSTRLEN + 2];
    addr_ip(from, ip, sizeof ip, true);
    LOG_D(s, "peer %s: checked %s:%d%s%s", p->id, ip, addr_port(from), addr_is_tcp(from) ? " over TCP" : "",
          m->use_candidate ? " (nominated)" : "");
  }
  if (m->use_candidate || p->n_addrs == 1) p->sel = (int)(a - p->addrs);
  return a;
}

/* An answer to one of our own checks (rtc_addr_probe). */
static void stun_answer_input(struct rtc_host *s, const uint8_t *data, size_t n, const struct stun_msg *m,
                              const struct sockaddr_storage *from) {
  struct rtc *p = amap_get(&s->amap, from);
  struct rtc_addr *a = p && !p->dead ? rtc_addr_find(p, from) : NULL;
  if (!a || a->proven || memcmp(a->probe, m->txid, 12) != 0 ||
      !stun_integrity_ok(data, n, m, p->remote_pwd, strlen(p->remote_pwd)))
    return;
  a->proven = true;
  memset(a->probe, 0, sizeof a->probe);
  LOG_D(s, "peer %s: port %d answered our check: it receives", p->id, addr_port(from));
}

/* Handshake slots are few (the costly part of a join): when all are taken,
 * the address that holds the most gives up its oldest, if it holds more
 * than p's would.  Returns whether p may take one now. */
static bool rtc_handshake_slot(struct rtc_host *s, struct rtc *p) {
  if (s->n_handshakes < s->max_handshakes) return true;
  const uint8_t **keys = malloc(s->n_handshakes * sizeof *keys);
  if (!keys) return false;
  unsigned n = 0, most, mine;
  for (uint32_t i = 0; i < sessions.cap && n < s->n_handshakes; i++) {
    const struct rtc *q = sessions.table[i];
    if (q && q->host == s && !q->dead && (q->state == RTC_DTLS || q->state == RTC_SCTP)) keys[n++] = q->who;
  }
  const uint8_t *heavy = host_heaviest(keys, n, p->who, &most, &mine);
  uint8_t victim[16];
  bool shed = heavy && most > mine + 1;
  if (shed) memcpy(victim, heavy, 16);
  free(keys);
  struct rtc *oldest = NULL;
  for (uint32_t i = 0; shed && i < sessions.cap; i++) {
    struct rtc *q = sessions.table[i];
    if (q && q->host == s && !q->dead && (q->state == RTC_DTLS || q->state == RTC_SCTP) &&
        !memcmp(q->who, victim, 16) && (!oldest || q->created < oldest->created))
      oldest = q;
  }
  if (oldest) rtc_close(oldest, "handshake shed: its address holds the most handshakes");
  if (s->n_handshakes < s->max_handshakes) return true;
  LOG_D(s, "peer %s: check deferred, %u handshakes in progress", p->id, s->n_handshakes);
  return false;
}

/* Answers a STUN Binding request: ICE connectivity checks for our sessions, and
 * plain requests (no USERNAME) from anyone, so that browsers can use this
 * server as their STUN server.  Every answer is smaller than the request
 * that asked for it, but for plain requests (at most twice as large). */
static void stun_input(void *ctx, const uint8_t *data, size_t n, const struct sockaddr_storage *from) {
  struct rtc_host *s = ctx;
  struct stun_msg m;
  uint8_t out[256];
  struct stun_writer w = {out, sizeof out, 0, false};
  if (stun_parse(data, n, &m) != 0 || (m.fingerprint && !m.fingerprint_ok)) return;
  if (m.type == STUN_BINDING_SUCCESS) {
    stun_answer_input(s, data, n, &m, from);
    return;
  }
  if (m.type != STUN_BINDING_REQUEST) return;
  if (!m.username) {
    stun_begin(&w, STUN_BINDING_SUCCESS, m.txid);
    stun_xor_address(&w, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)from);
    stun_fingerprint(&w);
    if (!w.err) s->send(s->ctx, NULL, out, w.len, from);
    return;
  }
  struct rtc *p = stun_check_session(s, data, n, &m);
  if (!p) {
    LOG_D(s, "stun: refused a check from port %d (%s)", addr_port(from), !m.integrity_at ? "no integrity" : "bad credentials");
    stun_begin(&w, STUN_BINDING_ERROR, m.txid);
    stun_error(&w, m.integrity_at ? 401 : 400, m.integrity_at ? "Unauthorized" : "Bad Request");
    stun_fingerprint(&w);
    if (!w.err) s->send(s->ctx, NULL, out, w.len, from);
    return;
  }
  if (m.n_unknown) { /* only once authenticated, so that no stranger gets a signed reply */
    stun_begin(&w, STUN_BINDING_ERROR, m.txid);
    stun_error(&w, 420, "Unknown Attribute");
    uint8_t list[8];
    for (int i = 0; i < m.n_unknown && i < 4; i++) put_u16(list + 2 * i, m.unknown[i]);
    stun_attr(&w, STUN_A_UNKNOWN_ATTRIBUTES, list, (uint16_t)(2 * MIN(m.n_unknown, 4)));
  } else if (m.controlled && p->tiebreaker >= m.tiebreaker) {
    /* Both sides think they are controlled; a lite agent stays controlled (RFC 8445 7.3.1.1). */
    stun_begin(&w, STUN_BINDING_ERROR, m.txid);
    stun_error(&w, 487, "Role Conflict");
  } else {
    /* An address another live session owns stays with it: a check is easily sent with a forged
     * source, and an address is never handed over, or its session closed, because of one.  (A NAT
     * rebinding gives the owner's own checks a new address, which is learned like any other.) */
    struct rtc *owner = amap_get(&s->amap, from);
    if (owner && owner != p && !owner->dead) {
      LOG_D(s, "peer %s: refused a check from an address of peer %s", p->id, owner->id);
      return;
    }
    struct rtc_addr *a = stun_learn(s, p, from, &m);
    if (a) rtc_addr_heard(a, n);
    else if (p->state == RTC_ICE) return;
    /* The first check asks the layer above (for a seat, say) and takes a handshake slot: without
     * them it waits unanswered (a retransmission may find room), or the session ends. */
    if (p->state == RTC_ICE && (!s->on_checked(s->ctx, p) || p->dead || !rtc_handshake_slot(s, p))) return;
    p->last_seen = s->loop->now;
    stun_begin(&w, STUN_BINDING_SUCCESS, m.txid);
    stun_xor_address(&w, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)from);
    stun_integrity(&w, p->pwd, strlen(p->pwd));
    stun_fingerprint(&w);
    if (w.err) return;
    if (!a) { /* more addresses than a session may hold: answered (no larger than the check), not used */
      rtc_xmit(p, out, w.len, from);
      return;
    }
    rtc_addr_send(p, a, out, w.len, true);
    if (p->state == RTC_ICE) {
      rtc_set_state(p, RTC_DTLS);
      early_replay(s, p, from);
    }
    rtc_addr_probe(p, a);
    return;
  }
  stun_integrity(&w, p->pwd, strlen(p->pwd));
  stun_fingerprint(&w);
  if (!w.err) s->send(s->ctx, NULL, out, w.len, from);
}

/* A DTLS datagram (the UDP demultiplexer's on_dtls): to the session whose
 * checked address sent it; from an address no check vouched for yet, kept
 * a moment (a DTLS client may be quicker than its consent check). */
static void rtc_dtls_datagram(void *ctx, const uint8_t *data, size_t n, const struct sockaddr_storage *from) {
  struct rtc_host *s = ctx;
  struct rtc *p = amap_get(&s->amap, from);
  if (p && !p->dead)
    dtls_input(p, data, n, from);
  else if (!p && n >= 13)
    early_keep(s, from, data, n);
}

/* --------------------------------------------------------------------- DTLS */

static int dtls_send_cb(void *ctx, const unsigned char *buf, size_t len) {
  struct rtc *p = ctx;
  if (p->n_addrs == 0) return MBEDTLS_ERR_SSL_WANT_WRITE;
  /* As DTLS server, a HelloVerifyRequest goes back where its ClientHello came
   * from (the address its cookie is bound to), and a ServerHello is sent only
   * to a ClientHello that returned that cookie (RFC 6347 4.2.1): it proves the
   * address receives, and the rest of the handshake, retransmissions
   * included, stays pinned to it, wherever a later datagram comes from. */
  int to = p->sel;
  if (p->dtls_server && !p->dtls_up) {
    if (!p->hs_addr && len > 13 && buf[0] == 22 && buf[13] == 2) {
      p->hs_addr = p->rx_addr + 1;
      p->addrs[p->rx_addr].proven = true;
    }
    to = p->hs_addr ? p->hs_addr - 1 : p->rx_addr;
  }
  if (!p->dtls_up) p->hs_sent |= 1u << to;
  rtc_addr_send(p, &p->addrs[to], buf, len, false);
  return (int)len; /* a datagram dropped here is like one lost on the way */
}

static int dtls_recv_cb(void *ctx, unsigned char *buf, size_t len) {
  struct rtc *p = ctx;
  if (!p->rx) return MBEDTLS_ERR_SSL_WANT_READ;
  if (p->rx_len > len) {
    p->rx = NULL;
    return MBEDTLS_ERR_SSL_WANT_READ; /* too big for a record buffer: drop it */
  }
  size_t n = p->rx_len;
  memcpy(buf, p->rx, n);
  p->rx = NULL;
  return (int)n;
}

static void dtls_set_timer_cb(void *ctx, uint32_t int_ms, uint32_t fin_ms) {
  struct rtc *p = ctx;
  struct rtc_host *s = p->host;
  if (fin_ms == 0) {
    p->dtls_fin_at = 0;
    timer_stop(s->loop, &p->dtls_timer);
    return;
  }
  uint64_t now = mono_ms();
  p->dtls_int_at = now + int_ms;
  p->dtls_fin_at = now + fin_ms;
  timer_at(s->loop, &p->dtls_timer, p->dtls_fin_at);
}

static int dtls_get_timer_cb(void *ctx) {
  struct rtc *p = ctx;
  if (!p->dtls_fin_at) return -1;
  uint64_t now = mono_ms();
  return now >= p->dtls_fin_at ? 2 : now >= p->dtls_int_at ? 1 : 0;
}

/* The peer's certificate must be the one its offer named by fingerprint. */
static int dtls_verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  struct rtc *p = ctx;
  if (depth != 0) {
    *flags = 0;
    return 0;
  }
  uint8_t fp[32];
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), crt->raw.p, crt->raw.len, fp);
  *flags = secret_eq(fp, p->remote_fp, 32) ? 0 : MBEDTLS_X509_BADCERT_NOT_TRUSTED;
  return 0;
}

static void sctp_start(struct rtc *p);
static void sctp_input(struct rtc *p, const uint8_t *data, size_t n);

/* mbedTLS hands over the master secret as the handshake makes it: the SRTP
 * keying material is derived from it at once (RFC 5764 4.2, the exporter
 * of RFC 5705 with label "EXTRACTOR-dtls_srtp"), for the session whose
 * handshake is running, and kept if the handshake agrees on SRTP. */
static int dtls_export_keys(void *ctx, const unsigned char *ms, const unsigned char *kb, size_t maclen, size_t keylen,
                            size_t ivlen, const unsigned char client_random[32], const unsigned char server_random[32],
                            mbedtls_tls_prf_types prf) {
  struct rtc_host *s = ctx;
  struct rtc *p = s->handshaking;
  uint8_t randoms[64];
  (void)kb, (void)maclen, (void)keylen, (void)ivlen;
  if (!p) return 0;
  if (!p->srtp_master && !(p->srtp_master = malloc(60))) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  memcpy(randoms, client_random, 32);
  memcpy(randoms + 32, server_random, 32);
  return mbedtls_ssl_tls_prf(prf, ms, 48, "EXTRACTOR-dtls_srtp", randoms, 64, p->srtp_master, 60);
}

/* Runs the handshake (or reads application data) after input or a timer. */
static void dtls_step(struct rtc *p) {
  uint8_t *rec = scratch.dtls_record;
  char msg[128];
  if (p->state == RTC_DTLS) {
    p->host->handshaking = p;
    int rc = mbedtls_ssl_handshake(p->ssl);
    p->host->handshaking = NULL;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc == MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED) {
      /* A cookie went back in a HelloVerifyRequest; the ClientHello that returns it starts afresh. */
      if (mbedtls_ssl_session_reset(p->ssl) != 0) rtc_close(p, "out of memory");
      return;
    }
    if (rc) {
      mbedtls_strerror(rc, msg, sizeof msg);
      rtc_close(p, msg);
      return;
    }
    mbedtls_dtls_srtp_info srtp;
    mbedtls_ssl_get_dtls_srtp_negotiation_result(p->ssl, &srtp);
    if (srtp.chosen_dtls_srtp_profile != MBEDTLS_TLS_SRTP_AES128_CM_HMAC_SHA1_80 && p->srtp_master) {
      mbedtls_platform_zeroize(p->srtp_master, 60);
      free(p->srtp_master);
      p->srtp_master = NULL;
    }
    LOG_D(p->host, "peer %s: DTLS up (%s%s)", p->id, mbedtls_ssl_get_ciphersuite(p->ssl),
          p->srtp_master ? ", SRTP_AES128_CM_HMAC_SHA1_80" : "");
    p->dtls_up = true;
    /* As DTLS client, the server's Finished covers every flight we sent: if they all went to one
     * address, it receives.  (Sent to several, as when a browser nominates another of its addresses
     * mid-handshake, none is proven here: our own check goes to the selected one at once.) */
    if (!p->dtls_server && p->hs_sent && !(p->hs_sent & (p->hs_sent - 1)))
      for (int i = 0; i < p->n_addrs; i++)
        if (p->hs_sent == 1u << i) p->addrs[i].proven = true;
    rtc_addr_probe(p, &p->addrs[p->sel]);
    p->last_seen = p->host->loop->now;
    rtc_set_state(p, RTC_SCTP);
  }
  for (int i = 0; i < CAMUS_DTLS_READS && !p->dead; i++) {
    int rc = mbedtls_ssl_read(p->ssl, rec, sizeof scratch.dtls_record);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return;
    if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0) {
      rtc_close(p, "DTLS closed by the peer");
      return;
    }
    if (rc < 0) {
      mbedtls_strerror(rc, msg, sizeof msg);
      rtc_close(p, msg);
      return;
    }
    p->last_seen = p->host->loop->now; /* consent (RFC 7675): only an authenticated record renews it */
    sctp_input(p, rec, (size_t)rc);
  }
}

static void dtls_input(struct rtc *p, const uint8_t *data, size_t n, const struct sockaddr_storage *from) {
  struct rtc_addr *a = rtc_addr_find(p, from);
  if (p->state < RTC_DTLS || !p->ssl || !a) return;
  rtc_addr_heard(a, n);
  p->rx_addr = (int)(a - p->addrs);
  if (p->dtls_server && !p->dtls_up) {
    /* The cookie is bound to the address the ClientHello comes from. */
    struct addr_key k = addr_key(from);
    if (mbedtls_ssl_set_client_transport_id(p->ssl, k.b, sizeof k.b) != 0) return;
  }
  p->rx = data;
  p->rx_len = n;
  dtls_step(p);
  p->rx = NULL;
}

static void dtls_timeout(struct timer *t) {
  struct rtc *p = CONTAINER(t, struct rtc, dtls_timer);
  if (!p->dead) dtls_step(p);
}

static void dtls_start(struct rtc *p) {
  struct rtc_host *s = p->host;
  p->ssl = calloc(1, sizeof *p->ssl);
  if (!p->ssl) {
    rtc_close(p, "out of memory");
    return;
  }
  mbedtls_ssl_init(p->ssl);
  if (mbedtls_ssl_setup(p->ssl, p->dtls_server ? &s->dtls_server_conf : &s->dtls_client_conf) != 0) {
    rtc_close(p, "out of memory");
    return;
  }
  mbedtls_ssl_set_bio(p->ssl, p, dtls_send_cb, dtls_recv_cb, NULL);
  mbedtls_ssl_set_timer_cb(p->ssl, p, dtls_set_timer_cb, dtls_get_timer_cb);
  mbedtls_ssl_set_verify(p->ssl, dtls_verify_cb, p);
  mbedtls_ssl_set_mtu(p->ssl, CAMUS_MTU);
  dtls_step(p);
}

/* The DTLS settings shared by every session: ECDSA P-256 self-signed, peer
 * certificate required, X25519 first for the key exchange (half the cost of
 * P-256 in mbedTLS), AES-GCM first (AES-NI makes it the cheapest per record). */
static int dtls_conf_init(struct rtc_host *s, mbedtls_ssl_config *conf, int endpoint) {
  static const mbedtls_ecp_group_id curves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                                MBEDTLS_ECP_DP_NONE};
  static const int suites[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                               MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                               MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0};
  mbedtls_ssl_config_init(conf);
  int rc = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_DATAGRAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc) return rc;
  mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &s->crypto->drbg);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(conf, &s->id.crt, NULL); /* unused: the verify callback decides */
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_handshake_timeout(conf, 400, 8000);
  mbedtls_ssl_conf_ciphersuites(conf, suites);
  mbedtls_ssl_conf_curves(conf, curves);
  static const mbedtls_ssl_srtp_profile srtp_profiles[] = {MBEDTLS_TLS_SRTP_AES128_CM_HMAC_SHA1_80,
                                                          MBEDTLS_TLS_SRTP_UNSET};
  rc = mbedtls_ssl_conf_dtls_srtp_protection_profiles(conf, srtp_profiles);
  if (rc) return rc;
  mbedtls_ssl_conf_export_keys_ext_cb(conf, dtls_export_keys, s);
  if (endpoint == MBEDTLS_SSL_IS_SERVER) /* HelloVerifyRequest first: no flight to an unproven address */
    mbedtls_ssl_conf_dtls_cookies(conf, mbedtls_ssl_cookie_write, mbedtls_ssl_cookie_check, &s->cookies);
  return mbedtls_ssl_conf_own_cert(conf, &s->id.crt, &s->id.key);
}

/* --------------------------------------------------------------------- SRTP */

/* Media on a session whose DTLS agreed on SRTP: RTP and RTCP (rtcp-mux, RFC
 * 5761: an RTCP packet type sits where RTP has its marker and payload type)
 * from the session's checked addresses, authenticated and decrypted in place
 * before the layer above sees a byte of them; and out, written in place in
 * the send queue and protected there, only to the selected address once it
 * has shown it receives. */
static bool rtc_media_ready(struct rtc *p) {
  if (p->srtp) return true;
  if (!p->srtp_master || !(p->srtp = calloc(2, sizeof *p->srtp))) return false;
  const uint8_t *m = p->srtp_master; /* client key, server key, client salt, server salt */
  const uint8_t *ck = m, *sk = m + 16, *cs = m + 32, *ss = m + 46;
  int rc = srtp_init(&p->srtp[0], p->dtls_server ? ck : sk, p->dtls_server ? cs : ss);
  if (!rc) rc = srtp_init(&p->srtp[1], p->dtls_server ? sk : ck, p->dtls_server ? ss : cs);
  if (rc) {
    srtp_free(&p->srtp[0]);
    srtp_free(&p->srtp[1]);
    free(p->srtp);
    p->srtp = NULL;
  }
  return p->srtp != NULL;
}

static bool rtcp_is(const uint8_t *p, size_t n) { return n >= 2 && p[1] >= 192 && p[1] <= 223; }

/* An RTP or RTCP packet from p's remote side: checked, decrypted in place, handed up. */
static void rtc_media_input(struct rtc *p, uint8_t *data, size_t n) {
  struct rtc_host *s = p->host;
  if (p->dead || !p->dtls_up || !s->on_media || !rtc_media_ready(p)) return;
  bool rtcp = rtcp_is(data, n);
  int len = rtcp ? srtcp_unprotect(&p->srtp[0], data, n) : srtp_unprotect(&p->srtp[0], data, n);
  if (len < 0) {
    if (len == SRTP_AUTH) p->media.auth++;
    else if (len == SRTP_REPLAYED) p->media.replayed++;
    else p->media.malformed++;
    return;
  }
  p->media.in++;
  p->media.bytes_in += n;
  p->last_seen = s->loop->now; /* consent: an authenticated packet */
  s->on_media(s->ctx, p, data, (size_t)len, rtcp);
}

/* An RTP or RTCP datagram (the UDP demultiplexer's on_media): to the session whose checked address sent it. */
static void rtc_media_datagram(void *ctx, uint8_t *data, size_t n, const struct sockaddr_storage *from) {
  struct rtc *p = amap_get(&((struct rtc_host *)ctx)->amap, from);
  if (p) rtc_media_input(p, data, n);
}

/* Room for a packet to p, of CAMUS_MEDIA_MAX bytes (less the SRTP
 * trailer), written in place and sent by rtc_media_send(); nothing else may
 * be sent to any session between.  NULL when nothing may go to p now. */
static uint8_t *rtc_media_buf(struct rtc *p) {
  struct rtc_host *s = p->host;
  if (p->dead || !p->dtls_up || p->n_addrs == 0 || !p->addrs[p->sel].proven || !rtc_media_ready(p)) return NULL;
  return s->reserve ? s->reserve(s->ctx, p) : scratch.media_out;
}

#define RTC_MEDIA_ROOM (CAMUS_MEDIA_MAX - 4 - SRTP_TAG) /* bytes of RTP or RTCP that fit a rtc_media_buf() */

/* Protects the n bytes written at rtc_media_buf() and sends them.  st: the
 * sender state of its (first) SSRC, if the caller keeps it; else p keeps it. */
static void rtc_media_send(struct rtc *p, uint8_t *buf, size_t n, bool rtcp, struct srtp_ssrc *st) {
  struct rtc_host *s = p->host;
  struct srtp *out = &p->srtp[1];
  int len = rtcp ? (st ? srtcp_protect_with(out, st, buf, n, CAMUS_MEDIA_MAX) : srtcp_protect(out, buf, n, CAMUS_MEDIA_MAX))
                 : (st ? srtp_protect_with(out, st, buf, n, CAMUS_MEDIA_MAX) : srtp_protect(out, buf, n, CAMUS_MEDIA_MAX));
  if (len < 0) return;
  p->media.out++;
  p->media.bytes_out += (unsigned)len;
  if (s->commit)
    s->commit(s->ctx, p, (size_t)len, &p->addrs[p->sel].sa);
  else
    rtc_xmit(p, buf, (size_t)len, &p->addrs[p->sel].sa);
}

/* ------------------------------------------------------------- SCTP and DCEP */

/* usrsctp tells us none of its deadlines, so it is ticked: often while
 * packets flow (delayed acks, retransmissions), rarely once nothing has
 * flowed for a second (we send no heartbeats; see sctp_start). */
static void sctp_busy(void) {
  uint64_t now = sctp.loop->now;
  sctp.busy_at = now;
  if (sctp.tick.slot && sctp.tick.at > now + CAMUS_SCTP_TICK_MS) timer_in(sctp.loop, &sctp.tick, CAMUS_SCTP_TICK_MS);
}

static int sctp_output_cb(void *handle, void *data, size_t len, uint8_t tos, uint8_t set_df) {
  (void)tos, (void)set_df;
  struct rtc *p = rtc_from_handle(handle);
  if (!p || !p->ssl || p->state < RTC_SCTP) return 0;
  sctp_busy();
  int rc = mbedtls_ssl_write(p->ssl, data, len);
  if (rc < 0) LOG_D(p->host, "peer %s: DTLS write failed (%d)", p->id, rc);
  return 0;
}

static void sctp_tick(struct timer *t) {
  (void)t;
  uint64_t now = sctp.loop->now;
  usrsctp_handle_timers((uint32_t)(now - sctp.last));
  sctp.last = now;
  if (sctp.assocs)
    timer_in(sctp.loop, &sctp.tick, now - sctp.busy_at < CAMUS_SCTP_BUSY_MS ? CAMUS_SCTP_TICK_MS : CAMUS_SCTP_IDLE_TICK_MS);
}

static int sctp_global_init(struct loop *l) {
  if (sctp.users++) return 0;
  usrsctp_init_nothreads(0, sctp_output_cb, NULL);
  usrsctp_sysctl_set_sctp_ecn_enable(0);
  usrsctp_sysctl_set_sctp_delayed_sack_time_default(20);
  sctp.loop = l;
  sctp.tick.fn = sctp_tick;
  return 0;
}

static void sctp_global_free(void) {
  if (--sctp.users) return;
  timer_stop(sctp.loop, &sctp.tick);
  for (int i = 0; i < 100 && usrsctp_finish() != 0; i++) usrsctp_handle_timers(10);
}

static struct channel *channel_find(struct rtc *p, uint16_t sid) {
  for (int i = 0; i < RTC_CHANNELS; i++)
    if (p->ch[i].open && p->ch[i].sid == sid) return &p->ch[i];
  return NULL;
}

/* Sends one message on a channel (ppid: PPID_STRING or PPID_BINARY).
 * Returns 0, or -1 if it could not be queued. */
static int rtc_send(struct rtc *p, const struct channel *ch, uint32_t ppid, const void *data, size_t n) {
  struct sctp_sendv_spa spa = {0};
  static const uint8_t zero = 0;
  if (!p->sock || p->state != RTC_OPEN) return -1;
  if (n == 0) {
    ppid = ppid == PPID_BINARY ? PPID_BINARY_EMPTY : ppid == PPID_STRING ? PPID_STRING_EMPTY : ppid;
    data = &zero;
    n = 1;
  }
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_sid = ch->sid;
  spa.sendv_sndinfo.snd_ppid = htonl(ppid);
  spa.sendv_sndinfo.snd_flags = SCTP_EOR | ((ch->type & 0x80) ? SCTP_UNORDERED : 0);
  if ((ch->type & 0x7f) != 0) {
    spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
    spa.sendv_prinfo.pr_policy = (ch->type & 0x7f) == 0x01 ? SCTP_PR_SCTP_RTX : SCTP_PR_SCTP_TTL;
    spa.sendv_prinfo.pr_value = ch->reliability;
  }
  if (usrsctp_sendv(p->sock, data, n, NULL, 0, &spa, sizeof spa, SCTP_SENDV_SPA, 0) < 0) {
    LOG_D(p->host, "peer %s: send on channel %u failed: %s", p->id, ch->sid, strerror(errno));
    return -1;
  }
  return 0;
}

/* Opens a reliable, ordered channel on stream sid (the DTLS client takes
 * even ids, the server odd ones: RFC 8832 6).  on_open follows its ACK. */
__attribute__((unused)) /* the client role: used by the load generator */
static struct channel *rtc_channel_open(struct rtc *p, uint16_t sid, const char *label) {
  uint8_t msg[12 + 64];
  size_t n = dcep_write_open(msg, sizeof msg, label);
  struct channel *ch = NULL;
  for (int i = 0; !ch && i < RTC_CHANNELS; i++)
    if (!p->ch[i].open && !p->ch[i].opening) ch = &p->ch[i];
  if (!ch || !n) return NULL;
  *ch = (struct channel){.sid = sid, .open = true};
  if (rtc_send(p, ch, PPID_DCEP, msg, n) != 0) {
    ch->open = false;
    return NULL;
  }
  ch->open = false;
  ch->opening = true;
  return ch;
}

static void dcep_input(struct rtc *p, uint16_t sid, const uint8_t *data, size_t n) {
  struct rtc_host *s = p->host;
  struct dcep_open o;
  if (n >= 1 && data[0] == DCEP_ACK) { /* to a channel we opened */
    for (int i = 0; i < RTC_CHANNELS; i++)
      if (p->ch[i].opening && p->ch[i].sid == sid) {
        p->ch[i].opening = false;
        p->ch[i].open = true;
        if (s->on_open) s->on_open(s->ctx, p, &p->ch[i]);
      }
    return;
  }
  if (dcep_parse_open(data, n, &o) != 0) {
    LOG_D(s, "peer %s: bad DCEP message on stream %u", p->id, sid);
    return;
  }
  struct channel *ch = channel_find(p, sid);
  for (int i = 0; !ch && i < RTC_CHANNELS; i++)
    if (!p->ch[i].open && !p->ch[i].opening) ch = &p->ch[i];
  if (!ch) {
    LOG_W(s, "peer %s: too many data channels", p->id);
    return;
  }
  *ch = (struct channel){.sid = sid, .type = o.channel_type, .reliability = o.reliability, .open = true};
  ch->echo = str_eq(o.label, "echo");
  static const uint8_t ack = DCEP_ACK;
  rtc_send(p, ch, PPID_DCEP, &ack, 1);
  LOG_D(s, "peer %s: channel %u '%.*s' open", p->id, sid, (int)MIN(o.label.n, 64), o.label.p);
  if (s->on_open) s->on_open(s->ctx, p, ch);
}

/* The peer reset its outgoing streams (closed channels): reset ours in turn. */
static void sctp_stream_reset(struct rtc *p, const struct sctp_stream_reset_event *e, size_t len) {
  if (!(e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) || len < sizeof *e) return;
  size_t n = (len - sizeof *e) / sizeof(uint16_t);
  uint16_t list[RTC_CHANNELS];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    struct channel *ch = channel_find(p, e->strreset_stream_list[i]);
    if (!ch) continue;
    ch->open = false;
    list[k++] = ch->sid;
    LOG_D(p->host, "peer %s: channel %u closed by the peer", p->id, ch->sid);
    if (ch->ends_session) rtc_close(p, "closed its channel");
  }
  if (!k) return;
  size_t sz = sizeof(struct sctp_reset_streams) + k * sizeof(uint16_t);
  struct sctp_reset_streams *rs = calloc(1, sz);
  if (!rs) return;
  rs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
  rs->srs_number_streams = (uint16_t)k;
  memcpy(rs->srs_stream_list, list, k * sizeof(uint16_t));
  usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, rs, (socklen_t)sz);
  free(rs);
}

static void sctp_notification(struct rtc *p, const union sctp_notification *nt, size_t len) {
  if (len < sizeof nt->sn_header) return;
  switch (nt->sn_header.sn_type) {
  case SCTP_ASSOC_CHANGE:
    if (len < sizeof nt->sn_assoc_change) return;
    if (nt->sn_assoc_change.sac_state == SCTP_COMM_UP) {
      if (p->state == RTC_SCTP) rtc_set_state(p, RTC_OPEN);
    } else if (nt->sn_assoc_change.sac_state == SCTP_COMM_LOST ||
               nt->sn_assoc_change.sac_state == SCTP_SHUTDOWN_COMP ||
               nt->sn_assoc_change.sac_state == SCTP_CANT_STR_ASSOC) {
      rtc_close(p, "SCTP association ended");
    }
    break;
  case SCTP_SHUTDOWN_EVENT: rtc_close(p, "SCTP shutdown by the peer"); break;
  case SCTP_STREAM_RESET_EVENT: sctp_stream_reset(p, &nt->sn_strreset_event, len); break;
  default: break;
  }
}

static int sctp_receive_cb(struct socket *sock, union sctp_sockstore addr, void *data, size_t len,
                           struct sctp_rcvinfo rcv, int flags, void *ulp) {
  (void)sock, (void)addr;
  struct rtc *p = rtc_from_handle(ulp);
  if (!data) return 1;
  if (!p || p->dead) {
    free(data);
    return 1;
  }
  if (flags & MSG_NOTIFICATION) {
    sctp_notification(p, data, len);
    free(data);
    return 1;
  }
  const uint8_t *msg = data;
  size_t n = len;
  if (len > CAMUS_MAX_MESSAGE) { /* whole, or a piece of one, beyond what we advertised */
    free(data);
    buf_free(&p->partial);
    rtc_close(p, "message larger than max-message-size");
    return 1;
  }
  if (!(flags & MSG_EOR) || p->partial.len) {
    /* A message in pieces: gather it, within the size we advertised. */
    buf_add(&p->partial, data, len);
    free(data);
    if (p->partial.err) {
      buf_free(&p->partial);
      rtc_close(p, "message larger than max-message-size");
      return 1;
    }
    if (!(flags & MSG_EOR)) return 1;
    msg = (const uint8_t *)p->partial.p;
    n = p->partial.len;
    data = NULL;
  }
  uint32_t ppid = ntohl(rcv.rcv_ppid);
  struct channel *ch = channel_find(p, rcv.rcv_sid);
  if (ppid == PPID_DCEP) {
    dcep_input(p, rcv.rcv_sid, msg, n);
  } else if (!ch) {
    LOG_D(p->host, "peer %s: data on unopened stream %u", p->id, rcv.rcv_sid);
  } else if (ppid == PPID_STRING || ppid == PPID_BINARY) {
    p->host->on_message(p->host->ctx, p, ch, msg, n, ppid == PPID_BINARY);
  } else if (ppid == PPID_STRING_EMPTY || ppid == PPID_BINARY_EMPTY) {
    p->host->on_message(p->host->ctx, p, ch, msg, 0, ppid == PPID_BINARY_EMPTY);
  }
  if (data) {
    free(data);
  } else {
    p->partial.len = 0;
  }
  return 1;
}

static void sctp_start(struct rtc *p) {
  struct sctp_event ev = {0};
  static const uint16_t events[] = {SCTP_ASSOC_CHANGE, SCTP_SHUTDOWN_EVENT, SCTP_STREAM_RESET_EVENT};
  struct sctp_initmsg init = {0};
  struct sctp_assoc_value reset = {0};
  struct linger lg = {1, 0};
  int one = 1;
  void *h = rtc_handle(p);
  usrsctp_register_address(h);
  p->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, sctp_receive_cb, NULL, 0, h);
  if (!p->sock) {
    rtc_close(p, "cannot make an SCTP socket");
    return;
  }
  sctp.assocs++;
  if (!sctp.tick.slot) {
    sctp.last = sctp.loop->now;
    timer_in(sctp.loop, &sctp.tick, CAMUS_SCTP_TICK_MS);
  }
  sctp.busy_at = sctp.loop->now;
  usrsctp_set_non_blocking(p->sock, 1);
  usrsctp_setsockopt(p->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof one);
  if (p->host->sctp_buf) {
    usrsctp_setsockopt(p->sock, SOL_SOCKET, SO_SNDBUF, &p->host->sctp_buf, sizeof p->host->sctp_buf);
    usrsctp_setsockopt(p->sock, SOL_SOCKET, SO_RCVBUF, &p->host->sctp_buf, sizeof p->host->sctp_buf);
  }
  reset.assoc_value = SCTP_ENABLE_RESET_STREAM_REQ;
  usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &reset, sizeof reset);
  init.sinit_num_ostreams = init.sinit_max_instreams = CAMUS_SCTP_STREAMS;
  usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof init);
  ev.se_on = 1;
  for (size_t i = 0; i < COUNT(events); i++) {
    ev.se_type = events[i];
    usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof ev);
  }
  /* SCTP packets must fit one DTLS record inside one datagram of CAMUS_MTU bytes.  No heartbeats:
   * ICE consent checks (RFC 7675) already tell whether the peer is there. */
  struct sctp_paddrparams pp = {0};
  pp.spp_assoc_id = SCTP_FUTURE_ASSOC;
  pp.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_DISABLE;
  pp.spp_pathmtu = CAMUS_MTU - CAMUS_DTLS_OVERHEAD;
  usrsctp_setsockopt(p->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof pp);
  struct sockaddr_conn sc = {0};
  sc.sconn_family = AF_CONN;
  sc.sconn_port = htons(CAMUS_SCTP_PORT);
  sc.sconn_addr = h;
  if (usrsctp_bind(p->sock, (struct sockaddr *)&sc, sizeof sc) != 0) {
    rtc_close(p, "SCTP bind failed");
    return;
  }
  sc.sconn_port = htons(p->remote_sctp_port);
  if (usrsctp_connect(p->sock, (struct sockaddr *)&sc, sizeof sc) != 0 && errno != EINPROGRESS) {
    rtc_close(p, "SCTP connect failed");
    return;
  }
}

static void sctp_input(struct rtc *p, const uint8_t *data, size_t n) {
  if (!p->sock) return;
  sctp_busy();
  usrsctp_conninput(rtc_handle(p), data, n, 0);
}



/* ---------------------------------------------------------------- lifecycle */

/* Handshake deadline, then consent freshness (RFC 7675): a session that
 * sends nothing valid for CAMUS_CONSENT_MS is gone. */
static void rtc_life(struct timer *t) {
  struct rtc *p = CONTAINER(t, struct rtc, life);
  struct rtc_host *s = p->host;
  if (p->dead) return;
  if (p->state != RTC_OPEN) {
    rtc_close(p, p->state == RTC_ICE ? "handshake timed out: no ICE check" : "handshake timed out");
    return;
  }
  uint64_t due = p->last_seen + CAMUS_CONSENT_MS;
  if (s->loop->now >= due) {
    rtc_close(p, "consent expired (no valid packet for " STRINGIFY(CAMUS_CONSENT_MS) " ms)");
    return;
  }
  timer_at_coarse(s->loop, &p->life, due);
}

static void rtc_set_state(struct rtc *p, enum rtc_state st) {
  struct rtc_host *s = p->host;
  LOG_D(s, "peer %s: %s -> %s", p->id, rtc_state_name[p->state], rtc_state_name[st]);
  enum rtc_state old = p->state;
  p->state = st;
  switch (st) {
  case RTC_ICE: break;
  case RTC_DTLS:
    s->n_unchecked--;
    s->n_handshakes++;
    timer_at(s->loop, &p->life, p->created + CAMUS_HANDSHAKE_MS);
    dtls_start(p);
    break;
  case RTC_SCTP: sctp_start(p); break;
  case RTC_OPEN:
    s->n_handshakes--;
    p->last_seen = s->loop->now;
    timer_at_coarse(s->loop, &p->life, p->last_seen + CAMUS_CONSENT_MS);
    LOG_I(s, "peer %s: connected in %llu ms", p->id, (unsigned long long)(s->loop->now - p->created));
    s->opened++;
    if (s->on_open) s->on_open(s->ctx, p, NULL);
    break;
  case RTC_CLOSED:
    if (old == RTC_ICE) s->n_unchecked--;
    if (old == RTC_DTLS || old == RTC_SCTP) s->n_handshakes--;
    break;
  }
}

/* A path ended under a session (its TCP connection closed): a session that
 * was using it ends too, rather than waiting out consent freshness. */
static void rtc_path_gone(struct rtc_host *s, const struct sockaddr_storage *sa) {
  struct rtc *p = amap_get(&s->amap, sa);
  if (p && !p->dead && p->n_addrs && addr_same(&p->addrs[p->sel].sa, sa)) rtc_close(p, "its TCP connection closed");
}

/* Marks the session for freeing at the end of this loop turn. */
static void rtc_close(struct rtc *p, const char *why) {
  if (p->dead) return;
  LOG_I(p->host, "peer %s: closed: %s", p->id, why);
  p->dead = true;
  p->host->reap = true;
  rtc_set_state(p, RTC_CLOSED);
}

static void rtc_free(struct rtc *p) {
  struct rtc_host *s = p->host;
  if (s->on_close) s->on_close(s->ctx, p);
  if (p->sock) {
    usrsctp_close(p->sock);
    sctp.assocs--;
  }
  if (p->sock || p->state >= RTC_SCTP) usrsctp_deregister_address(rtc_handle(p));
  if (p->ssl) {
    if (p->dtls_up) mbedtls_ssl_close_notify(p->ssl); /* tell the browser at once, not after its timeout */
    mbedtls_ssl_free(p->ssl);
    free(p->ssl);
  }
  timer_stop(s->loop, &p->life);
  timer_stop(s->loop, &p->dtls_timer);
  for (int i = 0; i < p->n_addrs; i++)
    if (amap_get(&s->amap, &p->addrs[i].sa) == p) amap_del(&s->amap, &p->addrs[i].sa);
  buf_free(&p->partial);
  free(p->remote_ufrag);
  if (p->srtp) {
    srtp_free(&p->srtp[0]);
    srtp_free(&p->srtp[1]);
    free(p->srtp);
  }
  if (p->srtp_master) mbedtls_platform_zeroize(p->srtp_master, 60);
  free(p->srtp_master);
  sessions.table[p->slot] = NULL;
  s->n--;
  s->ended++;
  rtc_media_add(&s->gone, &p->media);
  free(p);
}

/* The end of a loop turn: the dead sessions are freed. */
static void rtc_reap(void *ctx) {
  struct rtc_host *s = ctx;
  if (!s->reap) return;
  s->reap = false;
  for (uint32_t i = 0; i < sessions.cap; i++)
    if (sessions.table[i] && sessions.table[i]->host == s && sessions.table[i]->dead) rtc_free(sessions.table[i]);
  /* Once half the sessions of the last peak have gone, give their memory back to the system. */
  if (s->n <= s->peak / 2) {
    sys_trim();
    s->peak = s->n;
  }
}

/* The DTLS certificate and settings, and usrsctp, made for the first
 * session: a server nobody joins never pays for them (a millisecond or two
 * of start-up, and about 0.5 MB of resident memory).  Returns 0 or an
 * mbedTLS error code. */
static int rtc_host_ready(struct rtc_host *s) {
  if (s->ready) return 0;
  int rc = identity_generate(&s->id, s->crypto, "camus", NULL, NULL);
  if (!rc) rc = mbedtls_ssl_cookie_setup(&s->cookies, mbedtls_ctr_drbg_random, &s->crypto->drbg);
  if (!rc) rc = dtls_conf_init(s, &s->dtls_client_conf, MBEDTLS_SSL_IS_CLIENT);
  if (!rc) rc = dtls_conf_init(s, &s->dtls_server_conf, MBEDTLS_SSL_IS_SERVER);
  if (rc) {
    char msg[128];
    mbedtls_strerror(rc, msg, sizeof msg);
    LOG_E(s, "DTLS setup: %s", msg);
    return rc;
  }
  sctp_global_init(s->loop);
  s->ready = true;
  return 0;
}

/* Gets the host ready for sessions on loop: ends each turn by reaping the dead. */
static int rtc_host_init(struct rtc_host *s, struct loop *loop, struct crypto *crypto, int log_level) {
  s->loop = loop;
  s->crypto = crypto;
  s->log_level = log_level;
  s->max_peers = CAMUS_MAX_PEERS;
  s->max_handshakes = CAMUS_MAX_HANDSHAKES;
  identity_init(&s->id);
  mbedtls_ssl_config_init(&s->dtls_client_conf);
  mbedtls_ssl_config_init(&s->dtls_server_conf);
  mbedtls_ssl_cookie_init(&s->cookies);
  return loop_hook_add(loop, rtc_reap, s);
}

/* Closes every session (their on_close runs) and frees what the host holds. */
static void rtc_host_free(struct rtc_host *s) {
  for (uint32_t i = 0; i < sessions.cap; i++)
    if (sessions.table[i] && sessions.table[i]->host == s) rtc_close(sessions.table[i], "server stopping");
  rtc_reap(s);
  if (s->ready) sctp_global_free();
  if (!sctp.users) {
    free(sessions.table);
    sessions.table = NULL;
    sessions.cap = 0;
  }
  free(s->amap.e);
  s->amap.e = NULL;
  mbedtls_ssl_config_free(&s->dtls_client_conf);
  mbedtls_ssl_config_free(&s->dtls_server_conf);
  mbedtls_ssl_cookie_free(&s->cookies);
  identity_free(&s->id);
}

/* A new session, in a free slot.  NULL when out of slots or memory. */
static struct rtc *rtc_new(struct rtc_host *s, const struct rtc_params *prm, void *user) {
  if (s->n >= s->max_peers || rtc_host_ready(s) != 0) return NULL;
  uint32_t slot = 0;
  while (slot < sessions.cap && sessions.table[slot]) slot++;
  if (slot == sessions.cap) {
    uint32_t nc = sessions.cap ? 2 * sessions.cap : 64;
    if (nc > 1u << SESSION_SLOT_BITS) return NULL;
    struct rtc **t = realloc(sessions.table, nc * sizeof *t);
    if (!t) return NULL;
    memset(t + sessions.cap, 0, (nc - sessions.cap) * sizeof *t);
    sessions.table = t;
    sessions.cap = nc;
  }
  struct rtc *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  static const char ice_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t rnd[11 + 32 + 16 + 8];
  random_bytes(s->crypto, rnd, sizeof rnd);
  p->host = s;
  p->user = user;
  p->slot = slot;
  /* The generation fills the handle's bits above the slot (12 of them on 32-bit systems). */
  uint32_t gen_mask = sizeof(uintptr_t) * 8 - SESSION_SLOT_BITS >= 32
                          ? UINT32_MAX
                          : (1u << (sizeof(uintptr_t) * 8 - SESSION_SLOT_BITS)) - 1;
  do
    p->gen = ++sessions.gen & gen_mask;
  while (p->gen == 0);
  snprintf(p->ufrag, 6, "%05x", (unsigned)(slot & ((1u << SESSION_SLOT_BITS) - 1))); /* 20 bits: 5 hex digits */
  for (int i = 0; i < 11; i++) p->ufrag[5 + i] = ice_chars[rnd[i] & 63];
  for (int i = 0; i < 32; i++) p->pwd[i] = ice_chars[rnd[11 + i] & 63];
  hex_encode(p->id, rnd + 43, 16);
  memcpy(&p->tiebreaker, rnd + 59, 8);
  size_t ul = strlen(prm->remote_ufrag), pl = strlen(prm->remote_pwd);
  if (!(p->remote_ufrag = malloc(ul + pl + 2))) {
    free(p);
    return NULL;
  }
  memcpy(p->remote_ufrag, prm->remote_ufrag, ul + 1);
  p->remote_pwd = p->remote_ufrag + ul + 1;
  memcpy(p->remote_pwd, prm->remote_pwd, pl + 1);
  memcpy(p->remote_fp, prm->remote_fp, 32);
  if (prm->who) memcpy(p->who, prm->who, 16);
  p->dtls_server = prm->dtls_server;
  p->remote_sctp_port = prm->remote_sctp_port ? prm->remote_sctp_port : CAMUS_SCTP_PORT;
  p->max_message = prm->max_message;
  p->partial.max = CAMUS_MAX_MESSAGE;
  p->created = p->last_seen = s->loop->now;
  p->life.fn = rtc_life;
  p->dtls_timer.fn = dtls_timeout;
  timer_in(s->loop, &p->life, CAMUS_CHECK_MS);
  sessions.table[slot] = p;
  s->n++;
  if (s->n > s->peak) s->peak = s->n;
  s->n_unchecked++;
  return p;
}

/* ICE done by the caller (the load generator's own checks): to is a checked
 * address that receives, and DTLS starts towards it. */
__attribute__((unused)) /* the client role: used by the load generator */
static void rtc_connected(struct rtc *p, const struct sockaddr_storage *to) {
  if (p->state != RTC_ICE || amap_put(&p->host->amap, to, p) != 0) return;
  p->addrs[0] = (struct rtc_addr){.sa = *to, .proven = true};
  p->n_addrs = 1;
  p->sel = 0;
  rtc_set_state(p, RTC_DTLS);
}

/* Sessions still connecting that were asked for from the address who. */
static unsigned rtc_connecting(const struct rtc_host *s, const uint8_t who[16]) {
  unsigned n = 0;
  if (s->n_unchecked + s->n_handshakes < CAMUS_HANDSHAKES_PER_HOST) return 0; /* no need to look */
  for (uint32_t i = 0; i < sessions.cap; i++) {
    const struct rtc *p = sessions.table[i];
    n += p && p->host == s && !p->dead && p->state < RTC_OPEN && memcmp(p->who, who, 16) == 0;
  }
  return n;
}

/* =================================================================== APP ==================================================================== */

/* Camus itself: rooms and the clients in them, who may come in and how fast
 * they may talk (admission, fair shares, password proofs, rate limits), and
 * Ground Control's messaging protocol, wire-compatible with the original
 * Camus: every message is a JSON object {"sender", "receiver", "type",
 * "data"} sent as a string on the data channel.  A client holds a WebRTC
 * session (RTC SESSION), which reports to it through on_checked, on_open,
 * on_message and on_close. */
#define GROUND_CONTROL "ground control"
#define GUEST_LIMIT_RULE "guest limit must be between 1 and " STRINGIFY(CAMUS_GUEST_LIMIT_MAX)

/* Why a request was refused, counted for the operator (/metrics). */
enum refusal {
  REFUSED_PASSWORD, REFUSED_WRONG_PASSWORD, REFUSED_FULL, REFUSED_LOCKED, REFUSED_REMOVED, REFUSED_NOT_OWNER,
  REFUSED_RATE, REFUSED_BUSY, REFUSED_CROSS_ORIGIN, REFUSED_METRICS, REFUSED__N
};
static const char *const refusal_names[REFUSED__N] = {"password_required", "wrong_password", "room_full", "locked",
                                                      "removed", "not_owner", "rate_limited", "busy", "cross_origin",
                                                      "metrics_forbidden"};

/* What went wrong, for the routes to turn into an HTTP status (app_status). */
enum app_err {
  APP_OK,
  APP_INVALID,  /* the request is malformed or breaks a rule */
  APP_CONFLICT, /* the name is taken */
  APP_DENIED,   /* no right to it: a wrong or missing password, a full room */
  APP_LIMITED,  /* this address (or room) asked too often: later */
  APP_FULL,     /* a server-wide table is full */
  APP_DISK,     /* it could not be kept on disk */
  APP_NOMEM
};

struct client;

struct room {
  struct camus *srv;
  char id[CAMUS_ROOM_NAME_MAX + 1];   /* slug of the name: [a-z0-9-] */
  char name[CAMUS_ROOM_NAME_MAX + 1]; /* as given, valid UTF-8 */
  bool has_password, public;
  bool sfu;                           /* media through the server; false: between browsers (p2p) */
  uint8_t salt[16], hash[32];         /* PBKDF2-HMAC-SHA256 of the password */
  uint8_t nonce[16];                  /* binds password proofs to this room, not a later one of the same id */
  unsigned guest_limit;               /* 0: none */
  unsigned n_clients;                 /* seated: sessions past their first ICE check (the guest limit counts these) */
  unsigned n_sessions;                /* every session offered into the room, seated or not: it lives while any does */
  uint8_t creator[16];                /* host_key() of the address that made it */
  bool joined;                        /* someone took a seat once */
  uint64_t created;                   /* ms, monotonic */
  int64_t born;                       /* when it was made, unix seconds (kept on disk) */
  uint64_t fail_window;               /* start of the window of fails, ms */
  unsigned fails;                     /* wrong passwords for this room in that window */
  struct client *members, *last_member; /* clients whose channel is open, in join order */
  uint64_t last_active;               /* ms, monotonic */
  struct timer expiry;                /* armed while the room is empty; once ended, until its sessions close */
  uint8_t owner[32];                  /* SHA-256 of its owner key; all zero: none (made before owners were) */
  bool locked;                        /* no newcomers, but owners */
  bool ending;                        /* ended by an owner: it goes once its members have heard */
  uint8_t (*bans)[16];                /* host_key()s of addresses whose member was removed: kept out */
  unsigned n_bans;
};

/* One browser in a room: its WebRTC session, its name, its limits. */
struct client {
  struct camus *srv;
  struct rtc *rtc;                    /* its session: the client's id is rtc->id */
  struct room *room;
  char username[CAMUS_USERNAME_MAX + 1];
  struct channel *msg_channel;        /* where Ground Control talks; NULL until one opens */
  struct client *next_member;         /* in room->members once msg_channel is open */
  bool member;
  bool seated;                        /* counted in room->n_clients: past its first ICE check */
  bool resuming;                      /* a new session of a member that lost its own (same id): takes its place */
  uint8_t role;                       /* ROLE_: what it may do to the room and its members */
  uint8_t held;                       /* bit per TRACK_: muted by a moderator (SFU rooms: not forwarded) */
  uint64_t last_msg, pinged_at;
  bool pinged, rate_warned;
  double bucket;                      /* message rate limit tokens */
  uint64_t bucket_at;
  double bytes;                       /* byte rate limit tokens */
  uint64_t bytes_at;
  struct timer ping;                  /* a page that stopped talking is pinged, then removed */
  struct media *media;                /* SFU rooms: its streams up and down; NULL until it is a member */
};

/* What one address did in the current window. */
struct rate_slot {
  uint8_t host[16];
  uint64_t window; /* start of the window, ms; 0: free */
  unsigned fails;  /* wrong room passwords */
  unsigned rooms;  /* rooms created */
  unsigned misses; /* lookups of rooms that do not exist */
};

/* The id of a room that was used and ended: for a day only its creator may make it again,
 * so that a link shared for the old room does not lead into a stranger's. */
struct tombstone {
  char id[CAMUS_ROOM_NAME_MAX + 1];
  uint8_t creator[16];
  uint64_t until; /* ms, monotonic; 0: free */
};

/* A server: the layers below, and the rooms. */
struct camus {
  struct camus_config cfg;
  int log_level;
  struct loop loop;
  struct crypto crypto;
  uint8_t secret[32];            /* signs room password proofs; new each run */
  int wake_fd[2], wake_slot;     /* camus_stop() writes to wake_fd[1] */
  volatile sig_atomic_t stopping;

  struct http_srv http;
  struct http_srv metrics_http;       /* --metrics-addr: the operator's own listener (fd -1: none) */
  uint64_t refusals[REFUSED__N];      /* for the operator: requests refused, by why */
  uint64_t moderations;               /* and what owners and co-hosts did */
  bool https;
  struct tls_gen *tls;           /* the HTTPS settings new connections get (NULL: HTTP) */
  struct tls_gen *retired;       /* earlier ones, until their last connection closes */
  volatile sig_atomic_t reloading; /* camus_reload() was called */

  struct udp udp;
  struct rtc_host rtc;
  char cands[CAMUS_MAX_CANDIDATES][INET6_ADDRSTRLEN];
  unsigned n_cands;
  struct turn turn;
  bool turn_on;
  struct sockaddr_storage own[CAMUS_MAX_CANDIDATES]; /* cands, parsed: what the TURN relay knows as ours */

  struct room **rooms;
  unsigned n_rooms, max_rooms;        /* CAMUS_MAX_ROOMS, or fewer (--small) */
  unsigned nack_slots;                /* of each published video's cache: CAMUS_NACK_SLOTS, or fewer (--small) */

  struct rate_slot rate[CAMUS_RATE_SLOTS];
  double hash_us;                /* µs of password hashing the budget still allows */
  uint64_t hash_at;              /* when it was last refilled, ms */
  struct tombstone *tombs;       /* CAMUS_MAX_ROOMS of them, allocated when a room first ends */
  uint32_t media_ids;            /* the last track id given (msid) */
  const char *rooms_dir;         /* where rooms are kept (the state directory); NULL: in memory only */
  bool rooms_dirty;              /* some room's activity is newer than the file */
  bool rooms_gone;               /* and some room was deleted this turn */
  struct timer rooms_timer;      /* writes it, if so, once a minute */
  char rooms_error[160];         /* why the last room could not be kept */
  char rooms_refused[PATH_MAX + 64]; /* why the state directory was refused at start (its file is not touched) */
  uint64_t started;              /* ms, monotonic: for the uptime */
  struct cidr metrics_from[CAMUS_MAX_METRICS_FROM]; /* who may see /metrics without the token */
  int n_metrics_from;
};

/* --------------------------------------------------- limits and fair shares */

/* Password hashes cost the only thread tens of ms each: it spends on them at
 * most CAMUS_HASH_MS a second, and CAMUS_HASH_BURST_MS at once. */
static bool hash_allowed(struct camus *s) {
  bucket_take(&s->hash_us, &s->hash_at, CAMUS_HASH_MS * 1000.0, CAMUS_HASH_BURST_MS * 1000.0, 0, s->loop.now);
  return s->hash_us > 0;
}

/* A password's hash, its time taken from the budget (which may go below zero: then it waits). */
static int room_hash(struct camus *s, const char *pw, size_t n, const uint8_t salt[16], uint8_t out[32]) {
  uint64_t t0 = mono_us();
  int rc = password_hash(pw, n, salt, out);
  s->hash_us -= (double)(mono_us() - t0);
  return rc;
}

/* How much an address has done in its window: what pushing it out would forgive. */
static unsigned rate_weight(const struct rate_slot *r) {
  return r->window ? 1 + r->fails + r->rooms + r->misses : 0;
}

/* The counters of an address for the current window.  When every slot is
 * taken, the one whose address has done least is given up: an address can
 * only have its counts forgotten by a crowd of addresses each of which has
 * done more (and is as near its limits), never by a stream of new ones. */
static struct rate_slot *rate_slot(struct camus *s, const uint8_t host[16]) {
  struct rate_slot *light = &s->rate[0];
  uint64_t now = s->loop.now ? s->loop.now : 1;
  for (unsigned i = 0; i < CAMUS_RATE_SLOTS; i++) {
    struct rate_slot *r = &s->rate[i];
    if (r->window && now - r->window >= CAMUS_RATE_WINDOW_MS) *r = (struct rate_slot){.window = 0};
    if (r->window && memcmp(r->host, host, 16) == 0) return r;
    if (rate_weight(r) < rate_weight(light) || (rate_weight(r) == rate_weight(light) && r->window < light->window))
      light = r;
  }
  *light = (struct rate_slot){.window = now};
  memcpy(light->host, host, 16);
  return light;
}


/* ------------------------------------------------------------------- rooms */

/* Lower-case ASCII letters and digits kept, every other run becomes one '-',
 * no '-' at either end.  Returns the slug's length (0: nothing usable). */
static size_t slugify(const char *name, size_t n, char *out, size_t cap) {
  size_t o = 0;
  bool dash = false;
  for (size_t i = 0; i < n && o + 1 < cap; i++) {
    int ch = (unsigned char)name[i];
    if (isascii(ch) && isalnum(ch)) {
      if (dash && o > 0 && o + 2 < cap) out[o++] = '-';
      dash = false;
      out[o++] = (char)tolower(ch);
    } else {
      dash = true;
    }
  }
  out[o] = 0;
  return o;
}

static struct room *room_find(struct camus *s, struct str id) {
  for (unsigned i = 0; i < s->n_rooms; i++)
    if (str_eq(id, s->rooms[i]->id)) return s->rooms[i];
  return NULL;
}

/* Keeps the id of a room that was used, for a day.  With every tombstone in
 * use, the address that made the most of them loses its oldest. */
static void tombstone_add(struct camus *s, const struct room *rm) {
  if (!s->tombs && !(s->tombs = calloc(CAMUS_MAX_ROOMS, sizeof *s->tombs))) return;
  struct tombstone *slot = NULL;
  for (unsigned i = 0; !slot && i < CAMUS_MAX_ROOMS; i++)
    if (s->tombs[i].until <= s->loop.now) slot = &s->tombs[i];
  if (!slot) {
    const uint8_t *keys[CAMUS_MAX_ROOMS];
    unsigned most, mine;
    for (unsigned i = 0; i < CAMUS_MAX_ROOMS; i++) keys[i] = s->tombs[i].creator;
    const uint8_t *heavy = host_heaviest(keys, CAMUS_MAX_ROOMS, rm->creator, &most, &mine);
    for (unsigned i = 0; heavy && i < CAMUS_MAX_ROOMS; i++)
      if (!memcmp(s->tombs[i].creator, heavy, 16) && (!slot || s->tombs[i].until < slot->until)) slot = &s->tombs[i];
  }
  if (!slot) return;
  memcpy(slot->id, rm->id, sizeof slot->id);
  memcpy(slot->creator, rm->creator, 16);
  slot->until = s->loop.now + (uint64_t)CAMUS_TOKEN_TTL * 1000;
}

/* Deletes a room that no session refers to; why goes to the log.  Its id is
 * kept for a day, for its creator only (why NULL: the server is stopping). */
static int rooms_save(struct camus *s, const char **why);

static void room_delete(struct camus *s, struct room *rm, const char *why) {
  for (unsigned i = 0; i < s->n_rooms; i++) {
    if (s->rooms[i] != rm) continue;
    s->rooms[i] = s->rooms[--s->n_rooms];
    break;
  }
  timer_stop(&s->loop, &rm->expiry);
  if (why) LOG_I(s, "room %s: %s", rm->id, why);
  if (why && rm->joined) tombstone_add(s, rm);
  free(rm->bans);
  free(rm);
  if (why) s->rooms_gone = true; /* written at the end of the turn, once for all that went in it; at shutdown they stay */
}

/* Whether id belongs to a room that ended lately and was made by another address than host. */
static bool room_id_reserved(const struct camus *s, const char *id, const uint8_t host[16]) {
  for (unsigned i = 0; s->tombs && i < CAMUS_MAX_ROOMS; i++) {
    const struct tombstone *t = &s->tombs[i];
    if (t->until > s->loop.now && !strcmp(t->id, id)) return memcmp(t->creator, host, 16) != 0;
  }
  return false;
}

static void room_expired(struct timer *t) {
  struct room *rm = CONTAINER(t, struct room, expiry);
  if (rm->n_sessions == 0) room_delete(rm->srv, rm, "expired");
}

/* Called whenever the sessions of rm come or go. */
static void room_touch(struct room *rm) {
  struct camus *s = rm->srv;
  rm->last_active = s->loop.now;
  s->rooms_dirty = true;
  if (rm->n_sessions == 0 && s->cfg.room_expiry_sec != CAMUS_ROOM_EXPIRY_NEVER)
    timer_in(&s->loop, &rm->expiry, (uint64_t)s->cfg.room_expiry_sec * 1000);
  else
    timer_stop(&s->loop, &rm->expiry);
}

static unsigned room_capacity(const struct room *rm) {
  return rm->guest_limit ? rm->guest_limit : CAMUS_GUEST_LIMIT_MAX;
}

/* Whether members from the address host were removed from rm (and are kept out). */
static bool room_banned(const struct room *rm, const uint8_t host[16]) {
  for (unsigned i = 0; i < rm->n_bans; i++)
    if (!memcmp(rm->bans[i], host, 16)) return true;
  return false;
}

/* Keeps the address host out of rm; with CAMUS_ROOM_BANS kept, the oldest
 * goes.  Returns false when out of memory. */
static bool room_ban(struct room *rm, const uint8_t host[16]) {
  if (room_banned(rm, host)) return true;
  if (!rm->bans && !(rm->bans = malloc(CAMUS_ROOM_BANS * sizeof *rm->bans))) return false;
  if (rm->n_bans == CAMUS_ROOM_BANS) memmove(rm->bans, rm->bans + 1, --rm->n_bans * sizeof *rm->bans);
  memcpy(rm->bans[rm->n_bans++], host, 16);
  return true;
}

/* Closes the sessions still connecting into rm (none holds a seat) and lets
 * them go of it, so that it can be deleted now. */
static void room_release(struct room *rm) {
  for (uint32_t i = 0; i < sessions.cap && rm->n_sessions; i++) {
    struct rtc *r = sessions.table[i];
    struct client *c = r && r->host == &rm->srv->rtc ? r->user : NULL;
    if (!c || c->room != rm) continue;
    rtc_close(r, "its room was shed");
    c->room = NULL;
    rm->n_sessions--;
  }
}

/* The table of rooms is full: the address that made the most of the rooms
 * nobody sits in loses one of them (one never joined first, else the one
 * quiet longest), if it made more than creator would.  A few addresses
 * cannot keep the table full, and nobody loses a room to them. */
static bool room_shed(struct camus *s, const uint8_t creator[16]) {
  const uint8_t **keys = malloc((s->n_rooms + 1) * sizeof *keys);
  if (!keys) return false;
  unsigned n = 0, most, mine;
  for (unsigned i = 0; i < s->n_rooms; i++)
    if (!s->rooms[i]->n_clients) keys[n++] = s->rooms[i]->creator;
  const uint8_t *heavy = host_heaviest(keys, n, creator, &most, &mine);
  struct room *victim = NULL;
  for (unsigned i = 0; heavy && most > mine + 1 && i < s->n_rooms; i++) {
    struct room *rm = s->rooms[i];
    if (rm->n_clients || memcmp(rm->creator, heavy, 16) != 0) continue;
    if (!victim || (!rm->joined && victim->joined) ||
        (rm->joined == victim->joined && rm->last_active < victim->last_active))
      victim = rm;
  }
  free(keys);
  if (!victim) return false;
  room_release(victim);
  room_delete(s, victim, "shed: nobody in it, and its creator's address made the most rooms");
  return true;
}

/* A member's role: owners came with the room's owner key; co-hosts were made so by one.  Both moderate. */
enum { ROLE_GUEST, ROLE_COHOST, ROLE_OWNER };
static const char *const role_names[] = {"guest", "cohost", "owner"};

/* What a member publishes, by label (SFU rooms) and by what a moderator may mute. */
enum { TRACK_MIC, TRACK_CAMERA, TRACK_SCREEN };
static const char *const track_labels[] = {"mic", "camera", "screen"};

/* The owner key of a room: 128 random bits in hex, of which the room keeps only the SHA-256. */
static void owner_key_hash(const char *key, size_t n, uint8_t out[32]) {
  if (mbedtls_sha256_ret((const uint8_t *)key, n, out, 0) != 0) memset(out, 0, 32);
}

static bool owner_key_ok(const struct room *rm, struct str key) {
  static const uint8_t none[32];
  uint8_t h[32];
  if (key.n != 32 || !memcmp(rm->owner, none, 32)) return false;
  owner_key_hash(key.p, key.n, h);
  return secret_eq(h, rm->owner, 32);
}

/* What is wrong with a room name (trimmed of spaces), or NULL; its id (slug) into slug. */
static const char *room_name_error(const char *name, size_t name_len, char slug[CAMUS_ROOM_NAME_MAX + 1]) {
  if (name_len == 0) return "a room needs a name";
  if (name_len > CAMUS_ROOM_NAME_MAX) return "room name too long (" STRINGIFY(CAMUS_ROOM_NAME_MAX) " bytes at most)";
  if (!utf8_valid(name, name_len)) return "room name is not valid UTF-8";
  for (size_t i = 0; i < name_len; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return "room name has control characters";
  if (slugify(name, name_len, slug, CAMUS_ROOM_NAME_MAX + 1) == 0) return "room name needs a letter or a digit";
  return NULL;
}

/* Checks and creates a room for the address creator.  Returns it, or NULL
 * with what went wrong in *e and a message for the user in *err; its owner
 * key in owner_key. */
static struct room *room_create(struct camus *s, const uint8_t creator[16], const char *name, size_t name_len,
                                const char *password, size_t pw_len, bool public, bool sfu, unsigned guest_limit,
                                char owner_key[33], enum app_err *e, const char **err) {
  char slug[CAMUS_ROOM_NAME_MAX + 1];
  *e = APP_INVALID;
  while (name_len && isspace((unsigned char)*name)) name++, name_len--;
  while (name_len && isspace((unsigned char)name[name_len - 1])) name_len--;
  if ((*err = room_name_error(name, name_len, slug))) return NULL;
  if (pw_len > CAMUS_PASSWORD_MAX) return *err = "password too long (" STRINGIFY(CAMUS_PASSWORD_MAX) " bytes at most)", NULL;
  if (guest_limit > CAMUS_GUEST_LIMIT_MAX) return *err = GUEST_LIMIT_RULE, NULL;
  if (room_find(s, (struct str){slug, strlen(slug)})) return *e = APP_CONFLICT, *err = "a room with this id exists", NULL;
  if (room_id_reserved(s, slug, creator))
    return *e = APP_CONFLICT, *err = "a room with this id ended lately: for a day, only its creator may make it again", NULL;
  if (s->n_rooms >= s->max_rooms && !room_shed(s, creator))
    return *e = APP_FULL, *err = "too many rooms on this server", NULL;
  if (pw_len && !hash_allowed(s)) return *e = APP_LIMITED, *err = "the server is busy: try again in a second", NULL;
  if (s->n_rooms % 16 == 0) {
    struct room **a = realloc(s->rooms, (s->n_rooms + 16) * sizeof *a);
    if (!a) return *e = APP_NOMEM, *err = "out of memory", NULL;
    s->rooms = a;
  }
  struct room *rm = calloc(1, sizeof *rm);
  if (!rm) return *e = APP_NOMEM, *err = "out of memory", NULL;
  rm->srv = s;
  memcpy(rm->creator, creator, 16);
  rm->created = s->loop.now;
  memcpy(rm->id, slug, sizeof slug);
  memcpy(rm->name, name, name_len);
  rm->public = public;
  rm->guest_limit = guest_limit;
  rm->sfu = sfu;
  rm->expiry.fn = room_expired;
  random_bytes(&s->crypto, rm->nonce, sizeof rm->nonce);
  uint8_t key[16];
  random_bytes(&s->crypto, key, sizeof key);
  hex_encode(owner_key, key, sizeof key);
  owner_key_hash(owner_key, 32, rm->owner);
  if (pw_len) {
    rm->has_password = true;
    random_bytes(&s->crypto, rm->salt, sizeof rm->salt);
    if (room_hash(s, password, pw_len, rm->salt, rm->hash) != 0) {
      free(rm);
      return *e = APP_NOMEM, *err = "cannot hash the password", NULL;
    }
  }
  rm->born = (int64_t)time(NULL);
  s->rooms[s->n_rooms++] = rm;
  room_touch(rm);
  const char *why;
  if (rooms_save(s, &why) != 0) { /* no 201 for a room that would not outlive a restart */
    s->n_rooms--;
    timer_stop(&s->loop, &rm->expiry);
    free(rm);
    snprintf(s->rooms_error, sizeof s->rooms_error, "the server cannot keep a new room (%s): try again later", why);
    return *e = APP_DISK, *err = s->rooms_error, NULL;
  }
  char limit[32] = "no guest limit";
  if (guest_limit) snprintf(limit, sizeof limit, "guest limit %u", guest_limit);
  LOG_I(s, "room %s: created (%s%s, %s, %s)", rm->id, public ? "public" : "private", pw_len ? ", password" : "",
        sfu ? "media through the server" : "media between browsers", limit);
  return rm;
}

/* ----------------------------------------------------------- rooms on disk */

/* Rooms outlive the process: `rooms` in the state directory holds the
 * secret that signs password proofs and every room (id, name, password
 * salt and hash, the nonce proofs are bound to, public, media, guest limit,
 * when it was made and last active, its creator's address key and whether
 * anyone sat in it: what the fair shares of rooms weigh; the SHA-256 of its
 * owner key, whether it is locked), a line each, and a line for each address
 * removed from one ("ban <id> <address key>"), each line with the CRC-32
 * of its payload.  It is written whole to `rooms.tmp`, flushed to the disk,
 * renamed over `rooms`, and the directory flushed too (crash-safe: a reader
 * sees the old file or the new one), before the 201 of a new room is sent;
 * activity is written at most a minute late.  At start, every line that
 * verifies is taken; a file with any that does not is kept aside as
 * `rooms.bad-<time>` (never overwritten) and written anew.  --state-dir ''
 * keeps rooms in memory only. */
#define ROOMS_MAGIC "camus-rooms 2"
#define ROOMS_MAGIC_1 "camus-rooms 1" /* before owners: read, and written anew as 2 */
#define ROOMS_LINE_MAX 640

/* Writes data to dir/name through dir/name.tmp: flushed, renamed, the directory flushed.  Returns 0, or -1 with errno. */
static int state_file_replace(const char *dir, const char *name, const void *data, size_t n) {
  char tmp[PATH_MAX], path[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  (void)unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), e = 0;
  if (fd < 0) return -1;
  for (size_t off = 0; off < n && !e;) {
    ssize_t w = write(fd, (const char *)data + off, n - off);
    if (w > 0) off += (size_t)w;
    else if (errno != EINTR) e = errno ? errno : EIO;
  }
  if (!e && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) {
    (void)unlink(tmp);
    errno = e;
    return -1;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd); /* some file systems refuse a directory's fsync: the rename is done either way */
    close(dfd);
  }
  return 0;
}

static void rooms_line(struct buf *b, const char *kind, const char *payload, size_t n) {
  buf_addf(b, "%s %08x ", kind, (unsigned)crc32_ieee((const uint8_t *)payload, n));
  buf_add(b, payload, n);
  buf_adds(b, "\n");
}

/* Writes every room.  Returns 0, or -1 with the reason logged and in *why. */
static int rooms_save(struct camus *s, const char **why) {
  if (!s->rooms_dir) return 0;
  if (s->rooms_refused[0]) {
    *why = s->rooms_refused;
    return -1;
  }
  struct buf b = {0};
  char line[ROOMS_LINE_MAX], hex[5][65], name[2 * CAMUS_ROOM_NAME_MAX + 1];
  long long now = (long long)time(NULL);
  buf_adds(&b, ROOMS_MAGIC "\n");
  hex_encode(hex[0], s->secret, sizeof s->secret);
  rooms_line(&b, "secret", hex[0], 64);
  for (unsigned i = 0; i < s->n_rooms; i++) {
    const struct room *rm = s->rooms[i];
    hex_encode(hex[0], rm->salt, sizeof rm->salt);
    hex_encode(hex[1], rm->hash, sizeof rm->hash);
    hex_encode(hex[2], rm->nonce, sizeof rm->nonce);
    hex_encode(hex[3], rm->creator, sizeof rm->creator);
    hex_encode(hex[4], rm->owner, sizeof rm->owner);
    hex_encode(name, (const uint8_t *)rm->name, strlen(rm->name));
    int n = snprintf(line, sizeof line, "%s %d %d %u %lld %lld %s %s %s %s %d %s %s %d", rm->id, rm->public, rm->sfu,
                     rm->guest_limit, (long long)rm->born, now - (long long)((s->loop.now - rm->last_active) / 1000),
                     rm->has_password ? hex[0] : "-", rm->has_password ? hex[1] : "-", hex[2], hex[3], rm->joined, name,
                     hex[4], rm->locked);
    if (n > 0 && (size_t)n < sizeof line) rooms_line(&b, "room", line, (size_t)n);
    for (unsigned k = 0; k < rm->n_bans; k++) {
      hex_encode(hex[0], rm->bans[k], 16);
      n = snprintf(line, sizeof line, "%s %s", rm->id, hex[0]);
      if (n > 0 && (size_t)n < sizeof line) rooms_line(&b, "ban", line, (size_t)n);
    }
  }
  int rc = b.err ? (errno = ENOMEM, -1) : state_file_replace(s->rooms_dir, "rooms", b.p, b.len);
  buf_free(&b);
  s->rooms_dirty = rc != 0;
  if (rc) {
    *why = strerror(errno);
    LOG_W(s, "rooms: cannot write %s/rooms: %s", s->rooms_dir, *why);
  }
  return rc;
}

/* A room read back: its fields checked as room_create() would. */
static bool rooms_restore(struct camus *s, const char *p, long long now) {
  char id[CAMUS_ROOM_NAME_MAX + 2], salt[40], hash[72], nonce[40], creator[40], name_hex[2 * CAMUS_ROOM_NAME_MAX + 2];
  char owner[72] = "";
  int pub, sfu, joined, locked = 0, used = 0;
  unsigned limit;
  long long born, active;
  int got = sscanf(p, "%65s %d %d %u %lld %lld %39s %71s %39s %39s %d %129s%n %71s %d%n", id, &pub, &sfu, &limit, &born,
                   &active, salt, hash, nonce, creator, &joined, name_hex, &used, owner, &locked, &used);
  if ((got != 12 && got != 14) || p[used] || (got == 14 && (strlen(owner) != 64 || (locked != 0 && locked != 1))))
    return false; /* 12: a room from before owners */
  struct room *rm = calloc(1, sizeof *rm);
  size_t nl = strlen(name_hex) / 2;
  char slug[CAMUS_ROOM_NAME_MAX + 1];
  bool pw = strcmp(salt, "-") != 0, ok = rm && (pub == 0 || pub == 1) && (sfu == 0 || sfu == 1) &&
                                          limit <= CAMUS_GUEST_LIMIT_MAX && nl >= 1 && nl <= CAMUS_ROOM_NAME_MAX &&
                                          strlen(name_hex) == 2 * nl && strlen(nonce) == 32 && strlen(creator) == 32 &&
                                          (joined == 0 || joined == 1) &&
                                          (pw ? strlen(salt) == 32 && strlen(hash) == 64 : !strcmp(hash, "-"));
  ok = ok && hex_decode(name_hex, (uint8_t *)rm->name, nl);
  for (size_t i = 0; ok && i < nl; i++) ok = (uint8_t)rm->name[i] >= 0x20 && rm->name[i] != 0x7f;
  ok = ok && utf8_valid(rm->name, nl) && slugify(rm->name, nl, slug, sizeof slug) && !strcmp(slug, id) &&
       !room_find(s, (struct str){id, strlen(id)}) && s->n_rooms < s->max_rooms;
  ok = ok && hex_decode(nonce, rm->nonce, 16) && hex_decode(creator, rm->creator, 16) &&
       (!pw || (hex_decode(salt, rm->salt, 16) && hex_decode(hash, rm->hash, 32))) &&
       (!*owner || hex_decode(owner, rm->owner, 32));
  if (ok && s->n_rooms % 16 == 0) {
    struct room **a = realloc(s->rooms, (s->n_rooms + 16) * sizeof *a);
    if ((ok = a != NULL)) s->rooms = a;
  }
  if (!ok) {
    free(rm);
    return false;
  }
  rm->srv = s;
  memcpy(rm->id, id, strlen(id) + 1);
  rm->public = pub, rm->sfu = sfu, rm->guest_limit = limit, rm->has_password = pw, rm->born = born;
  rm->created = s->loop.now;
  rm->joined = joined;
  rm->locked = locked;
  rm->expiry.fn = room_expired;
  /* Its idle time goes on from what the file says (the clock may have gone back: then none). */
  uint64_t idle = active < now ? (uint64_t)(now - active) * 1000 : 0;
  rm->last_active = idle < s->loop.now ? s->loop.now - idle : 0;
  s->rooms[s->n_rooms++] = rm;
  if (s->cfg.room_expiry_sec != CAMUS_ROOM_EXPIRY_NEVER)
    timer_at(&s->loop, &rm->expiry, rm->last_active + (uint64_t)s->cfg.room_expiry_sec * 1000);
  return true;
}

/* A removed address read back, into its room (whose line comes first). */
static bool rooms_restore_ban(struct camus *s, const char *p) {
  char id[CAMUS_ROOM_NAME_MAX + 2], host[40];
  uint8_t key[16];
  int used = 0;
  if (sscanf(p, "%65s %39s%n", id, host, &used) != 2 || p[used] || strlen(host) != 32 || !hex_decode(host, key, 16))
    return false;
  struct room *rm = room_find(s, (struct str){id, strlen(id)});
  return rm && room_ban(rm, key);
}

/* Reads the rooms back at start.  Returns 0, or -1 with the reason in err. */
static int rooms_load(struct camus *s, char *err, size_t errlen) {
  char path[PATH_MAX], aside[PATH_MAX];
  snprintf(path, sizeof path, "%s/rooms", s->rooms_dir);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return 0;
  if (fd < 0) return snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno)), -1;
  /* As much as it holds, up to what a full table could write (a ban line is under 128 bytes). */
  size_t most = (size_t)(CAMUS_MAX_ROOMS + 2) * ROOMS_LINE_MAX + (size_t)CAMUS_MAX_ROOMS * CAMUS_ROOM_BANS * 128, n = 0;
  struct stat st;
  size_t cap = fstat(fd, &st) == 0 && st.st_size >= 0 ? MIN((size_t)st.st_size, most) : most;
  char *text = malloc(cap + 1);
  ssize_t got = 1;
  while (text && n < cap && (got = read(fd, text + n, cap - n)) > 0) n += (size_t)got;
  close(fd);
  if (!text || got < 0) {
    free(text);
    return snprintf(err, errlen, "cannot read %s", path), -1;
  }
  text[n] = 0;
  unsigned good = 0, bad = 0, line_no = 0;
  long long now = (long long)time(NULL);
  bool magic = false, old = false;
  for (char *p = text, *end; p < text + n; p = end + 1) {
    end = memchr(p, '\n', (size_t)(text + n - p));
    if (!end) { /* the last line has no end: torn */
      bad++;
      LOG_W(s, "rooms: line %u of %s is cut short: skipped", line_no + 1, path);
      break;
    }
    *end = 0;
    line_no++;
    if (line_no == 1) {
      old = !strcmp(p, ROOMS_MAGIC_1);
      magic = old || !strcmp(p, ROOMS_MAGIC);
      if (!magic) break;
      continue;
    }
    char kind[8];
    unsigned crc;
    int at = 0;
    bool ok = sscanf(p, "%7s %8x %n", kind, &crc, &at) == 2 && at > 0 &&
              crc32_ieee((const uint8_t *)p + at, strlen(p + at)) == crc;
    if (ok && !strcmp(kind, "secret")) {
      uint8_t secret[sizeof s->secret];
      ok = strlen(p + at) == 2 * sizeof secret && hex_decode(p + at, secret, sizeof secret);
      if (ok) memcpy(s->secret, secret, sizeof secret); /* only whole: proofs signed before must still check */
    } else if (ok && !strcmp(kind, "ban")) {
      ok = rooms_restore_ban(s, p + at);
    } else if (ok) {
      ok = !strcmp(kind, "room") && rooms_restore(s, p + at, now);
      good += ok;
    }
    if (!ok) {
      bad++;
      LOG_W(s, "rooms: line %u of %s does not verify: skipped", line_no, path);
    }
  }
  free(text);
  if (!magic) bad++;
  LOG_I(s, "rooms: %u read back from %s%s", good, path, bad ? ", some lines skipped" : "");
  const char *why;
  if (!bad && old && rooms_save(s, &why) != 0) return snprintf(err, errlen, "cannot write %s: %s", path, why), -1;
  if (!bad) return 0;
  /* The file is kept as it was, aside, and a new one written of what verified. */
  bool kept = false;
  for (int k = 0; k < 100 && !kept; k++) {
    if (k == 0)
      snprintf(aside, sizeof aside, "%s/rooms.bad-%lld", s->rooms_dir, now);
    else
      snprintf(aside, sizeof aside, "%s/rooms.bad-%lld-%d", s->rooms_dir, now, k);
    kept = link(path, aside) == 0;
    if (!kept && errno != EEXIST) break;
  }
  if (!kept) return snprintf(err, errlen, "cannot keep %s aside: %s", path, strerror(errno)), -1;
  LOG_W(s, "rooms: %s kept as %s; writing what verified", path, aside);
  if (rooms_save(s, &why) != 0) return snprintf(err, errlen, "cannot write %s: %s", path, why), -1;
  return 0;
}

/* The end of a loop turn in which rooms were deleted: the file without them. */
static void rooms_turn_end(void *ctx) {
  struct camus *s = ctx;
  const char *why;
  if (!s->rooms_gone) return;
  s->rooms_gone = false;
  (void)rooms_save(s, &why);
}

/* Once a minute: the rooms' activity, if any changed. */
static void rooms_tick(struct timer *t) {
  struct camus *s = CONTAINER(t, struct camus, rooms_timer);
  const char *why;
  if (s->rooms_dirty) (void)rooms_save(s, &why);
  timer_in(&s->loop, t, CAMUS_ROOMS_SAVE_MS);
}

static bool room_password_ok(struct room *rm, const char *pw, size_t n) {
  uint8_t h[32];
  if (!rm->has_password) return true;
  if (n > CAMUS_PASSWORD_MAX || room_hash(rm->srv, pw, n, rm->salt, h) != 0) return false;
  return secret_eq(h, rm->hash, sizeof h);
}

/* A password proof: "<expiry unix seconds>.<hex HMAC-SHA256(secret, id, nonce, expiry)>". */
static void token_mac(const struct camus *s, const struct room *rm, unsigned long long exp, uint8_t mac[32]) {
  uint8_t msg[CAMUS_ROOM_NAME_MAX + 1 + 16 + 8];
  size_t n = strlen(rm->id) + 1;
  memcpy(msg, rm->id, n);
  memcpy(msg + n, rm->nonce, 16);
  for (int i = 0; i < 8; i++) msg[n + 16 + (size_t)i] = (uint8_t)(exp >> (56 - 8 * i));
  hmac_sha256(s->secret, sizeof s->secret, msg, n + 24, mac);
}

static void token_make(const struct camus *s, const struct room *rm, char out[96]) {
  uint8_t mac[32];
  unsigned long long exp = (unsigned long long)time(NULL) + CAMUS_TOKEN_TTL;
  token_mac(s, rm, exp, mac);
  int n = snprintf(out, 96, "%llu.", exp);
  hex_encode(out + n, mac, sizeof mac);
}

static bool token_ok(const struct camus *s, const struct room *rm, struct str tok) {
  unsigned long long exp = 0;
  size_t i = 0;
  while (i < tok.n && i < 12 && isdigit((unsigned char)tok.p[i])) exp = exp * 10 + (unsigned)(tok.p[i++] - '0');
  if (i == 0 || i >= tok.n || tok.p[i] != '.' || tok.n - i - 1 != 64) return false;
  if (exp < (unsigned long long)time(NULL)) return false;
  uint8_t mac[32], got[32];
  if (!hex_decode(tok.p + i + 1, got, sizeof got)) return false;
  token_mac(s, rm, exp, mac);
  return secret_eq(mac, got, sizeof mac);
}

/* A member's resume token, 32 hex characters of HMAC-SHA256(secret, "resume",
 * room id, member id): given with the answer to each offer, so that a page
 * whose session was lost (a network change, a laptop lid) can present it with
 * its next offer and be the same member again. */
static void resume_token(const struct camus *s, const struct room *rm, const char *id, char out[33]) {
  uint8_t msg[7 + CAMUS_ROOM_NAME_MAX + 1 + 32], mac[32];
  size_t rl = strlen(rm->id);
  memcpy(msg, "resume", 7);
  memcpy(msg + 7, rm->id, rl + 1);
  memcpy(msg + 7 + rl + 1, id, 32);
  hmac_sha256(s->secret, sizeof s->secret, msg, 7 + rl + 1 + 32, mac);
  hex_encode(out, mac, 16);
}

/* The member of rm whose resume token tok is, or NULL. */
static struct client *resume_member(struct camus *s, struct room *rm, struct str tok) {
  char want[33];
  if (tok.n != 32) return NULL;
  for (struct client *q = rm->members; q; q = q->next_member) {
    resume_token(s, rm, q->rtc->id, want);
    if (secret_eq(want, tok.p, 32)) return q;
  }
  return NULL;
}

/* ------------------------------------------------------- the protocol's words */

/* A message being handled: its text and tokens, and where its parts are. */
struct msg {
  const char *text;
  const struct json_tok *t;
  int type, receiver, data;  /* token indexes; data -1 when absent */
  char type_s[64], receiver_s[40];
  struct str data_raw;       /* "null" when absent */
};

/* The raw JSON text of token i (strings with their quotes). */
static struct str json_raw(const char *s, const struct json_tok *t, int i) {
  if (t[i].type == JSON_STRING) return (struct str){s + t[i].start - 1, t[i].len + 2};
  return (struct str){s + t[i].start, t[i].len};
}

/* Sends {"sender", "receiver", "type", "data"} to c; data is raw JSON. */
static void msg_send(struct client *c, const char *sender, const char *type, struct str data) {
  struct buf b = {0};
  struct channel *ch = c->msg_channel;
  if (!ch || !ch->open) return;
  buf_adds(&b, "{\"sender\":");
  json_write_str(&b, sender, strlen(sender));
  buf_adds(&b, ",\"receiver\":");
  json_write_str(&b, c->rtc->id, 32);
  buf_adds(&b, ",\"type\":");
  json_write_str(&b, type, strlen(type));
  buf_adds(&b, ",\"data\":");
  buf_add(&b, data.p, data.n);
  buf_adds(&b, "}");
  if (!b.err) rtc_send(c->rtc, ch, PPID_STRING, b.p, b.len);
  buf_free(&b);
}

static void msg_send_text(struct client *c, const char *type, const char *text) {
  struct buf b = {0};
  json_write_str(&b, text, strlen(text));
  if (!b.err) msg_send(c, GROUND_CONTROL, type, (struct str){b.p, b.len});
  buf_free(&b);
}

static void msg_error(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_error(struct client *c, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  msg_send_text(c, "error", text);
}

/* room-info: {"room_id", "clients": [{"id", "username", "role"?, "held"?}]}
 * in join order, and the room's settings (name, media, locked, password,
 * guest_limit), to only (or everyone) but except. */
static void room_info_to(struct room *rm, struct client *only, struct client *except) {
  struct buf b = {0};
  buf_adds(&b, "{\"room_id\":");
  json_write_str(&b, rm->id, strlen(rm->id));
  buf_adds(&b, ",\"name\":");
  json_write_str(&b, rm->name, strlen(rm->name));
  buf_addf(&b, ",\"media\":\"%s\",\"locked\":%s,\"password\":%s,\"guest_limit\":", rm->sfu ? "sfu" : "p2p",
           rm->locked ? "true" : "false", rm->has_password ? "true" : "false");
  if (rm->guest_limit)
    buf_addf(&b, "%u", rm->guest_limit);
  else
    buf_adds(&b, "null");
  buf_adds(&b, ",\"clients\":[");
  bool first = true;
  for (struct client *q = rm->members; q; q = q->next_member) {
    buf_adds(&b, first ? "{\"id\":\"" : ",{\"id\":\"");
    buf_add(&b, q->rtc->id, 32);
    buf_adds(&b, "\",\"username\":");
    json_write_str(&b, q->username, strlen(q->username));
    if (q->role != ROLE_GUEST) buf_addf(&b, ",\"role\":\"%s\"", role_names[q->role]);
    if (q->held) {
      buf_adds(&b, ",\"held\":[");
      for (int k = 0, n = 0; k < (int)COUNT(track_labels); k++)
        if (q->held >> k & 1) buf_addf(&b, "%s\"%s\"", n++ ? "," : "", track_labels[k]);
      buf_adds(&b, "]");
    }
    buf_adds(&b, "}");
    first = false;
  }
  buf_adds(&b, "]}");
  for (struct client *q = rm->members; q && !b.err; q = q->next_member)
    if ((!only || q == only) && q != except) msg_send(q, GROUND_CONTROL, "room-info", (struct str){b.p, b.len});
  buf_free(&b);
}

/* A username: 1..CAMUS_USERNAME_MAX bytes of UTF-8 with no control characters. */
#define USERNAME_RULE "Invalid username: 1 to " STRINGIFY(CAMUS_USERNAME_MAX) " bytes, no control characters"

static bool username_ok(const char *u, int n) {
  if (n <= 0 || n > CAMUS_USERNAME_MAX || !utf8_valid(u, (size_t)n)) return false;
  for (int i = 0; i < n; i++)
    if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f) return false;
  return true;
}

/* cfg.msg_rate messages a second. */
static bool msg_rate_ok(struct client *c, uint64_t now) {
  double rate = c->srv->cfg.msg_rate;
  return bucket_take(&c->bucket, &c->bucket_at, rate, rate * CAMUS_MSG_BURST, 1, now);
}

/* CAMUS_MSG_BYTES a second of what c makes the server send: a message to a
 * room of ten costs ten times its size. */
static bool msg_bytes_ok(struct client *c, size_t cost) {
  return bucket_take(&c->bytes, &c->bytes_at, CAMUS_MSG_BYTES, (double)CAMUS_MSG_BYTES * CAMUS_MSG_BURST, (double)cost,
                     c->srv->loop.now);
}

/* What is wrong with a chat message's data ({"text": ...}), or NULL. */
static const char *chat_error(const char *s, const struct json_tok *t, int data) {
  char *text = scratch.chat_text;
  int it = data >= 0 && t[data].type == JSON_OBJECT ? json_find(s, t, data, "text") : -1;
  if (it < 0 || t[it].type != JSON_STRING) return "Invalid chat message: data.text must be a string";
  int n = json_str(s, t, it, text, sizeof scratch.chat_text);
  size_t chars = 0;
  for (int i = 0; i < n; i++) chars += ((unsigned char)text[i] & 0xc0) != 0x80;
  if (n < 0 || chars > CAMUS_CHAT_MAX) return "Chat text too long: at most " STRINGIFY(CAMUS_CHAT_MAX) " characters";
  return NULL;
}

/* ----------------------------------------------------------------- members */

/* c is in its room's member list now: the room is active, and c's silence is watched. */
static void member_start(struct client *c) {
  c->member = true;
  c->room->last_active = c->srv->loop.now;
  timer_at_coarse(&c->srv->loop, &c->ping, c->srv->loop.now + CAMUS_PING_MS);
}

/* Its channel opened: the others hear of it (the newcomer asks itself, once
 * it knows its id), and the ping timer watches it. */
static void room_member_add(struct client *c) {
  struct room *rm = c->room;
  if (!rm || c->member) return;
  if (!c->username[0]) snprintf(c->username, sizeof c->username, "Major Tom");
  if (rm->last_member)
    rm->last_member->next_member = c;
  else
    rm->members = c;
  rm->last_member = c;
  member_start(c);
  room_info_to(rm, NULL, c);
}

/* The member of rm whose id is id, other than besides; or NULL. */
static struct client *room_member_by_id(struct room *rm, const char *id, const struct client *besides) {
  for (struct client *q = rm->members; q; q = q->next_member)
    if (q != besides && !memcmp(q->rtc->id, id, 32)) return q;
  return NULL;
}

/* c, a new session of old's (same id), takes old's place in the member
 * list, with its name, and old's session ends: to the others nobody left
 * or came, so they are told nothing (what old published goes, and they are
 * asked to renegotiate, as when anyone stops sending). */
static void room_member_replace(struct client *old, struct client *c) {
  struct room *rm = c->room;
  memcpy(c->username, old->username, sizeof c->username);
  c->role = MAX(c->role, old->role);
  c->held = old->held;
  struct client **pp = &rm->members;
  while (*pp != old) pp = &(*pp)->next_member;
  *pp = c;
  c->next_member = old->next_member;
  if (rm->last_member == old) rm->last_member = c;
  old->next_member = NULL;
  old->member = false;
  member_start(c);
  room_info_to(rm, c, NULL);
  LOG_I(c->srv, "peer %s: back in room %s with a new session", c->rtc->id, rm->id);
  rtc_close(old->rtc, "replaced by its new session");
}

/* It left: the others get room-info, and a bye in its name unless it said one. */
static void room_leave_notify(struct client *c, bool said_bye) {
  struct room *rm = c->room;
  if (!rm || !c->member) return;
  struct client **pp = &rm->members, *prev = NULL;
  while (*pp && *pp != c) prev = *pp, pp = &(*pp)->next_member;
  if (*pp) *pp = c->next_member;
  if (rm->last_member == c) rm->last_member = prev;
  c->member = false;
  c->next_member = NULL;
  room_info_to(rm, NULL, NULL);
  if (said_bye) return;
  for (struct client *q = rm->members; q; q = q->next_member) msg_send(q, c->rtc->id, "bye", (struct str){"null", 4});
}

/* A client whose page stopped talking (no message for CAMUS_PING_MS) is
 * pinged, then removed if it does not answer as long again. */
static void client_ping(struct timer *t) {
  struct client *c = CONTAINER(t, struct client, ping);
  uint64_t now = c->srv->loop.now;
  if (c->rtc->dead || !c->member) return;
  if (c->pinged && now >= c->pinged_at + CAMUS_PING_MS) {
    rtc_close(c->rtc, "did not answer a ping");
    return;
  }
  if (!c->pinged && now >= c->last_msg + CAMUS_PING_MS) {
    char data[32];
    snprintf(data, sizeof data, "%llu", (unsigned long long)now);
    msg_send(c, GROUND_CONTROL, "ping", (struct str){data, strlen(data)});
    c->pinged = true;
    c->pinged_at = now;
  }
  timer_at_coarse(&c->srv->loop, &c->ping, (c->pinged ? c->pinged_at : c->last_msg) + CAMUS_PING_MS);
}

/* The session's first valid ICE check (on_checked): the client takes a
 * seat, if one is free.  A session that did not prove it can reach us holds
 * no seat, so bare offers cannot fill a room. */
static bool client_checked(void *ctx, struct rtc *r) {
  (void)ctx;
  struct client *c = r->user;
  struct room *rm = c->room;
  if (rm && !c->seated) {
    if (rm->n_clients >= room_capacity(rm) && !(c->resuming && room_member_by_id(rm, r->id, c))) {
      rtc_close(r, "room is full");
      return false;
    }
    c->seated = true;
    rm->n_clients++;
    rm->joined = true;
    rm->last_active = c->srv->loop.now;
  }
  return true;
}

static void media_free(struct client *c);

/* The session is being freed (on_close): the client leaves its room. */
static void client_closed(void *ctx, struct rtc *r) {
  (void)ctx;
  struct client *c = r->user;
  struct room *rm = c->room;
  timer_stop(&c->srv->loop, &c->ping);
  if (rm) {
    room_leave_notify(c, false);
    media_free(c);
    if (c->seated) rm->n_clients--;
    rm->n_sessions--;
    room_touch(rm);
  }
  free(c);
}

/* The server's own candidates: each address it listens on (every local one
 * for a wildcard), then the --public-ip ones. */
static void local_candidates(struct camus *s) {
  struct sockaddr_storage a;
  s->n_cands = 0;
  bool any4 = !strcmp(s->cfg.host, "0.0.0.0"), any6 = !strcmp(s->cfg.host, "::");
  if (any4 || any6) {
    struct ifaddrs *ifs = NULL, *i;
    if (getifaddrs(&ifs) == 0) {
      for (int pass = 0; pass < 2; pass++) /* loopback last */
        for (i = ifs; i; i = i->ifa_next) {
          if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || s->n_cands == COUNT(s->cands)) continue;
          if (((i->ifa_flags & IFF_LOOPBACK) != 0) != (pass == 1)) continue;
          int fam = i->ifa_addr->sa_family;
          if (fam != AF_INET && (fam != AF_INET6 || !any6)) continue;
          if (fam == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr))
            continue;
          memcpy(&a, i->ifa_addr, fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
          addr_ip(&a, s->cands[s->n_cands++], sizeof s->cands[0], false);
        }
      freeifaddrs(ifs);
    }
  } else {
    snprintf(s->cands[s->n_cands++], sizeof s->cands[0], "%s", s->cfg.host);
  }
  for (int k = 0; k < s->cfg.n_public_ips && s->n_cands < COUNT(s->cands); k++)
    snprintf(s->cands[s->n_cands++], sizeof s->cands[0], "%s", s->cfg.public_ips[k]);
}

/* What an answer to c says of us: its session's credentials, our certificate
 * and candidates (cands: room for 2 * CAMUS_MAX_CANDIDATES). */
static void client_local(struct camus *s, struct client *c, struct sdp_local *l, struct sdp_candidate *cands) {
  /* UDP first; then each address's passive ICE-TCP candidate on the HTTP(S) port, for networks that pass only TCP
   * (RFC 6544's priorities: a lower type preference, and the local preference of a passive candidate). */
  for (unsigned i = 0; i < s->n_cands; i++) {
    cands[i] = (struct sdp_candidate){s->cands[i], s->udp.port, (uint32_t)(126u << 24 | (65535u - i) << 8 | 255u), false};
    cands[s->n_cands + i] = (struct sdp_candidate){s->cands[i], s->http.port,
                                                   (uint32_t)(90u << 24 | (4u << 13 | (8191u - i)) << 8 | 255u), true};
  }
  *l = (struct sdp_local){.ufrag = c->rtc->ufrag, .pwd = c->rtc->pwd, .fingerprint = s->rtc.id.fingerprint, .cands = cands,
                          .n_cands = 2 * (int)s->n_cands, .max_message_size = CAMUS_MAX_MESSAGE};
  random_bytes(&s->crypto, &l->session_id, sizeof l->session_id); /* tells nothing of how many came before */
}

/* POST /rtc/<id>/offer from the address who, once admitted: a client in rm
 * with a new session, and the SDP answer for it; its id in id.  With resumes
 * (id holding a member's id, from its resume token) the session is that
 * member's, to take its place when its channel opens.  username (checked, or
 * NULL) is the name the others first see it by.  Returns APP_OK, or what
 * went wrong with a message for the user in *err. */
static enum app_err client_offer(struct camus *s, struct room *rm, const uint8_t who[16], const char *sdp, size_t n,
                                 bool resumes, int role, const char *username, char id[33], struct buf *answer,
                                 const char **err) {
  if (rtc_connecting(&s->rtc, who) >= CAMUS_HANDSHAKES_PER_HOST)
    return *err = "too many sessions connecting from your address: try again in a moment", APP_LIMITED;
  struct sdp_offer *o = malloc(sizeof *o);
  struct client *c = calloc(1, sizeof *c);
  enum app_err e = APP_NOMEM;
  *err = "out of memory";
  if (!o || !c) goto fail;
  if (sdp_parse_offer(sdp, n, o, err) != 0) {
    e = APP_INVALID;
    goto fail;
  }
  const struct sdp_media *m = &o->m[o->data_index];
  struct rtc_params prm = {o->ufrag, o->pwd, o->fingerprint, o->setup == SDP_SETUP_ACTIVE, (uint16_t)m->sctp_port,
                           m->max_message_size, who};
  c->srv = s;
  c->role = (uint8_t)role;
  if (username) snprintf(c->username, sizeof c->username, "%s", username);
  c->ping.fn = client_ping;
  if (!(c->rtc = rtc_new(&s->rtc, &prm, c))) {
    *err = "server is full";
    e = APP_FULL;
    goto fail;
  }
  if (resumes) {
    memcpy(c->rtc->id, id, 32);
    c->resuming = true;
  }
  memcpy(id, c->rtc->id, 33);
  struct sdp_candidate cands[2 * CAMUS_MAX_CANDIDATES];
  struct sdp_local l;
  client_local(s, c, &l, cands);
  int rc = sdp_write_answer(answer, o, &l, err);
  free(o);
  c->room = rm;
  rm->n_sessions++;
  room_touch(rm);
  if (rc != 0 || answer->err) {
    rtc_close(c->rtc, "no answer"); /* client_closed frees c at the end of the turn */
    return *err = "out of memory", APP_NOMEM;
  }
  LOG_D(s, "peer %s: offer answered (room %s)%s", c->rtc->id, rm->id, resumes ? ", a new session of this member" : "");
  return APP_OK;
fail:
  free(o);
  free(c);
  return e;
}

/* ------------------------------------------------------------------- media */

/* The SFU: in a room whose media goes through the server, each member's
 * session carries its own streams up (tracks) and everyone else's down
 * (subscriptions), over the session Ground Control already uses.  Only the
 * browser offers (over the data channel, type "offer" to Ground Control);
 * the server answers, and asks for a new offer ("renegotiate") when what a
 * member could receive has changed, so that offers never cross.
 *
 * A packet in is checked (SRTP), matched to one of its sender's tracks by
 * SSRC (or by the mid header extension, the first time), counted against
 * the sender's caps, kept for retransmission (video) and copied once per
 * subscriber into the send queue with that subscriber's header: its payload
 * type, SSRC, mid, and sequence numbers and timestamps that continue across
 * a change of source.  Nothing is allocated per packet. */
#define NACK_SLOT_BYTES 1280 /* the largest packet kept for retransmission (browsers send at most 1200) */

#define POW2_DIVIDES_65536(n) ((n) >= 1 && (n) <= 65536 && ((n) & ((n) - 1)) == 0)
_Static_assert(POW2_DIVIDES_65536(CAMUS_NACK_SLOTS) && POW2_DIVIDES_65536(CAMUS_SMALL_NACK_SLOTS),
               "the NACK slot counts must divide 65536: the ring keeps its depth across a sequence wrap");

struct nack_cache {
  unsigned slots; /* CAMUS_NACK_SLOTS or CAMUS_SMALL_NACK_SLOTS: a power of two */
  struct nack_slot {
    uint16_t seq, len; /* len 0: empty */
    uint8_t data[NACK_SLOT_BYTES];
  } slot[];
};

struct sub;

/* A stream a member publishes: one SSRC, from one sending section of its offer. */
struct track {
  struct client *owner;
  bool used, live;               /* live: in the owner's latest offer */
  char mid[33];
  enum sdp_kind kind;
  int label;                     /* TRACK_ */
  uint8_t pt, mid_ext;           /* as the owner's offer numbers them */
  uint32_t ssrc;                 /* 0 until known */
  uint32_t id;                   /* names it in msid lines */
  /* Reception (RFC 3550 A.1, A.3, A.8), for receiver reports and NACKs: */
  bool started;
  uint16_t max_seq;
  uint32_t cycles, base_seq, received, expected_prior, received_prior, jitter, transit;
  uint32_t sr_ntp;               /* the middle 32 bits of the last sender report's NTP time */
  uint64_t sr_at;                /* when it came, ms; 0: none */
  uint64_t pli_at, steer_at;     /* when we last asked for a keyframe; last changed remb */
  uint32_t remb;                 /* bit/s we steer the owner's video to */
  double up_tokens;              /* NACKs for it we may still send its owner on a viewer's behalf */
  uint64_t up_at;
  struct nack_cache *cache;      /* video: what came lately, for retransmission */
  struct sub *subs;              /* who receives it */
};

/* A stream a member receives: one receiving section of its offer. */
struct sub {
  struct client *viewer;
  struct track *src;             /* what it carries; NULL: inactive */
  struct sub *next;              /* in src->subs */
  bool live;                     /* in the viewer's latest offer */
  char mid[33];
  enum sdp_kind kind;
  uint8_t pt, mid_ext;           /* as the viewer's offer numbers them */
  uint32_t ssrc;                 /* ours */
  struct srtp_ssrc rtp, rtcp;    /* SRTP sender states of that SSRC */
  bool rebase;                   /* the next packet starts a new source */
  bool need_key;                 /* video: nothing is sent before a keyframe */
  uint16_t seq_off, last_seq;    /* sent = received + offset */
  uint32_t ts_off, last_ts;
  uint32_t packets, octets;      /* sent, for sender reports */
  uint64_t assigned_at;
  double nack_tokens;            /* retransmissions it may still ask for */
  uint64_t nack_at;
};

/* A member's media, made at its first offer in an SFU room. */
struct media {
  struct track tracks[CAMUS_SFU_TRACKS];
  struct sub *subs[CAMUS_SFU_SUBS];
  int n_subs;
  uint32_t ssrc;                 /* ours, as the sender of our RTCP to it */
  struct srtp_ssrc rtcp;
  bool asked;                    /* it was asked to renegotiate and has not offered since */
  struct timer report;           /* receiver reports and REMB to it */
  double tokens, bytes;          /* packets and bytes it may still publish */
  uint64_t tokens_at, bytes_at;
  struct media_counts {
    uint32_t forwarded, retransmitted, nacks_sent, plis_sent, unknown, over_cap, keyframe_ms;
  } n;
};

static uint32_t media_random_ssrc(struct camus *s) {
  uint32_t v = 0;
  while (v == 0) random_bytes(&s->crypto, &v, sizeof v);
  return v;
}

/* Sends an RTCP compound to c: a receiver report (with r, if given) first, as RFC 3550 wants, then fb[0..n). */
static void media_rtcp_send(struct client *c, const struct rtcp_report *r, const uint8_t *fb, size_t n) {
  uint8_t *out = rtc_media_buf(c->rtc);
  if (!out) return;
  size_t len = rtcp_write_rr(out, RTC_MEDIA_ROOM, c->media->ssrc, r);
  if (!len || len + n > RTC_MEDIA_ROOM) return;
  if (n) memcpy(out + len, fb, n);
  rtc_media_send(c->rtc, out, len + n, true, &c->media->rtcp);
}

/* Asks a video track's owner for a keyframe, at most once in CAMUS_PLI_MS. */
static void track_want_key(struct track *t) {
  struct client *o = t->owner;
  uint64_t now = o->srv->loop.now;
  uint8_t pli[12];
  if (t->kind != SDP_VIDEO || !t->ssrc || (t->pli_at && now - t->pli_at < CAMUS_PLI_MS)) return;
  t->pli_at = now;
  o->media->n.plis_sent++;
  media_rtcp_send(o, NULL, pli, rtcp_write_pli(pli, sizeof pli, o->media->ssrc, t->ssrc));
}

/* The receiver report block of what came of t (RFC 3550 A.3). */
static void track_report(struct track *t, uint64_t now, struct rtcp_report *r) {
  uint32_t ext_max = t->cycles + t->max_seq, expected = ext_max - t->base_seq + 1;
  uint32_t exp_int = expected - t->expected_prior, rec_int = t->received - t->received_prior;
  int64_t lost_int = (int64_t)exp_int - rec_int;
  t->expected_prior = expected;
  t->received_prior = t->received;
  *r = (struct rtcp_report){.ssrc = t->ssrc, .lost = (int32_t)((int64_t)expected - t->received), .highest = ext_max,
                            .jitter = t->jitter >> 4, .lsr = t->sr_at ? t->sr_ntp : 0};
  r->fraction_lost = exp_int == 0 || lost_int <= 0 ? 0 : (uint8_t)MIN(255, (lost_int << 8) / exp_int);
  if (t->sr_at) r->dlsr = (uint32_t)((now - t->sr_at) * 65536 / 1000);
}

/* Every CAMUS_RTCP_MS: a receiver report of each of c's tracks, then one
 * REMB for its video (the sum of what each stream is steered to). */
static void media_report(struct timer *tm) {
  struct media *m = CONTAINER(tm, struct media, report);
  struct client *c = m->tracks[0].owner;
  struct camus *s = c->srv;
  uint32_t ssrcs[CAMUS_SFU_TRACKS];
  uint64_t bps = 0;
  int nv = 0;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++) {
    struct track *t = &m->tracks[i];
    if (!t->used || !t->started) continue;
    struct rtcp_report r;
    track_report(t, s->loop.now, &r);
    media_rtcp_send(c, &r, NULL, 0);
    if (t->kind == SDP_VIDEO) ssrcs[nv++] = t->ssrc, bps += t->remb;
  }
  if (nv) {
    uint8_t remb[20 + 4 * CAMUS_SFU_TRACKS];
    size_t n = rtcp_write_remb(remb, sizeof remb, m->ssrc, bps, ssrcs, nv);
    if (n) media_rtcp_send(c, NULL, remb, n);
  }
  timer_in(&s->loop, &m->report, CAMUS_RTCP_MS);
}

/* Steers a video track's bitrate by what one of its receivers reports:
 * down by 15 % past 10 % loss, up by 5 % under 2 %, at most once a second,
 * between 100 kbit/s and the operator's cap. */
static void track_steer(struct track *t, uint8_t fraction_lost) {
  struct camus *s = t->owner->srv;
  uint32_t cap = s->cfg.max_bitrate_kbps * 1000u;
  if (t->kind != SDP_VIDEO || (t->steer_at && s->loop.now - t->steer_at < 1000)) return;
  if (fraction_lost > 25)
    t->remb = MAX(100000u, t->remb / 20 * 17);
  else if (fraction_lost < 5)
    t->remb = MIN(cap, t->remb / 20 * 21);
  else
    return;
  t->steer_at = s->loop.now;
}

/* A packet of t came: its place in the sequence (RFC 3550 A.1), the jitter
 * (A.8), and for video, a NACK for packets skipped over (RFC 4585). */
static void track_received(struct track *t, const struct rtp_hdr *h, uint32_t clock) {
  struct client *o = t->owner;
  uint32_t arrival = (uint32_t)(mono_us() * clock / 1000000);
  uint32_t transit = arrival - h->ts;
  if (!t->started) {
    t->started = true;
    t->base_seq = t->max_seq = h->seq;
    t->transit = transit;
  }
  int32_t d = (int32_t)(transit - t->transit);
  t->transit = transit;
  t->jitter += (uint32_t)(d < 0 ? -d : d) - ((t->jitter + 8) >> 4);
  t->received++;
  uint16_t delta = (uint16_t)(h->seq - t->max_seq);
  if (delta == 0) return;
  if (delta < 0x8000) { /* ahead */
    if (h->seq < t->max_seq) t->cycles += 65536;
    t->max_seq = h->seq;
    if (t->kind == SDP_VIDEO && delta > 1 && delta <= 17) {
      uint8_t nack[16];
      uint16_t pid = (uint16_t)(h->seq - delta + 1), blp = (uint16_t)((1u << (delta - 2)) - 1);
      o->media->n.nacks_sent++;
      media_rtcp_send(o, NULL, nack, rtcp_write_nack(nack, sizeof nack, o->media->ssrc, t->ssrc, pid, blp));
    }
  }
}

/* Sends a packet of sub's source to its viewer: the header rewritten, the payload copied once. */
static void sub_send(struct sub *sub, const uint8_t *p, size_t n, const struct rtp_hdr *h, bool retransmit) {
  struct client *v = sub->viewer;
  if (sub->rebase && !retransmit) { /* a new source: its numbers continue ours */
    sub->seq_off = (uint16_t)(sub->last_seq + 1 - h->seq);
    sub->ts_off = sub->last_ts + (sub->kind == SDP_VIDEO ? 3000 : 960) - h->ts;
    sub->rebase = false;
  }
  uint8_t *out = rtc_media_buf(v->rtc);
  if (!out) return;
  size_t body = n - h->payload; /* payload and padding */
  uint16_t seq = (uint16_t)(h->seq + sub->seq_off);
  uint32_t ts = h->ts + sub->ts_off;
  size_t hl = rtp_write_header(out, p[0] & 0x20, h->marker, sub->pt, seq, ts, sub->ssrc, sub->mid_ext, sub->mid);
  if (hl + body > RTC_MEDIA_ROOM) return;
  memcpy(out + hl, p + h->payload, body);
  if ((int16_t)(seq - sub->last_seq) > 0) sub->last_seq = seq, sub->last_ts = ts;
  sub->packets++;
  sub->octets += (uint32_t)(body);
  rtc_media_send(v->rtc, out, hl + body, false, &sub->rtp);
}

/* A packet of track t, to each of its subscribers; a subscriber that waits
 * for a keyframe gets none before one (and the owner is asked for one). */
static void track_forward(struct track *t, const uint8_t *p, size_t n, const struct rtp_hdr *h) {
  if (t->owner->held >> t->label & 1) return; /* muted by a moderator, until its owner turns it on again */
  bool key = t->kind == SDP_VIDEO && vp8_keyframe(p + h->payload, h->payload_len);
  struct media_counts *mc = &t->owner->media->n;
  for (struct sub *sub = t->subs; sub; sub = sub->next) {
    if (sub->need_key && !key) {
      track_want_key(t);
      continue;
    }
    if (sub->need_key) {
      sub->need_key = false;
      uint32_t ms = (uint32_t)(t->owner->srv->loop.now - sub->assigned_at);
      mc->keyframe_ms = ms;
      LOG_D(t->owner->srv, "peer %s: first keyframe of %s's %s after %u ms", sub->viewer->rtc->id, t->owner->rtc->id,
            track_labels[t->label], (unsigned)ms);
    }
    sub_send(sub, p, n, h, false);
    mc->forwarded++;
  }
}

/* CAMUS_PUBLISH_PPS packets a second, and the operator's bitrate cap (twice
 * over, for a camera and a screen, plus audio), for all of c's streams. */
static bool media_publish_ok(struct client *c, size_t n) {
  struct media *m = c->media;
  uint64_t now = c->srv->loop.now;
  double pps = CAMUS_PUBLISH_PPS, bps = c->srv->cfg.max_bitrate_kbps * 250.0 + 16000; /* bytes/s */
  return bucket_take(&m->tokens, &m->tokens_at, pps, pps, 1, now) &&
         bucket_take(&m->bytes, &m->bytes_at, bps, bps, (double)n, now);
}

/* An empty cache of slots packets (a power of two dividing 65536), or NULL. */
static struct nack_cache *nack_new(unsigned slots) {
  struct nack_cache *nc = calloc(1, sizeof *nc + slots * sizeof nc->slot[0]);
  if (nc) nc->slots = slots;
  return nc;
}

/* A packet kept for retransmission, by sequence number. */
static void nack_put(struct nack_cache *nc, const uint8_t *p, size_t n, uint16_t seq) {
  struct nack_slot *sl = &nc->slot[seq & (nc->slots - 1)];
  if (n > sizeof sl->data) {
    sl->len = 0;
    return;
  }
  sl->seq = seq;
  sl->len = (uint16_t)n;
  memcpy(sl->data, p, n);
}

static const struct nack_slot *nack_get(const struct nack_cache *nc, uint16_t seq) {
  const struct nack_slot *sl = &nc->slot[seq & (nc->slots - 1)];
  return sl->len && sl->seq == seq ? sl : NULL;
}

/* An RTP packet from c (the session's on_media, via client_media). */
static void media_rtp_input(struct client *c, uint8_t *p, size_t n) {
  struct media *m = c->media;
  struct rtp_hdr h;
  struct track *t = NULL;
  if (rtp_parse(p, n, &h) != 0) return;
  for (int i = 0; i < CAMUS_SFU_TRACKS && !t; i++)
    if (m->tracks[i].used && m->tracks[i].ssrc == h.ssrc) t = &m->tracks[i];
  for (int i = 0; i < CAMUS_SFU_TRACKS && !t; i++) { /* an SSRC its offer did not name: known by its mid */
    struct track *u = &m->tracks[i];
    size_t len;
    const uint8_t *mid = u->used && !u->ssrc && u->mid_ext ? rtp_ext_find(p, &h, u->mid_ext, &len) : NULL;
    if (mid && len == strlen(u->mid) && !memcmp(mid, u->mid, len)) (t = u)->ssrc = h.ssrc;
  }
  if (!t || h.pt != t->pt) {
    m->n.unknown++;
    return;
  }
  if (!media_publish_ok(c, n)) {
    m->n.over_cap++;
    return;
  }
  track_received(t, &h, t->kind == SDP_VIDEO ? 90000 : 48000);
  if (t->kind == SDP_VIDEO && (t->cache || (t->cache = nack_new(c->srv->nack_slots)))) nack_put(t->cache, p, n, h.seq);
  track_forward(t, p, n, &h);
}

/* The subscription of c whose SSRC (ours) is ssrc. */
static struct sub *media_sub_by_ssrc(struct media *m, uint32_t ssrc) {
  for (int i = 0; i < m->n_subs; i++)
    if (m->subs[i]->ssrc == ssrc) return m->subs[i];
  return NULL;
}

/* A generic NACK from a viewer: what its source still holds goes again,
 * within a budget of retransmissions (as many as 100 packets a second).
 * What never reached us (lost on the publisher's uplink, and its own NACK
 * for it too) is asked of the publisher again, at most 50 times a second a
 * stream: its retransmission then goes to every viewer. */
static void media_nack(struct client *c, struct sub *sub, const uint8_t *fci, size_t len) {
  struct track *t = sub->src;
  uint64_t now = c->srv->loop.now;
  if (!t || !t->cache) return;
  for (size_t at = 0; at + 4 <= len; at += 4) {
    uint16_t pid = (uint16_t)(get_u16(fci + at) - sub->seq_off), blp = get_u16(fci + at + 2), up_blp = 0;
    int up_first = -1;
    for (int k = 0; k < 17; k++) {
      if (k && !(blp >> (k - 1) & 1)) continue;
      uint16_t seq = (uint16_t)(pid + k);
      const struct nack_slot *sl = nack_get(t->cache, seq);
      struct rtp_hdr h;
      if (!sl || rtp_parse(sl->data, sl->len, &h) != 0) {
        if ((uint16_t)(t->max_seq - seq) >= t->cache->slots) continue; /* ahead of what came, or long gone */
        if (up_first < 0) up_first = k;
        else up_blp |= (uint16_t)(1u << (k - up_first - 1));
        continue;
      }
      if (!bucket_take(&sub->nack_tokens, &sub->nack_at, 100, 100, 1, now)) return;
      sub_send(sub, sl->data, sl->len, &h, true);
      c->media->n.retransmitted++;
    }
    struct client *o = t->owner;
    uint8_t nack[16];
    if (up_first < 0 || !bucket_take(&t->up_tokens, &t->up_at, 50, 50, 1, now)) continue;
    o->media->n.nacks_sent++;
    media_rtcp_send(o, NULL, nack, rtcp_write_nack(nack, sizeof nack, o->media->ssrc, t->ssrc, (uint16_t)(pid + up_first), up_blp));
  }
}

/* A publisher's sender report: kept for our receiver reports, and passed to
 * each subscriber in its own numbers (its SSRC, its timestamps, its counts). */
static void media_sr(struct client *c, const struct rtcp_pkt *r) {
  struct media *m = c->media;
  if (r->len < 24) return;
  uint32_t ssrc = get_u32(r->body);
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++) {
    struct track *t = &m->tracks[i];
    if (!t->used || t->ssrc != ssrc) continue;
    t->sr_ntp = get_u32(r->body + 6);
    t->sr_at = c->srv->loop.now;
    for (struct sub *sub = t->subs; sub; sub = sub->next) {
      uint8_t *out = sub->rebase || sub->need_key ? NULL : rtc_media_buf(sub->viewer->rtc);
      if (!out) continue;
      rtcp_header(out, 0, RTCP_SR, 28);
      put_u32(out + 4, sub->ssrc);
      memcpy(out + 8, r->body + 4, 8); /* NTP time */
      put_u32(out + 16, get_u32(r->body + 12) + sub->ts_off);
      put_u32(out + 20, sub->packets);
      put_u32(out + 24, sub->octets);
      rtc_media_send(sub->viewer->rtc, out, 28, true, &sub->rtcp);
    }
  }
}

/* An RTCP compound from c: sender reports of its streams; reports, NACKs
 * and keyframe requests about the streams it receives from us. */
static void media_rtcp_input(struct client *c, const uint8_t *p, size_t n) {
  struct media *m = c->media;
  struct rtcp_pkt r;
  size_t at = 0;
  while (rtcp_next(p, n, &at, &r) == 1) {
    if (r.pt == RTCP_SR || r.pt == RTCP_RR) {
      if (r.pt == RTCP_SR) media_sr(c, &r);
      size_t first = r.pt == RTCP_SR ? 24 : 4;
      for (size_t k = 0; k < r.count && first + (k + 1) * RTCP_REPORT <= r.len; k++) {
        struct rtcp_report rep;
        rtcp_report_read(r.body + first + k * RTCP_REPORT, &rep);
        struct sub *sub = media_sub_by_ssrc(m, rep.ssrc);
        if (sub && sub->src) track_steer(sub->src, rep.fraction_lost);
      }
    } else if ((r.pt == RTCP_RTPFB && r.count == RTCP_FMT_NACK) || r.pt == RTCP_PSFB) {
      if (r.len < 8) continue;
      uint32_t media_ssrc = get_u32(r.body + 4);
      if (r.pt == RTCP_PSFB && r.count == RTCP_FMT_FIR && r.len >= 16) media_ssrc = get_u32(r.body + 8);
      struct sub *sub = media_sub_by_ssrc(m, media_ssrc);
      if (!sub || !sub->src) continue;
      if (r.pt == RTCP_RTPFB)
        media_nack(c, sub, r.body + 8, r.len - 8);
      else if (r.count == RTCP_FMT_PLI || r.count == RTCP_FMT_FIR)
        track_want_key(sub->src);
    }
  }
}

/* An authenticated RTP or RTCP packet from a client's session (on_media). */
static void client_media(void *ctx, struct rtc *r, uint8_t *p, size_t n, bool rtcp) {
  (void)ctx;
  struct client *c = r->user;
  if (!c->media || !c->member) return;
  if (!rtcp)
    media_rtp_input(c, p, n);
  else if (media_publish_ok(c, n)) /* what it makes us send is bounded by what it may send */
    media_rtcp_input(c, p, n);
  else
    c->media->n.over_cap++;
}

/* --- renegotiation --- */

/* Whether t can go to the member whose media is m (the codec's kind is all that differs: every member has Opus and VP8). */
static bool track_offered(const struct track *t, const struct client *v) {
  return t->used && t->live && t->owner != v && t->owner->member;
}

/* Asks v for a new offer: what it could receive has changed.  data: how
 * many audio and video streams it should have sections for.  (A newcomer,
 * whose first offer may come any time, hears of it only if there is
 * something to receive: a client that sends no media never hears it.) */
static void media_renegotiate(struct client *v, bool newcomer) {
  unsigned na = 0, nv = 0;
  char data[48];
  if (!v->media || !v->member || v->media->asked) return; /* its coming offer will find the news */
  for (struct client *o = v->room->members; o; o = o->next_member)
    for (int i = 0; o->media && i < CAMUS_SFU_TRACKS; i++)
      if (track_offered(&o->media->tracks[i], v)) *(o->media->tracks[i].kind == SDP_AUDIO ? &na : &nv) += 1;
  if (newcomer && !na && !nv) return;
  snprintf(data, sizeof data, "{\"audio\":%u,\"video\":%u}", MIN(na, CAMUS_SFU_SUBS / 2u), MIN(nv, CAMUS_SFU_SUBS / 2u));
  v->media->asked = true;
  msg_send(v, GROUND_CONTROL, "renegotiate", (struct str){data, strlen(data)});
}

/* Everyone in c's room but c is asked for a new offer. */
static void media_renegotiate_others(struct client *c) {
  for (struct client *q = c->room->members; q; q = q->next_member)
    if (q != c) media_renegotiate(q, false);
}

static void sub_detach(struct sub *sub) {
  if (!sub->src) return;
  struct sub **pp = &sub->src->subs;
  while (*pp && *pp != sub) pp = &(*pp)->next;
  if (*pp) *pp = sub->next;
  sub->src = NULL;
  sub->next = NULL;
}

static void sub_attach(struct sub *sub, struct track *t) {
  sub->src = t;
  sub->next = t->subs;
  t->subs = sub;
  sub->rebase = true;
  sub->need_key = t->kind == SDP_VIDEO;
  sub->assigned_at = t->owner->srv->loop.now;
  t->pli_at = 0; /* a new viewer needs a keyframe now */
  track_want_key(t);
}

/* A track its owner no longer sends: its subscribers go idle. */
static void track_end(struct track *t) {
  while (t->subs) sub_detach(t->subs);
  free(t->cache);
  memset(t, 0, sizeof *t);
}

/* The free track or subscription slot for mid, or the one that has it. */
static struct track *media_track(struct media *m, const char *mid) {
  struct track *free_one = NULL;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++) {
    if (m->tracks[i].used && !strcmp(m->tracks[i].mid, mid)) return &m->tracks[i];
    if (!m->tracks[i].used && !free_one) free_one = &m->tracks[i];
  }
  return free_one;
}

static struct sub *media_sub(struct client *c, const char *mid) {
  struct media *m = c->media;
  for (int i = 0; i < m->n_subs; i++)
    if (!strcmp(m->subs[i]->mid, mid)) return m->subs[i];
  if (m->n_subs == CAMUS_SFU_SUBS) return NULL;
  struct sub *sub = calloc(1, sizeof *sub);
  if (!sub) return NULL;
  sub->viewer = c;
  memcpy(sub->mid, mid, sizeof sub->mid);
  do
    sub->ssrc = media_random_ssrc(c->srv);
  while (media_sub_by_ssrc(m, sub->ssrc) || sub->ssrc == m->ssrc);
  random_bytes(&c->srv->crypto, &sub->last_seq, sizeof sub->last_seq);
  random_bytes(&c->srv->crypto, &sub->last_ts, sizeof sub->last_ts);
  m->subs[m->n_subs++] = sub;
  return sub;
}

static struct media *media_new(struct client *c) {
  struct media *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->ssrc = media_random_ssrc(c->srv);
  m->report.fn = media_report;
  m->tokens = CAMUS_PUBLISH_PPS;
  m->bytes = c->srv->cfg.max_bitrate_kbps * 250.0 + 16000;
  m->tokens_at = m->bytes_at = c->srv->loop.now;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++) m->tracks[i].owner = c;
  timer_in(&c->srv->loop, &m->report, CAMUS_RTCP_MS);
  return m;
}

/* c leaves: its tracks end (the others are asked to renegotiate), its subscriptions go. */
static void media_free(struct client *c) {
  struct media *m = c->media;
  bool had = false;
  if (!m) return;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++)
    if (m->tracks[i].used) had = true, track_end(&m->tracks[i]);
  for (int i = 0; i < m->n_subs; i++) {
    sub_detach(m->subs[i]);
    free(m->subs[i]);
  }
  timer_stop(&c->srv->loop, &m->report);
  const struct rtc_media_counts *mc = &c->rtc->media;
  LOG_I(c->srv, "peer %s: media: %llu packets (%llu bytes) in, %llu (%llu bytes) out, %u forwarded, %u retransmitted on NACK, "
        "%u NACKs and %u PLIs sent, %llu dropped (%u unknown SSRC, %u over the caps, %llu failed SRTP, %llu replayed)",
        c->rtc->id, (unsigned long long)mc->in, (unsigned long long)mc->bytes_in, (unsigned long long)mc->out,
        (unsigned long long)mc->bytes_out, m->n.forwarded, m->n.retransmitted, m->n.nacks_sent, m->n.plis_sent,
        (unsigned long long)(m->n.unknown + m->n.over_cap + mc->auth + mc->replayed), m->n.unknown, m->n.over_cap,
        (unsigned long long)mc->auth, (unsigned long long)mc->replayed);
  free(m);
  c->media = NULL;
  if (had && c->room) media_renegotiate_others(c);
}

/* The label a member gave its sending section mid in the offer's "tracks" ({"<mid>": "camera"}), else by kind. */
static int media_label(const struct msg *msg, int tracks, const char *mid, enum sdp_kind kind) {
  char v[16];
  int i = tracks >= 0 ? json_find(msg->text, msg->t, tracks, mid) : -1;
  if (i >= 0 && json_str(msg->text, msg->t, i, v, sizeof v) > 0)
    for (int k = 0; k < 3; k++)
      if (!strcmp(v, track_labels[k]) && (k == TRACK_MIC) == (kind == SDP_AUDIO)) return k;
  return kind == SDP_AUDIO ? TRACK_MIC : TRACK_CAMERA;
}

/* The sending sections of an offer become c's tracks; those gone end.  Returns whether any came or went. */
static bool media_publish(struct client *c, const struct sdp_offer *o, const struct msg *msg, int tracks,
                          struct sdp_plan *plan) {
  struct media *m = c->media;
  bool changed = false;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++) m->tracks[i].live = false;
  for (int i = 0; i < o->n_media; i++) {
    const struct sdp_media *sm = &o->m[i];
    if (!sm->media || sm->pt < 0 || (sm->dir != SDP_SENDONLY && sm->dir != SDP_SENDRECV)) continue;
    struct track *t = media_track(m, sm->mid);
    if (!t || t->live) continue; /* no room, or a mid named twice: refused */
    plan[i] = (struct sdp_plan){.dir = SDP_RECVONLY, .accept = true};
    if (!t->used) {
      *t = (struct track){.owner = c, .used = true, .kind = sm->media, .remb = c->srv->cfg.max_bitrate_kbps * 1000u};
      memcpy(t->mid, sm->mid, sizeof t->mid);
      t->id = ++c->srv->media_ids;
      changed = true;
    } else if (t->kind != sm->media) {
      plan[i].accept = false;
      continue;
    }
    t->live = true;
    t->pt = (uint8_t)sm->pt;
    t->mid_ext = sm->mid_ext;
    t->label = media_label(msg, tracks, sm->mid, sm->media);
    if (sm->ssrc && sm->ssrc != t->ssrc) { /* a new source on the same section: its viewers start afresh */
      t->ssrc = sm->ssrc;
      t->started = false;
      for (struct sub *sub = t->subs; sub; sub = sub->next) sub->rebase = true, sub->need_key = t->kind == SDP_VIDEO;
    }
  }
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++)
    if (m->tracks[i].used && !m->tracks[i].live) track_end(&m->tracks[i]), changed = true;
  return changed;
}

/* The receiving sections of an offer become c's subscriptions, each kept on
 * its stream while that lives; free ones take streams nobody sends c yet.
 * Returns whether some stream c could receive has no section. */
static bool media_subscribe(struct client *c, const struct sdp_offer *o, struct sdp_plan *plan) {
  struct media *m = c->media;
  for (int i = 0; i < m->n_subs; i++) m->subs[i]->live = false;
  for (int i = 0; i < o->n_media; i++) {
    const struct sdp_media *sm = &o->m[i];
    if (sm->media && sm->pt >= 0 && sm->dir == SDP_INACTIVE) /* a paused sender: kept, nothing flows */
      plan[i] = (struct sdp_plan){.dir = SDP_INACTIVE, .accept = true};
    if (!sm->media || sm->pt < 0 || sm->dir != SDP_RECVONLY) continue;
    struct sub *sub = media_sub(c, sm->mid);
    if (!sub || sub->live || (sub->kind && sub->kind != sm->media)) continue;
    sub->live = true;
    sub->kind = sm->media;
    sub->pt = (uint8_t)sm->pt;
    sub->mid_ext = sm->mid_ext;
    plan[i] = (struct sdp_plan){.dir = SDP_INACTIVE, .accept = true};
  }
  for (int i = 0; i < m->n_subs;) { /* sections gone from the offer */
    if (m->subs[i]->live) {
      i++;
      continue;
    }
    sub_detach(m->subs[i]);
    free(m->subs[i]);
    m->subs[i] = m->subs[--m->n_subs];
  }
  unsigned want[3] = {0}, have[3] = {0}; /* by kind: streams c could receive; sections it gave */
  for (int i = 0; i < m->n_subs; i++) have[m->subs[i]->kind]++;
  for (struct client *q = c->room->members; q; q = q->next_member)
    for (int k = 0; q->media && k < CAMUS_SFU_TRACKS; k++) {
      struct track *t = &q->media->tracks[k];
      bool has = false;
      if (!track_offered(t, c)) continue;
      want[t->kind]++;
      for (struct sub *sub = t->subs; sub && !has; sub = sub->next) has = sub->viewer == c;
      for (int i = 0; !has && i < m->n_subs; i++)
        if (!m->subs[i]->src && m->subs[i]->kind == t->kind) sub_attach(m->subs[i], t), has = true;
    }
  /* What media_renegotiate asks for: it is short if it gave fewer sections (and can take more). */
  bool short_of_sections = m->n_subs < CAMUS_SFU_SUBS && (have[SDP_AUDIO] < MIN(want[SDP_AUDIO], CAMUS_SFU_SUBS / 2u) ||
                                                           have[SDP_VIDEO] < MIN(want[SDP_VIDEO], CAMUS_SFU_SUBS / 2u));
  for (int i = 0; i < o->n_media; i++) {
    struct sub *sub = plan[i].accept && o->m[i].dir == SDP_RECVONLY ? media_sub(c, o->m[i].mid) : NULL;
    if (!sub) continue;
    plan[i].ssrc = sub->ssrc; /* named even while idle: Chromium shows nothing more on a slot that lost it */
    if (!sub->src) continue;
    plan[i].dir = SDP_SENDONLY;
    snprintf(plan[i].msid, sizeof plan[i].msid, "%.32s-%s t%u", sub->src->owner->rtc->id, track_labels[sub->src->label],
             (unsigned)sub->src->id);
  }
  return short_of_sections;
}

/* {"type": "answer", "sdp": ..., "streams": {"<mid>": {"peer", "label"}}} */
static void media_answer_json(struct buf *b, struct client *c, const struct buf *sdp) {
  struct media *m = c->media;
  bool first = true;
  buf_adds(b, "{\"type\":\"answer\",\"sdp\":");
  json_write_str(b, sdp->p, sdp->len);
  buf_adds(b, ",\"streams\":{");
  for (int i = 0; i < m->n_subs; i++) {
    struct sub *sub = m->subs[i];
    if (!sub->src) continue;
    buf_adds(b, first ? "" : ",");
    json_write_str(b, sub->mid, strlen(sub->mid));
    buf_adds(b, ":{\"peer\":\"");
    buf_add(b, sub->src->owner->rtc->id, 32);
    buf_addf(b, "\",\"label\":\"%s\"}", track_labels[sub->src->label]);
    first = false;
  }
  buf_adds(b, "}}");
}

static void client_local(struct camus *s, struct client *c, struct sdp_local *l, struct sdp_candidate *cands);

/* {"type": "offer", "sdp": ..., "tracks": {...}} to Ground Control, in an
 * SFU room: a new description of the member's one session. */
static void gc_offer(struct client *c, const struct msg *msg) {
  struct camus *s = c->srv;
  const struct json_tok *t = msg->t;
  if (!c->room->sfu) {
    msg_error(c, "This room's media goes directly between browsers: send offers to members");
    return;
  }
  int isdp = msg->data >= 0 ? json_find(msg->text, t, msg->data, "sdp") : -1;
  int tracks = msg->data >= 0 ? json_find(msg->text, t, msg->data, "tracks") : -1;
  if (isdp < 0 || t[isdp].type != JSON_STRING) {
    msg_error(c, "Invalid offer: data.sdp must be a string");
    return;
  }
  if (tracks >= 0 && t[tracks].type != JSON_OBJECT) tracks = -1;
  char *sdp = malloc(CAMUS_SDP_MAX + 1);
  struct sdp_offer *o = malloc(sizeof *o);
  struct sdp_plan *plan = calloc(CAMUS_SDP_MAX_MEDIA, sizeof *plan);
  struct buf ans = {0}, json = {0};
  const char *err = "out of memory";
  int n = sdp && o && plan ? json_str(msg->text, t, isdp, sdp, CAMUS_SDP_MAX + 1) : -1;
  if (!sdp || !o || !plan || (!c->media && !(c->media = media_new(c)))) goto fail;
  if (n < 0) {
    err = "offer too large";
    goto fail;
  }
  c->media->asked = false;
  if (sdp_parse_offer(sdp, (size_t)n, o, &err) != 0) goto fail;
  if (strcmp(o->ufrag, c->rtc->remote_ufrag) || strcmp(o->pwd, c->rtc->remote_pwd) ||
      memcmp(o->fingerprint, c->rtc->remote_fp, 32)) {
    err = "new ICE credentials or a new certificate: an ICE restart is not supported, rejoin instead";
    goto fail;
  }
  bool changed = media_publish(c, o, msg, tracks, plan);
  bool short_of_sections = media_subscribe(c, o, plan);
  struct sdp_candidate cands[2 * CAMUS_MAX_CANDIDATES];
  struct sdp_local l;
  client_local(s, c, &l, cands);
  l.plan = plan;
  l.setup = c->rtc->dtls_server ? "passive" : "active";
  if (sdp_write_answer(&ans, o, &l, &err) != 0) goto fail;
  media_answer_json(&json, c, &ans);
  if (json.err) goto fail;
  msg_send(c, GROUND_CONTROL, "answer", (struct str){json.p, json.len});
  if (changed) media_renegotiate_others(c);
  if (short_of_sections) media_renegotiate(c, false);
  goto done;
fail:
  msg_error(c, "Invalid offer: %s", err);
done:
  buf_free(&ans);
  buf_free(&json);
  free(sdp);
  free(o);
  free(plan);
}

/* --------------------------------------------------------------- moderation */

/* Owners (who hold the room's owner key) and co-hosts run a room: over
 * Ground Control ({"type": "moderate", "data": {"action": ...}}) or over
 * HTTP with the key (POST /api/rooms/<id>/moderate).  Every member hears
 * what was done and by whom ({"type": "moderation"}); room-info says each
 * member's role, what of theirs is held, and the room's settings.  Nothing
 * here trusts a client: the role is the server's. */

/* Turns a held stream of c's on again: the viewers of its video need a keyframe first. */
static void media_unhold(struct client *c, int label) {
  c->held &= (uint8_t)~(1u << label);
  for (int i = 0; c->media && i < CAMUS_SFU_TRACKS; i++) {
    struct track *t = &c->media->tracks[i];
    if (!t->used || t->label != label || t->kind != SDP_VIDEO) continue;
    for (struct sub *sub = t->subs; sub; sub = sub->next) sub->need_key = true;
    track_want_key(t);
  }
}

/* Tells every member what was done: action, who did it (NULL: an owner over HTTP), to whom, and more (JSON members, or ""). */
static void moderation_announce(struct room *rm, const struct client *by, const char *action, const struct client *target,
                                const char *more) {
  struct buf b = {0};
  buf_adds(&b, "{\"action\":");
  json_write_str(&b, action, strlen(action));
  if (by) {
    buf_adds(&b, ",\"by\":\"");
    buf_add(&b, by->rtc->id, 32);
    buf_adds(&b, "\",\"by_name\":");
    json_write_str(&b, by->username, strlen(by->username));
  } else {
    buf_adds(&b, ",\"by\":null,\"by_name\":\"the owner\"");
  }
  if (target) {
    buf_adds(&b, ",\"target\":\"");
    buf_add(&b, target->rtc->id, 32);
    buf_adds(&b, "\",\"target_name\":");
    json_write_str(&b, target->username, strlen(target->username));
  }
  buf_adds(&b, more);
  buf_adds(&b, "}");
  for (struct client *q = rm->members; q && !b.err; q = q->next_member)
    msg_send(q, GROUND_CONTROL, "moderation", (struct str){b.p, b.len});
  rm->srv->moderations++;
  LOG_I(rm->srv, "room %s: %s%s%s by %s", rm->id, action, target ? " of " : "", target ? target->rtc->id : "",
        by ? by->rtc->id : "the owner key");
  buf_free(&b);
}

/* The room's sessions all close (its members were told), and it goes. */
static void room_end_now(struct timer *t) {
  struct room *rm = CONTAINER(t, struct room, expiry);
  for (uint32_t i = 0; i < sessions.cap && rm->n_sessions; i++) {
    struct rtc *r = sessions.table[i];
    struct client *c = r && r->host == &rm->srv->rtc ? r->user : NULL;
    if (!c || c->room != rm) continue;
    room_leave_notify(c, true);
    media_free(c);
    if (c->seated) rm->n_clients--;
    rtc_close(r, "its room was ended");
    c->room = NULL;
    rm->n_sessions--;
  }
  room_delete(rm->srv, rm, "ended by its owner");
}

/* A moderation request, the JSON object at t[obj] of text, from by (a
 * member with a role; NULL: over HTTP with the owner key).  Returns APP_OK,
 * or what was wrong with a message in *err. */
static enum app_err room_moderate(struct room *rm, struct client *by, const char *text, const struct json_tok *t, int obj,
                                  const char **err) {
  struct camus *s = rm->srv;
  char action[16], arg[CAMUS_ROOM_NAME_MAX * 4 + CAMUS_PASSWORD_MAX + 1], more[64] = "";
  int role = by ? by->role : ROLE_OWNER;
  int ia = json_find(text, t, obj, "action"), it = json_find(text, t, obj, "target");
  if (role < ROLE_COHOST) return *err = "only the room's owners and co-hosts may do that", APP_DENIED;
  if (rm->ending) return *err = "the room has ended", APP_INVALID;
  if (ia < 0 || json_str(text, t, ia, action, sizeof action) <= 0) return *err = "moderate needs an action", APP_INVALID;
  struct client *target = NULL;
  if (it >= 0) {
    char id[40];
    if (json_str(text, t, it, id, sizeof id) != 32 || !(target = room_member_by_id(rm, id, NULL)))
      return *err = "no such member in the room", APP_INVALID;
    if (target->role == ROLE_OWNER && role != ROLE_OWNER) return *err = "co-hosts may not do that to an owner", APP_DENIED;
  }
  bool on_member = !strcmp(action, "mute") || !strcmp(action, "remove") || !strcmp(action, "cohost");
  if (on_member != (target != NULL)) return *err = on_member ? "that needs a target member" : "that takes no target", APP_INVALID;
  if ((!strcmp(action, "cohost") || !strcmp(action, "end")) && role != ROLE_OWNER)
    return *err = "only the room's owners may do that", APP_DENIED;

  if (!strcmp(action, "mute")) {
    int iw = json_find(text, t, obj, "what"), label = TRACK_MIC;
    if (iw >= 0) {
      label = -1;
      if (json_str(text, t, iw, arg, sizeof arg) > 0)
        for (int k = 0; k < (int)COUNT(track_labels); k++)
          if (!strcmp(arg, track_labels[k])) label = k;
      if (label < 0) return *err = "what must be \"mic\", \"camera\" or \"screen\"", APP_INVALID;
    }
    target->held |= (uint8_t)(1u << label);
    snprintf(more, sizeof more, ",\"what\":\"%s\"", track_labels[label]);
  } else if (!strcmp(action, "remove")) {
    if (target == by) return *err = "to leave, leave: you cannot remove yourself", APP_INVALID;
    if (!room_ban(rm, target->rtc->who)) return *err = "out of memory", APP_NOMEM;
    moderation_announce(rm, by, action, target, "");
    room_leave_notify(target, true);
    rtc_close(target->rtc, "removed from its room");
    s->rooms_dirty = true;
    return APP_OK;
  } else if (!strcmp(action, "cohost")) {
    int iv = json_find(text, t, obj, "cohost");
    bool on = iv < 0 || t[iv].type == JSON_TRUE;
    if (iv >= 0 && t[iv].type != JSON_TRUE && t[iv].type != JSON_FALSE) return *err = "cohost must be true or false", APP_INVALID;
    if (target->role == ROLE_OWNER) return *err = "an owner is more than a co-host already", APP_INVALID;
    target->role = on ? ROLE_COHOST : ROLE_GUEST;
    snprintf(more, sizeof more, ",\"cohost\":%s", on ? "true" : "false");
  } else if (!strcmp(action, "rename")) {
    int in = json_find(text, t, obj, "name"), n = in >= 0 ? json_str(text, t, in, arg, CAMUS_ROOM_NAME_MAX * 4 + 1) : -1;
    char slug[CAMUS_ROOM_NAME_MAX + 1];
    const char *p = arg;
    if (n < 0) return *err = "rename needs a name of " STRINGIFY(CAMUS_ROOM_NAME_MAX) " bytes at most", APP_INVALID;
    while (n && isspace((unsigned char)*p)) p++, n--;
    while (n && isspace((unsigned char)p[n - 1])) n--;
    if ((*err = room_name_error(p, (size_t)n, slug))) return APP_INVALID;
    memcpy(rm->name, p, (size_t)n);
    rm->name[n] = 0; /* its id, and so every link to it, stays */
  } else if (!strcmp(action, "password")) {
    int ip = json_find(text, t, obj, "password"), n = 0;
    if (ip >= 0 && t[ip].type != JSON_NULL && (n = json_str(text, t, ip, arg, CAMUS_PASSWORD_MAX + 1)) < 0)
      return *err = "password must be a string of " STRINGIFY(CAMUS_PASSWORD_MAX) " bytes at most", APP_INVALID;
    if (n && !hash_allowed(s)) return *err = "the server is busy: try again in a second", APP_LIMITED;
    uint8_t salt[16], hash[32];
    random_bytes(&s->crypto, salt, sizeof salt);
    if (n && room_hash(s, arg, (size_t)n, salt, hash) != 0) return *err = "cannot hash the password", APP_NOMEM;
    rm->has_password = n > 0;
    memcpy(rm->salt, salt, 16);
    memcpy(rm->hash, n ? hash : (uint8_t[32]){0}, 32);
    random_bytes(&s->crypto, rm->nonce, sizeof rm->nonce); /* proofs of the old password are worth nothing now */
    snprintf(more, sizeof more, ",\"password\":%s", n ? "true" : "false");
  } else if (!strcmp(action, "lock")) {
    int il = json_find(text, t, obj, "locked");
    if (il >= 0 && t[il].type != JSON_TRUE && t[il].type != JSON_FALSE) return *err = "locked must be true or false", APP_INVALID;
    rm->locked = il < 0 || t[il].type == JSON_TRUE;
    snprintf(more, sizeof more, ",\"locked\":%s", rm->locked ? "true" : "false");
  } else if (!strcmp(action, "limit")) {
    int il = json_find(text, t, obj, "guest_limit");
    long long limit = 0;
    if (il < 0 || (t[il].type != JSON_NULL && (!json_int(text, t, il, &limit) || limit < 1 || limit > CAMUS_GUEST_LIMIT_MAX)))
      return *err = GUEST_LIMIT_RULE " (or null)", APP_INVALID;
    rm->guest_limit = (unsigned)limit;
    snprintf(more, sizeof more, ",\"guest_limit\":%u", rm->guest_limit);
  } else if (!strcmp(action, "media")) {
    int im = json_find(text, t, obj, "media");
    if (im < 0 || json_str(text, t, im, arg, sizeof arg) <= 0 || (strcmp(arg, "sfu") && strcmp(arg, "p2p")))
      return *err = "media must be \"sfu\" or \"p2p\"", APP_INVALID;
    rm->sfu = !strcmp(arg, "sfu"); /* its members' pages connect again, into the new mode */
    snprintf(more, sizeof more, ",\"media\":\"%s\"", rm->sfu ? "sfu" : "p2p");
  } else if (!strcmp(action, "end")) {
    rm->ending = true;
    moderation_announce(rm, by, action, NULL, "");
    rm->expiry.fn = room_end_now;
    timer_in(&s->loop, &rm->expiry, CAMUS_ROOM_END_MS);
    return APP_OK;
  } else {
    return *err = "unknown action: rename, password, lock, limit, media, mute, remove, cohost or end", APP_INVALID;
  }
  s->rooms_dirty = true; /* written within the minute, as activity is */
  moderation_announce(rm, by, action, target, more);
  room_info_to(rm, NULL, NULL);
  return APP_OK;
}

/* ------------------------------------------------------ the messaging protocol */

static void gc_ping(struct client *c, const struct msg *m) { msg_send(c, GROUND_CONTROL, "pong", m->data_raw); }

static void gc_room_info(struct client *c, const struct msg *m) {
  (void)m;
  room_info_to(c->room, c, NULL);
}

static void gc_ignore(struct client *c, const struct msg *m) { (void)c, (void)m; }

static void gc_bye(struct client *c, const struct msg *m) {
  (void)m;
  room_leave_notify(c, true);
  rtc_close(c->rtc, "said bye");
}

static void gc_profile(struct client *c, const struct msg *m) {
  const struct json_tok *t = m->t;
  int iu = m->data >= 0 && t[m->data].type == JSON_OBJECT ? json_find(m->text, t, m->data, "username") : -1;
  char name[CAMUS_USERNAME_MAX + 1];
  int ul = iu >= 0 ? json_str(m->text, t, iu, name, sizeof name) : -1;
  if (!username_ok(name, ul)) {
    msg_error(c, USERNAME_RULE);
    return;
  }
  memcpy(c->username, name, (size_t)ul + 1);
  room_info_to(c->room, NULL, NULL);
}

static void gc_moderate(struct client *c, const struct msg *m) {
  const char *err;
  if (m->data < 0 || m->t[m->data].type != JSON_OBJECT) {
    msg_error(c, "moderate needs data: {\"action\": ...}");
    return;
  }
  if (room_moderate(c->room, c, m->text, m->t, m->data, &err) != APP_OK) msg_error(c, "Cannot %s", err);
}

/* A member turns on again what a moderator muted: {"what": "mic"}. */
static void gc_unmute(struct client *c, const struct msg *m) {
  char what[16];
  int iw = m->data >= 0 && m->t[m->data].type == JSON_OBJECT ? json_find(m->text, m->t, m->data, "what") : -1;
  int label = -1;
  if (iw >= 0 && json_str(m->text, m->t, iw, what, sizeof what) > 0)
    for (int k = 0; k < (int)COUNT(track_labels); k++)
      if (!strcmp(what, track_labels[k])) label = k;
  if (label < 0) {
    msg_error(c, "unmute needs data: {\"what\": \"mic\", \"camera\" or \"screen\"}");
    return;
  }
  if (!(c->held >> label & 1)) return;
  media_unhold(c, label);
  room_info_to(c->room, NULL, NULL);
}

/* What Ground Control answers, by type. */
static const struct {
  const char *type;
  void (*fn)(struct client *c, const struct msg *m);
} gc_handlers[] = {
    {"ping", gc_ping}, {"get-room-info", gc_room_info}, {"profile", gc_profile},
    {"bye", gc_bye},   {"greeting", gc_ignore},         {"pong", gc_ignore}, {"offer", gc_offer},
    {"moderate", gc_moderate}, {"unmute", gc_unmute},
};

/* A message for another member or the whole room, relayed with its real
 * sender whatever the client wrote. */
static void msg_relay(struct client *c, const struct msg *m) {
  /* What only Ground Control says is never relayed in a member's name, lest a
   * client that checks no sender (the original Camus client) believe it. */
  static const char *const server_only[] = {"greeting", "room-info", "ping", "pong", "error", "moderation"};
  for (size_t k = 0; k < COUNT(server_only); k++)
    if (!strcmp(m->type_s, server_only[k])) {
      msg_error(c, "Only Ground Control sends %s messages", m->type_s);
      return;
    }
  const char *why = !strcmp(m->type_s, "text") ? chat_error(m->text, m->t, m->data) : NULL;
  if (why) {
    msg_error(c, "%s", why);
    return;
  }
  struct buf b = {0};
  buf_adds(&b, "{\"sender\":\"");
  buf_add(&b, c->rtc->id, 32);
  buf_adds(&b, "\",\"receiver\":");
  struct str rraw = json_raw(m->text, m->t, m->receiver), traw = json_raw(m->text, m->t, m->type);
  buf_add(&b, rraw.p, rraw.n);
  buf_adds(&b, ",\"type\":");
  buf_add(&b, traw.p, traw.n);
  buf_adds(&b, ",\"data\":");
  buf_add(&b, m->data_raw.p, m->data_raw.n);
  buf_adds(&b, "}");
  if (b.err) {
    buf_free(&b);
    msg_error(c, "Out of memory");
    return;
  }
  struct room *rm = c->room;
  bool all = !strcmp(m->receiver_s, "room"), found = false;
  size_t receivers = 1;
  for (struct client *q = rm->members; all && q; q = q->next_member) receivers++;
  if (!msg_bytes_ok(c, b.len * receivers)) {
    buf_free(&b);
    msg_error(c, "Too much data: slow down (%d bytes a second)", CAMUS_MSG_BYTES);
    return;
  }
  for (struct client *q = rm->members; q; q = q->next_member) {
    if (all || (strlen(m->receiver_s) == 32 && !memcmp(q->rtc->id, m->receiver_s, 32))) {
      if (q->msg_channel) rtc_send(q->rtc, q->msg_channel, PPID_STRING, b.p, b.len);
      found = true;
    }
  }
  buf_free(&b);
  if (!found) msg_error(c, "Unknown receiver: %s", m->receiver_s);
}

/* One text message from a client: to Ground Control's handlers, or relayed. */
static void msg_input(struct client *c, const char *text, size_t n) {
  struct json_tok t[CAMUS_MSG_TOKENS];
  struct msg m = {.text = text, .t = t};
  if (!c->room) return;
  int nt = json_parse(text, n, t, (int)COUNT(t));
  if (nt < 0 || t[0].type != JSON_OBJECT) {
    msg_error(c, "Invalid message: expected a JSON object");
    return;
  }
  m.type = json_find(text, t, 0, "type");
  m.receiver = json_find(text, t, 0, "receiver");
  m.data = json_find(text, t, 0, "data");
  if (m.type < 0 || json_str(text, t, m.type, m.type_s, sizeof m.type_s) <= 0) {
    msg_error(c, "Invalid message: no type");
    return;
  }
  if (m.receiver < 0 || json_str(text, t, m.receiver, m.receiver_s, sizeof m.receiver_s) <= 0) {
    msg_error(c, "Invalid message: no receiver");
    return;
  }
  m.data_raw = m.data >= 0 ? json_raw(text, t, m.data) : (struct str){"null", 4};
  for (char *p = m.type_s; *p; p++)
    if ((unsigned char)*p < 0x20) *p = '?';
  if (strcmp(m.receiver_s, GROUND_CONTROL) != 0) {
    msg_relay(c, &m);
    return;
  }
  for (size_t k = 0; k < COUNT(gc_handlers); k++)
    if (!strcmp(m.type_s, gc_handlers[k].type)) {
      gc_handlers[k].fn(c, &m);
      return;
    }
  msg_error(c, "Unknown message type: %s", m.type_s);
}

/* A channel opened (on_open): the first one that is not "echo" carries the
 * protocol, and its closing ends the session. */
static void client_open(void *ctx, struct rtc *r, struct channel *ch) {
  (void)ctx;
  struct client *c = r->user;
  if (!ch || ch->echo || c->msg_channel) return;
  c->msg_channel = ch;
  ch->ends_session = true;
  c->last_msg = c->srv->loop.now;
  struct client *old = c->resuming && c->room ? room_member_by_id(c->room, r->id, c) : NULL;
  msg_send_text(c, "greeting", "This is Ground Control to Major Tom: you have joined the room.");
  if (old)
    room_member_replace(old, c);
  else
    room_member_add(c);
  if (c->room && c->room->sfu && (c->media || (c->media = media_new(c)))) media_renegotiate(c, true);
}

/* A message on any channel (on_message): the rate limit first, then echo or the protocol. */
static void client_message(void *ctx, struct rtc *r, struct channel *ch, const uint8_t *data, size_t n, bool binary) {
  (void)ctx;
  struct client *c = r->user;
  uint64_t now = c->srv->loop.now;
  if (!msg_rate_ok(c, now)) {
    if (!c->rate_warned && !ch->echo) msg_error(c, "Too many messages: slow down");
    c->rate_warned = true;
    return;
  }
  c->rate_warned = false;
  if (ch->echo) {
    if (msg_bytes_ok(c, n)) rtc_send(r, ch, binary ? PPID_BINARY : PPID_STRING, data, n);
    return;
  }
  if (ch != c->msg_channel) return;
  c->last_msg = now;
  c->pinged = false;
  if (binary) {
    msg_error(c, "Binary messages are not part of the protocol");
    return;
  }
  msg_input(c, (const char *)data, n);
}

/* =============================================================== HTTP ROUTES ================================================================ */

/* The HTTP API and the pages: requests in, JSON or files out.  HTTP statuses
 * exist here only: the layers below say what went wrong with enum app_err. */

/* The server a connection belongs to (the HTTP server's ctx). */
static struct camus *server_of(const struct conn *c) { return c->srv->ctx; }

/* An error answer that refuses the request for a reason the operator sees counted. */
static void http_refuse(struct conn *c, const struct http_req *r, int status, enum refusal why, const char *msg) {
  server_of(c)->refusals[why]++;
  http_error(c, r, status, msg);
}

/* The HTTP status for what went wrong in the layers below. */
static int app_status(enum app_err e) {
  switch (e) {
  case APP_OK: return 200;
  case APP_INVALID: return 400;
  case APP_DENIED: return 403;
  case APP_CONFLICT: return 409;
  case APP_LIMITED: return 429;
  case APP_FULL: return 503;
  case APP_DISK: return 503;
  case APP_NOMEM: return 503;
  }
  return 500;
}

/* ------------------------------------------------------------------ web assets */

/* The web client, packed by the Makefile from web/ (see `make camus_web.h`). */
struct web_file {
  const char *name;
  const unsigned char *data;
  unsigned len;
  const char *etag;
};
#include "camus_web.h"

static const char *content_type(const char *name) {
  static const char *const map[][2] = {
      {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".json", "application/json"}, {".txt", "text/plain; charset=utf-8"},
      {".webmanifest", "application/manifest+json"}, {".woff2", "font/woff2"}};
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < COUNT(map); i++)
    if (strcmp(dot, map[i][0]) == 0) return map[i][1];
  return "application/octet-stream";
}

/* Only plain file names: letters, digits, '-', '_', '.', not starting with '.'. */
static bool web_name_ok(const char *name) {
  if (!*name || *name == '.') return false;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return false;
  return true;
}

static void web_reply(struct conn *c, const struct http_req *r, const char *name, int status, const void *data,
                      size_t n, const char *etag) {
  char extra[160];
  struct str inm = http_header(r, "if-none-match");
  if (status == 200 && inm.n && (str_eq(inm, etag) || str_eq(inm, "*"))) status = 304;
  snprintf(extra, sizeof extra, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
  http_send(c, r, status, content_type(name), data, n, extra);
}

static void web_serve(struct conn *c, const struct http_req *r, const char *name, int status) {
  const char *dir = server_of(c)->cfg.web_dir;
  if (!web_name_ok(name)) name = "404.html", status = 404;
  if (!dir) {
    for (size_t i = 0; i < COUNT(web_files); i++)
      if (strcmp(web_files[i].name, name) == 0) {
        web_reply(c, r, name, status, web_files[i].data, web_files[i].len, web_files[i].etag);
        return;
      }
    if (strcmp(name, "404.html") != 0) {
      web_serve(c, r, "404.html", 404);
      return;
    }
    http_send(c, r, 404, "text/plain; charset=utf-8", "not found\n", 10, NULL);
    return;
  }
  char path[PATH_MAX], etag[64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* no symbolic link out of the directory */
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CAMUS_WEB_FILE_MAX) {
    if (fd >= 0) close(fd);
    if (strcmp(name, "404.html") != 0) {
      web_serve(c, r, "404.html", 404);
      return;
    }
    http_send(c, r, 404, "text/plain; charset=utf-8", "not found\n", 10, NULL);
    return;
  }
  char *data = malloc((size_t)st.st_size + 1);
  ssize_t got = data ? read(fd, data, (size_t)st.st_size) : -1;
  close(fd);
  if (got != st.st_size) {
    free(data);
    http_error(c, r, 500, "cannot read file");
    return;
  }
  snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
  web_reply(c, r, name, status, data, (size_t)got, etag);
  free(data);
}

/* ------------------------------------------------------------------ the API */

/* Splits "/prefix/<id>[/rest]" into id and rest; false if path does not start with prefix. */
static bool path_split(struct str path, const char *prefix, struct str *id, struct str *rest) {
  if (!str_starts(path, prefix)) return false;
  const char *p = path.p + strlen(prefix), *end = path.p + path.n;
  const char *slash = memchr(p, '/', (size_t)(end - p));
  *id = (struct str){p, (size_t)((slash ? slash : end) - p)};
  *rest = slash ? (struct str){slash, (size_t)(end - slash)} : (struct str){"", 0};
  return id->n > 0;
}

static void json_room(struct buf *b, const struct camus *s, const struct room *rm, bool detail) {
  buf_adds(b, "{\"id\":");
  json_write_str(b, rm->id, strlen(rm->id));
  buf_adds(b, ",\"name\":");
  json_write_str(b, rm->name, strlen(rm->name));
  buf_addf(b, ",\"clients\":%u,\"guest_limit\":", rm->n_clients);
  if (rm->guest_limit)
    buf_addf(b, "%u", rm->guest_limit);
  else
    buf_adds(b, "null");
  buf_addf(b, ",\"password\":%s,\"media\":\"%s\"", rm->has_password ? "true" : "false", rm->sfu ? "sfu" : "p2p");
  if (detail)
    buf_addf(b, ",\"public\":%s}", rm->public ? "true" : "false");
  else
    buf_addf(b, ",\"active_ago\":%llu}",
             rm->n_clients ? 0ull : (unsigned long long)((s->loop.now - rm->last_active) / 60000));
}

static void send_json(struct conn *c, const struct http_req *r, int status, struct buf *b, const char *extra) {
  if (b->err)
    http_error(c, r, 500, "out of memory");
  else
    http_send(c, r, status, "application/json", b->p, b->len, extra);
  buf_free(b);
}

static int cmp_rooms(const void *a, const void *b) {
  const struct room *x = *(struct room *const *)a, *y = *(struct room *const *)b;
  bool xa = x->n_clients > 0, ya = y->n_clients > 0;
  if (xa != ya) return xa ? -1 : 1;
  return x->last_active > y->last_active ? -1 : x->last_active < y->last_active ? 1 : strcmp(x->id, y->id);
}

static void api_list_rooms(struct conn *c, const struct http_req *r) {
  struct camus *s = server_of(c);
  struct room **sorted = malloc((s->n_rooms + 1) * sizeof *sorted);
  if (!sorted) {
    http_error(c, r, 500, "out of memory");
    return;
  }
  unsigned n = 0;
  for (unsigned i = 0; i < s->n_rooms; i++)
    if (s->rooms[i]->public) sorted[n++] = s->rooms[i];
  qsort(sorted, n, sizeof *sorted, cmp_rooms);
  struct buf b = {0};
  buf_adds(&b, "[");
  for (unsigned i = 0; i < n; i++) {
    if (i) buf_adds(&b, ",");
    json_room(&b, s, sorted[i], false);
  }
  buf_adds(&b, "]");
  free(sorted);
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

/* The parsed JSON body of a request: tokens in a fixed array. */
struct json_body {
  struct json_tok t[128];
  int n;
};

static bool body_is_form(const struct http_req *r) {
  return str_starts(http_header(r, "content-type"), "application/x-www-form-urlencoded");
}

/* Parses r->body as a JSON object; on failure answers 400 and returns false. */
static bool body_json(struct conn *c, const struct http_req *r, struct json_body *jb) {
  jb->n = json_parse(r->body.p, r->body.n, jb->t, (int)COUNT(jb->t));
  if (jb->n > 0 && jb->t[0].type == JSON_OBJECT) return true;
  http_error(c, r, 400, jb->n == JSON_ERR_DEPTH ? "JSON nested too deeply"
                        : jb->n < 0          ? "body is not valid JSON"
                                             : "body must be a JSON object");
  return false;
}

/* A string field of a JSON or form body into out.  Returns its length, -1 if
 * absent (or JSON null), -2 if present but not a string or too long. */
static int body_field(const struct http_req *r, const struct json_body *jb, const char *key, char *out, size_t cap) {
  if (body_is_form(r)) return form_get(r->body, key, out, cap);
  int i = json_find(r->body.p, jb->t, 0, key);
  if (i < 0 || jb->t[i].type == JSON_NULL) return -1;
  int n = json_str(r->body.p, jb->t, i, out, cap);
  if (n < 0 || memchr(out, 0, (size_t)n)) return -2;
  return n;
}

static void api_create_room(struct conn *c, const struct http_req *r) {
  struct camus *s = server_of(c);
  struct json_body jb;
  char name[CAMUS_ROOM_NAME_MAX * 4 + 1], pw[CAMUS_PASSWORD_MAX + 1], tmp[16];
  bool form = body_is_form(r), public = true;
  long long limit = 0;
  if (!form && !body_json(c, r, &jb)) return;
  int nlen = body_field(r, &jb, "name", name, sizeof name);
  if (nlen == -1) {
    http_error(c, r, 400, "a room needs a name");
    return;
  }
  if (nlen < 0) {
    http_error(c, r, 400, "room name must be a string of 64 bytes at most");
    return;
  }
  int plen = body_field(r, &jb, "password", pw, sizeof pw);
  if (plen == -2) {
    http_error(c, r, 400, "password must be a string of 256 bytes at most");
    return;
  }
  if (plen < 0) plen = 0;
  int mlen = body_field(r, &jb, "media", tmp, sizeof tmp);
  bool sfu = mlen == -1 || (mlen >= 0 && !strcmp(tmp, "sfu"));
  if (mlen != -1 && !sfu && (mlen < 0 || strcmp(tmp, "p2p") != 0)) {
    http_error(c, r, 400, "media must be \"sfu\" or \"p2p\"");
    return;
  }
  if (form) {
    /* An unchecked box is simply absent from a form. */
    int n = form_get(r->body, "public", tmp, sizeof tmp);
    public = n >= 0 && (strcmp(tmp, "on") == 0 || strcmp(tmp, "true") == 0 || strcmp(tmp, "1") == 0);
    n = form_get(r->body, "guest_limit", tmp, sizeof tmp);
    if (n > 0) {
      char *end;
      errno = 0;
      limit = strtoll(tmp, &end, 10);
      if (*end || errno || limit < 1 || limit > CAMUS_GUEST_LIMIT_MAX) {
        http_error(c, r, 400, GUEST_LIMIT_RULE);
        return;
      }
    } else if (n == -2) {
      http_error(c, r, 400, GUEST_LIMIT_RULE);
      return;
    }
  } else {
    int i = json_find(r->body.p, jb.t, 0, "public");
    if (i >= 0 && jb.t[i].type != JSON_TRUE && jb.t[i].type != JSON_FALSE) {
      http_error(c, r, 400, "public must be true or false");
      return;
    }
    if (i >= 0) public = jb.t[i].type == JSON_TRUE;
    i = json_find(r->body.p, jb.t, 0, "guest_limit");
    if (i >= 0 && jb.t[i].type != JSON_NULL &&
        (!json_int(r->body.p, jb.t, i, &limit) || limit < 1 || limit > CAMUS_GUEST_LIMIT_MAX)) {
      http_error(c, r, 400, GUEST_LIMIT_RULE);
      return;
    }
  }
  struct rate_slot *rs = rate_slot(s, c->host);
  if (rs->rooms >= CAMUS_ROOMS_PER_HOST) {
    http_refuse(c, r, 429, REFUSED_RATE, "too many rooms created from your address: try again in a minute");
    return;
  }
  enum app_err e;
  const char *err;
  char owner_key[33];
  struct room *rm = room_create(s, c->host, name, (size_t)nlen, pw, (size_t)plen, public, sfu, (unsigned)limit, owner_key, &e, &err);
  if (!rm) {
    http_error(c, r, app_status(e), err);
    return;
  }
  rs->rooms++;
  struct buf b = {0};
  buf_adds(&b, "{\"id\":");
  json_write_str(&b, rm->id, strlen(rm->id));
  buf_addf(&b, ",\"url\":\"/rtc/%s\",\"owner_key\":\"%s\"}", rm->id, owner_key);
  char loc[CAMUS_ROOM_NAME_MAX + 32];
  snprintf(loc, sizeof loc, "Location: /rtc/%s\r\n", rm->id);
  send_json(c, r, 201, &b, loc);
}

/* What the web client needs to know: this server's STUN port and the
 * operator's extra ICE servers (--stun, --turn). */
static void api_config(struct conn *c, const struct http_req *r) {
  struct camus *s = server_of(c);
  struct buf b = {0};
  buf_addf(&b, "{\"stun_port\":%d,\"ice_servers\":[", s->udp.port);
  for (int i = 0; i < s->cfg.n_ice_urls; i++) {
    if (i) buf_adds(&b, ",");
    json_write_str(&b, s->cfg.ice_urls[i], strlen(s->cfg.ice_urls[i]));
  }
  buf_addf(&b, "],\"max_message_size\":%d,\"version\":\"%s\"}", CAMUS_MAX_MESSAGE, CAMUS_VERSION);
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

/* POST /api/rooms/<id>/moderate ({"action": ...}) and DELETE /api/rooms/<id>
 * (its end), with the owner key: "Authorization: Bearer <key>" (or the
 * body's "key", for a POST). */
static void api_moderate(struct conn *c, const struct http_req *r, struct room *rm) {
  static const char end[] = "{\"action\":\"end\"}";
  struct json_body jb;
  struct str auth = http_header(r, "authorization"), key = {NULL, 0};
  bool del = str_eq(r->method, "DELETE");
  if (auth.n > 7 && !strncasecmp(auth.p, "Bearer ", 7)) key = (struct str){auth.p + 7, auth.n - 7};
  if (del) {
    jb.n = json_parse(end, sizeof end - 1, jb.t, (int)COUNT(jb.t));
  } else {
    if (!body_json(c, r, &jb)) return;
    int ik = json_find(r->body.p, jb.t, 0, "key");
    if (!key.p && ik >= 0 && jb.t[ik].type == JSON_STRING) key = (struct str){r->body.p + jb.t[ik].start, jb.t[ik].len};
  }
  if (!owner_key_ok(rm, key)) {
    http_refuse(c, r, 403, REFUSED_NOT_OWNER, "the room's owner key is needed");
    return;
  }
  const char *err;
  enum app_err e = room_moderate(rm, NULL, del ? end : r->body.p, jb.t, 0, &err);
  if (e != APP_OK) {
    http_error(c, r, app_status(e), err);
    return;
  }
  if (del) {
    http_send(c, r, 204, NULL, NULL, 0, NULL);
    return;
  }
  struct buf b = {0};
  json_room(&b, server_of(c), rm, true);
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

static void api_get_room(struct conn *c, const struct http_req *r, struct room *rm) {
  struct buf b = {0};
  json_room(&b, server_of(c), rm, true);
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

static void rtc_join(struct conn *c, const struct http_req *r, struct room *rm) {
  struct camus *s = server_of(c);
  struct json_body jb;
  char pw[CAMUS_PASSWORD_MAX + 1] = "";
  bool form = body_is_form(r);
  if (!form && r->body.n && !body_json(c, r, &jb)) return;
  struct rate_slot *rs = rate_slot(s, c->host);
  if (rs->fails >= CAMUS_JOIN_FAILS) {
    http_refuse(c, r, 429, REFUSED_RATE, "too many attempts");
    return;
  }
  /* Guesses are limited per room too, so that many addresses together cannot try more. */
  if (s->loop.now - rm->fail_window >= CAMUS_RATE_WINDOW_MS) rm->fail_window = s->loop.now, rm->fails = 0;
  if (rm->has_password && rm->fails >= CAMUS_ROOM_JOIN_FAILS) {
    http_refuse(c, r, 429, REFUSED_RATE, "too many wrong passwords for this room: try again in a minute");
    return;
  }
  int n = r->body.n ? body_field(r, &jb, "password", pw, sizeof pw) : -1;
  if (n == -2) {
    http_error(c, r, 400, "password must be a string");
    return;
  }
  if (rm->has_password && !hash_allowed(s)) {
    http_refuse(c, r, 429, REFUSED_BUSY, "the server is busy: try again in a second");
    return;
  }
  if (!room_password_ok(rm, pw, n < 0 ? 0 : (size_t)n)) {
    rs->fails++;
    rm->fails++;
    LOG_I(s, "room %s: wrong password from %s", rm->id, c->ip);
    http_refuse(c, r, 403, REFUSED_WRONG_PASSWORD, "wrong password");
    return;
  }
  char tok[96], cookie[512];
  token_make(s, rm, tok);
  snprintf(cookie, sizeof cookie,
           "Set-Cookie: camus_%s=%s; Path=/rtc/%s; Max-Age=%d; HttpOnly; SameSite=Strict%s\r\n"
           "Cache-Control: no-store\r\n",
           rm->id, tok, rm->id, CAMUS_TOKEN_TTL, s->https ? "; Secure" : "");
  struct buf b = {0};
  buf_addf(&b, "{\"token\":\"%s\"}", tok);
  send_json(c, r, 200, &b, cookie);
}

/* The password proof of a request: the body's "token", else the room's cookie. */
static bool request_admitted(struct camus *s, const struct http_req *r, const struct json_body *jb,
                             struct room *rm) {
  if (!rm->has_password) return true;
  int i = json_find(r->body.p, jb->t, 0, "token");
  if (i >= 0 && jb->t[i].type == JSON_STRING &&
      token_ok(s, rm, (struct str){r->body.p + jb->t[i].start, jb->t[i].len}))
    return true;
  struct str ck = http_header(r, "cookie");
  char name[CAMUS_ROOM_NAME_MAX + 8];
  int nl = snprintf(name, sizeof name, "camus_%s=", rm->id);
  for (size_t k = 0; k + (size_t)nl <= ck.n; k++) {
    if ((k == 0 || ck.p[k - 1] == ' ' || ck.p[k - 1] == ';') && memcmp(ck.p + k, name, (size_t)nl) == 0) {
      const char *v = ck.p + k + nl, *e = memchr(v, ';', ck.n - k - (size_t)nl);
      if (!e) e = ck.p + ck.n;
      if (token_ok(s, rm, (struct str){v, (size_t)(e - v)})) return true;
    }
  }
  return false;
}

static void rtc_offer(struct conn *c, const struct http_req *r, struct room *rm) {
  struct camus *s = server_of(c);
  struct json_body jb;
  if (!body_json(c, r, &jb)) return;
  /* An owner (the room's owner key in "owner") comes in whatever keeps others out. */
  int io = json_find(r->body.p, jb.t, 0, "owner");
  bool owner = io >= 0 && jb.t[io].type == JSON_STRING && owner_key_ok(rm, (struct str){r->body.p + jb.t[io].start, jb.t[io].len});
  if (!owner && !request_admitted(s, r, &jb, rm)) {
    http_refuse(c, r, 403, REFUSED_PASSWORD, "password required");
    return;
  }
  if (!owner && room_banned(rm, c->host)) {
    http_refuse(c, r, 403, REFUSED_REMOVED, "you were removed from this room");
    return;
  }
  /* The member's name, so that the others never see it join as someone else (optional: "profile" sets it too). */
  char name[CAMUS_USERNAME_MAX + 1];
  int iu = json_find(r->body.p, jb.t, 0, "username"), ul = iu >= 0 ? json_str(r->body.p, jb.t, iu, name, sizeof name) : 0;
  if (iu >= 0 && !username_ok(name, ul)) {
    http_error(c, r, 400, USERNAME_RULE);
    return;
  }
  int ir = json_find(r->body.p, jb.t, 0, "resume");
  struct client *old = ir >= 0 && jb.t[ir].type == JSON_STRING
                         ? resume_member(s, rm, (struct str){r->body.p + jb.t[ir].start, jb.t[ir].len}) : NULL;
  if (rm->locked && !old && !owner) {
    http_refuse(c, r, 403, REFUSED_LOCKED, "the room is locked");
    return;
  }
  if (rm->n_clients >= room_capacity(rm) && !old && !owner) { /* a member coming back takes its own seat */
    http_refuse(c, r, 403, REFUSED_FULL, "room is full");
    return;
  }
  int it = json_find(r->body.p, jb.t, 0, "type"), is = json_find(r->body.p, jb.t, 0, "sdp");
  if (it < 0 || is < 0 || jb.t[is].type != JSON_STRING || jb.t[it].type != JSON_STRING ||
      !str_eq((struct str){r->body.p + jb.t[it].start, jb.t[it].len}, "offer")) {
    http_error(c, r, 400, "expected {\"sdp\": ..., \"type\": \"offer\"}");
    return;
  }
  char *sdp = malloc(CAMUS_SDP_MAX + 1);
  if (!sdp) {
    http_error(c, r, 500, "out of memory");
    return;
  }
  int n = json_str(r->body.p, jb.t, is, sdp, CAMUS_SDP_MAX + 1);
  struct buf answer = {0};
  const char *err = "SDP offer too large";
  char id[33], token[33];
  if (old) memcpy(id, old->rtc->id, sizeof id);
  enum app_err e = n < 0 ? APP_INVALID : client_offer(s, rm, c->host, sdp, (size_t)n, old != NULL,
                                                       owner ? ROLE_OWNER : ROLE_GUEST, iu >= 0 ? name : NULL, id,
                                                       &answer, &err);
  if (e != APP_OK) {
    free(sdp);
    buf_free(&answer);
    http_error(c, r, app_status(e), err);
    return;
  }
  free(sdp);
  struct buf b = {0};
  buf_adds(&b, "{\"type\":\"answer\",\"sdp\":");
  json_write_str(&b, answer.p, answer.len);
  resume_token(s, rm, id, token);
  buf_addf(&b, ",\"resume\":\"%s\"", token);
  if (s->turn_on) { /* the built-in TURN relay, for this member only: the page names the host it came from */
    char user[64], pass[32];
    turn_credentials(&s->turn, id, user, pass);
    buf_addf(&b, ",\"turn\":{\"username\":\"%s\",\"credential\":\"%s\",\"udp\":%d,\"tcp\":%d,\"tls\":%s}", user, pass,
             s->udp.port, s->http.port, s->https ? "true" : "false");
  }
  buf_adds(&b, "}");
  buf_free(&answer);
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

/* The room a request names, or NULL once the request is answered: 404 (the
 * room page, or a JSON error), or 429 for an address that asked for too
 * many rooms that do not exist, so that nobody can list private rooms by
 * guessing their names (every lookup of it is refused for that minute,
 * lest the difference tell). */
static struct room *route_room(struct conn *c, const struct http_req *r, struct str id, bool page) {
  struct camus *s = server_of(c);
  struct rate_slot *rs = rate_slot(s, c->host);
  if (rs->misses >= CAMUS_ROOM_MISSES) {
    http_refuse(c, r, 429, REFUSED_RATE, "too many unknown rooms asked for: try again in a minute");
    return NULL;
  }
  struct room *rm = room_find(s, id);
  if (rm && !rm->ending) return rm;
  rs->misses += !rm;
  if (page)
    web_serve(c, r, "404.html", 404);
  else
    http_error(c, r, 404, "no such room");
  return NULL;
}

static bool method_known(struct str m) {
  static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};
  for (size_t i = 0; i < COUNT(known); i++)
    if (str_eq(m, known[i])) return true;
  return false;
}

/* Refuses a method the route does not take; true if it was refused. */
static bool refuse_method(struct conn *c, const struct http_req *r, const char *allow) {
  bool get = str_eq(r->method, "GET") || str_eq(r->method, "HEAD");
  bool post = str_eq(r->method, "POST"), del = str_eq(r->method, "DELETE");
  if ((get && strstr(allow, "GET")) || (post && strstr(allow, "POST")) || (del && strstr(allow, "DELETE"))) return false;
  char extra[64];
  snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
  struct buf b = {0};
  buf_adds(&b, "{\"error\":\"method not allowed\"}");
  send_json(c, r, 405, &b, extra);
  return true;
}

/* --allowed-hosts: the Host a request names must be one of them (with any
 * port, unless the entry gives one), so that a hostile site whose name
 * points at this server (DNS rebinding) is not served. */
static bool host_allowed(const struct camus *s, const struct http_req *r) {
  if (!s->cfg.n_allowed_hosts) return true;
  struct str host = http_header(r, "host");
  if (!host.n) return false;
  const char *colon = host.p[0] == '[' ? memchr(host.p, ']', host.n) : host.p;
  colon = colon ? memchr(colon, ':', host.n - (size_t)(colon - host.p)) : NULL;
  struct str name = {host.p, colon ? (size_t)(colon - host.p) : host.n};
  for (int i = 0; i < s->cfg.n_allowed_hosts; i++) {
    const char *a = s->cfg.allowed_hosts[i];
    if (str_ieq(host, a) || str_ieq(name, a)) return true;
  }
  return false;
}

/* Whether a state-changing request comes from Camus's own pages.  Browsers
 * name the page's origin in Origin: it must be this server's scheme, host
 * and port.  Without Origin (not a browser), the body must be JSON, which
 * no cross-site form or simple request can send. */
static bool same_origin(const struct camus *s, const struct http_req *r) {
  struct str origin = http_header(r, "origin"), host = http_header(r, "host");
  if (!origin.p) return str_istarts(http_header(r, "content-type"), "application/json");
  const char *scheme = s->https ? "https://" : "http://";
  size_t sl = strlen(scheme);
  if (!host.n || origin.n != sl + host.n || !str_istarts(origin, scheme)) return false;
  for (size_t i = 0; i < host.n; i++)
    if (tolower((unsigned char)origin.p[sl + i]) != tolower((unsigned char)host.p[i])) return false;
  return true;
}

/* Every request (the HTTP server's on_request). */
/* ------------------------------------------------------ the operator's view */

/* GET /healthz: for load balancers and supervisors, to anyone. */
static void api_healthz(struct conn *c, const struct http_req *r) {
  struct camus *s = server_of(c);
  struct buf b = {0};
  buf_addf(&b, "{\"status\":\"ok\",\"uptime_seconds\":%llu}", (unsigned long long)((s->loop.now - s->started) / 1000));
  send_json(c, r, 200, &b, "Cache-Control: no-store\r\n");
}

static void metric(struct buf *b, const char *name, const char *type, const char *help) {
  buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_value(struct buf *b, const char *name, const char *labels, uint64_t v) {
  buf_addf(b, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

/* Pages the process holds in memory, in bytes (Linux's /proc; 0 elsewhere). */
static uint64_t resident_bytes(void) {
  unsigned long long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  if (f) fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  return resident * (uint64_t)(page > 0 ? page : 4096);
}

/* Open descriptors (Linux's /proc; else those the loop watches). */
static uint64_t open_descriptors(const struct camus *s) {
  uint64_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return s->loop.n_io;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n ? n - 1 : 0; /* not the one reading it */
}

/* Whether the request may see /metrics: from an address --metrics-from
 * allows (loopback by default), or with the bearer token --metrics-token. */
static bool metrics_allowed(const struct camus *s, const struct conn *c, const struct http_req *r) {
  if (s->cfg.metrics_token && *s->cfg.metrics_token) {
    struct str a = http_header(r, "authorization");
    size_t tl = strlen(s->cfg.metrics_token);
    if (a.n == 7 + tl && !memcmp(a.p, "Bearer ", 7) && secret_eq(a.p + 7, s->cfg.metrics_token, tl)) return true;
  }
  uint8_t ip[16];
  int family = addr_bytes(&c->addr, ip);
  for (int i = 0; i < s->n_metrics_from; i++)
    if (cidr_has(&s->metrics_from[i], family, ip)) return true;
  return false;
}

/* GET /metrics, in Prometheus's text format. */
static void api_metrics(struct conn *c, const struct http_req *r) {
  struct camus *s = server_of(c);
  if (c->srv != &s->metrics_http && !metrics_allowed(s, c, r)) { /* --metrics-addr's listener is the operator's own */
    http_refuse(c, r, 403, REFUSED_METRICS, "the metrics are the operator's: ask from an address --metrics-from allows, or with --metrics-token");
    return;
  }
  static const char *const states[] = {"ice", "dtls", "sctp", "open", "closed"};
  uint64_t members = 0, by_state[5] = {0}, relayed = s->turn.relayed;
  struct rtc_media_counts m = s->rtc.gone;
  for (unsigned i = 0; i < s->n_rooms; i++)
    for (const struct client *q = s->rooms[i]->members; q; q = q->next_member) members++;
  for (uint32_t i = 0; i < sessions.cap; i++) {
    const struct rtc *p = sessions.table[i];
    if (!p || p->host != &s->rtc) continue;
    by_state[p->state]++;
    rtc_media_add(&m, &p->media);
  }
  for (unsigned i = 0; i < s->turn.n; i++) relayed += s->turn.allocs[i]->bytes_in + s->turn.allocs[i]->bytes_out;
  struct buf b = {0};
  char label[48];
  metric(&b, "camus_rooms", "gauge", "Rooms on the server.");
  metric_value(&b, "camus_rooms", "", s->n_rooms);
  metric(&b, "camus_members", "gauge", "Members in rooms, their channel to Ground Control open.");
  metric_value(&b, "camus_members", "", members);
  metric(&b, "camus_sessions", "gauge", "WebRTC sessions by state.");
  for (int i = 0; i < 4; i++) {
    snprintf(label, sizeof label, "{state=\"%s\"}", states[i]);
    metric_value(&b, "camus_sessions", label, by_state[i]);
  }
  metric(&b, "camus_sessions_connected_total", "counter", "Sessions that connected (ICE, DTLS and SCTP done).");
  metric_value(&b, "camus_sessions_connected_total", "", s->rtc.opened);
  metric(&b, "camus_sessions_ended_total", "counter", "Sessions freed, connected or not.");
  metric_value(&b, "camus_sessions_ended_total", "", s->rtc.ended);
  metric(&b, "camus_udp_packets_total", "counter", "Datagrams on the UDP port.");
  metric_value(&b, "camus_udp_packets_total", "{direction=\"in\"}", s->udp.rx_packets);
  metric_value(&b, "camus_udp_packets_total", "{direction=\"out\"}", s->udp.tx_packets);
  metric(&b, "camus_udp_bytes_total", "counter", "Bytes on the UDP port.");
  metric_value(&b, "camus_udp_bytes_total", "{direction=\"in\"}", s->udp.rx_bytes);
  metric_value(&b, "camus_udp_bytes_total", "{direction=\"out\"}", s->udp.tx_bytes);
  metric(&b, "camus_media_packets_total", "counter", "SRTP and SRTCP packets of sessions, in and out.");
  metric_value(&b, "camus_media_packets_total", "{direction=\"in\"}", m.in);
  metric_value(&b, "camus_media_packets_total", "{direction=\"out\"}", m.out);
  metric(&b, "camus_media_bytes_total", "counter", "Bytes of media of sessions, in and out.");
  metric_value(&b, "camus_media_bytes_total", "{direction=\"in\"}", m.bytes_in);
  metric_value(&b, "camus_media_bytes_total", "{direction=\"out\"}", m.bytes_out);
  metric(&b, "camus_media_dropped_total", "counter", "Media packets dropped, by reason.");
  metric_value(&b, "camus_media_dropped_total", "{reason=\"authentication\"}", m.auth);
  metric_value(&b, "camus_media_dropped_total", "{reason=\"replayed\"}", m.replayed);
  metric_value(&b, "camus_media_dropped_total", "{reason=\"malformed\"}", m.malformed);
  metric(&b, "camus_refusals_total", "counter", "Requests refused, by why.");
  for (int i = 0; i < REFUSED__N; i++) {
    snprintf(label, sizeof label, "{reason=\"%s\"}", refusal_names[i]);
    metric_value(&b, "camus_refusals_total", label, s->refusals[i]);
  }
  metric(&b, "camus_turn_refusals_total", "counter", "TURN requests refused, by error code.");
  for (int i = 0; i < TURN_REFUSAL_CODES; i++) {
    snprintf(label, sizeof label, turn_refusal_codes[i] ? "{code=\"%d\"}" : "{code=\"other\"}", turn_refusal_codes[i]);
    metric_value(&b, "camus_turn_refusals_total", label, s->turn.refused[i]);
  }
  metric(&b, "camus_moderations_total", "counter", "What owners and co-hosts did to rooms and members.");
  metric_value(&b, "camus_moderations_total", "", s->moderations);
  metric(&b, "camus_http_connections_total", "counter", "HTTP(S) connections, taken or refused at the limits.");
  metric_value(&b, "camus_http_connections_total", "{outcome=\"accepted\"}", s->http.accepted);
  metric_value(&b, "camus_http_connections_total", "{outcome=\"refused\"}", s->http.refused);
  metric(&b, "camus_http_responses_total", "counter", "HTTP responses by class (refusals are 4xx and 5xx).");
  for (int i = 1; i <= 5; i++) {
    snprintf(label, sizeof label, "{code=\"%dxx\"}", i);
    metric_value(&b, "camus_http_responses_total", label, s->http.answered[i]);
  }
  metric(&b, "camus_turn_allocations", "gauge", "TURN allocations now.");
  metric_value(&b, "camus_turn_allocations", "", s->turn.n);
  metric(&b, "camus_turn_allocations_total", "counter", "TURN allocations made.");
  metric_value(&b, "camus_turn_allocations_total", "", s->turn.made);
  metric(&b, "camus_turn_relayed_bytes_total", "counter", "Bytes the TURN relay passed, both ways.");
  metric_value(&b, "camus_turn_relayed_bytes_total", "", relayed);
  metric(&b, "camus_resident_memory_bytes", "gauge", "Resident memory.");
  metric_value(&b, "camus_resident_memory_bytes", "", resident_bytes());
  metric(&b, "camus_open_fds", "gauge", "Open descriptors.");
  metric_value(&b, "camus_open_fds", "", open_descriptors(s));
  metric(&b, "camus_uptime_seconds", "gauge", "Seconds since the server started.");
  metric_value(&b, "camus_uptime_seconds", "", (s->loop.now - s->started) / 1000);
  if (b.err) {
    buf_free(&b);
    http_error(c, r, 503, "out of memory");
    return;
  }
  http_send(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, "Cache-Control: no-store\r\n");
  buf_free(&b);
}

static void http_request(void *ctx, struct conn *c, struct http_req *r) {
  struct camus *s = ctx;
  struct str id, rest;
  LOG_D(s, "http#%u: %.*s %.*s", c->id, (int)r->method.n, r->method.p, (int)r->target.n, r->target.p);
  if (!method_known(r->method)) {
    http_error(c, r, 501, "method not implemented");
    return;
  }
  if (!host_allowed(s, r)) {
    LOG_I(s, "http#%u: refused a request for host '%.*s' (--allowed-hosts)", c->id,
          (int)MIN(http_header(r, "host").n, 100), http_header(r, "host").p ? http_header(r, "host").p : "");
    http_error(c, r, 421, "this server does not answer for that host name");
    return;
  }
  if (str_eq(r->method, "POST") && !same_origin(s, r)) {
    LOG_I(s, "http#%u: refused a cross-origin %.*s", c->id, (int)r->path.n, r->path.p);
    http_refuse(c, r, 403, REFUSED_CROSS_ORIGIN, "cross-origin request refused: send JSON (Content-Type: application/json) from this server's pages");
    return;
  }
  if (str_eq(r->path, "/api/rooms")) {
    if (refuse_method(c, r, "GET, HEAD, POST")) return;
    if (str_eq(r->method, "POST"))
      api_create_room(c, r);
    else
      api_list_rooms(c, r);
    return;
  }
  if (str_eq(r->path, "/api/config")) {
    if (refuse_method(c, r, "GET, HEAD")) return;
    api_config(c, r);
    return;
  }
  if (str_eq(r->path, "/healthz") || str_eq(r->path, "/metrics")) {
    if (refuse_method(c, r, "GET, HEAD")) return;
    if (r->path.p[1] == 'h')
      api_healthz(c, r);
    else
      api_metrics(c, r);
    return;
  }
  if (path_split(r->path, "/api/rooms/", &id, &rest) && (rest.n == 0 || str_eq(rest, "/moderate"))) {
    if (refuse_method(c, r, rest.n ? "POST" : "GET, HEAD, DELETE")) return;
    struct room *rm = route_room(c, r, id, false);
    if (rm && (rest.n || str_eq(r->method, "DELETE")))
      api_moderate(c, r, rm);
    else if (rm)
      api_get_room(c, r, rm);
    return;
  }
  if (path_split(r->path, "/rtc/", &id, &rest)) {
    if (rest.n == 0 || str_eq(rest, "/")) {
      if (refuse_method(c, r, "GET, HEAD")) return;
      if (route_room(c, r, id, true)) web_serve(c, r, "room.html", 200);
      return;
    }
    if (str_eq(rest, "/join") || str_eq(rest, "/offer")) {
      if (refuse_method(c, r, "POST")) return;
      struct room *rm = route_room(c, r, id, false);
      if (!rm) return;
      if (str_eq(rest, "/join"))
        rtc_join(c, r, rm);
      else
        rtc_offer(c, r, rm);
      return;
    }
  }
  if (str_starts(r->path, "/api/")) {
    http_error(c, r, 404, "no such endpoint");
    return;
  }
  if (refuse_method(c, r, "GET, HEAD")) return;
  if (str_eq(r->path, "/")) {
    web_serve(c, r, "index.html", 200);
    return;
  }
  char name[64];
  if (r->path.n - 1 < sizeof name) {
    memcpy(name, r->path.p + 1, r->path.n - 1);
    name[r->path.n - 1] = 0;
    web_serve(c, r, name, 200);
    return;
  }
  web_serve(c, r, "404.html", 404);
}

/* Every request on --metrics-addr's listener: /metrics and /healthz, nothing else. */
static void metrics_request(void *ctx, struct conn *c, struct http_req *r) {
  (void)ctx;
  bool m = str_eq(r->path, "/metrics");
  if (!m && !str_eq(r->path, "/healthz")) {
    http_error(c, r, 404, "this listener serves /metrics and /healthz only");
    return;
  }
  if (refuse_method(c, r, "GET, HEAD")) return;
  if (m)
    api_metrics(c, r);
  else
    api_healthz(c, r);
}

/* =============================================================== PUBLIC API ================================================================= */

void camus_config_init(struct camus_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->host = "0.0.0.0";
  cfg->port = CAMUS_PORT;
  cfg->udp_port = -1;
  cfg->log_level = CAMUS_LOG_INFO;
  cfg->room_expiry_sec = CAMUS_ROOM_EXPIRY_SEC;
  cfg->max_bitrate_kbps = CAMUS_MAX_BITRATE;
  cfg->turn_port_min = CAMUS_TURN_PORT_MIN;
  cfg->turn_port_max = CAMUS_TURN_PORT_MAX;
  cfg->max_connections = CAMUS_MAX_CONNECTIONS;
  cfg->request_timeout_sec = CAMUS_REQUEST_TIMEOUT_SEC;
  cfg->idle_timeout_sec = CAMUS_IDLE_TIMEOUT_SEC;
  cfg->msg_rate = CAMUS_MSG_RATE;
}

/* camus_stop() was called (perhaps from a signal handler): the pipe woke the loop. */
static void wake_drain(void *ctx, short revents) {
  (void)revents;
  struct camus *s = ctx;
  char tmp[64];
  while (read(s->wake_fd[0], tmp, sizeof tmp) > 0) {}
}

/* A datagram to a peer: onto the UDP socket's batch, or as a frame onto its
 * TCP (or TLS) connection when to is a TCP path. */
static void server_out(void *ctx, const void *data, size_t n, const struct sockaddr_storage *to) {
  struct camus *s = ctx;
  struct turn_alloc *a;
  if (addr_is_tcp(to))
    conn_frame_send(&s->http, to, data, n);
  else if ((a = turn_relaying(&s->turn, to)))
    turn_from_media(a, data, n);
  else
    udp_send(&s->udp, data, n, to);
}

/* A datagram from a session (the RTC host's send). */
static void server_send(void *ctx, struct rtc *r, const void *data, size_t n, const struct sockaddr_storage *to) {
  (void)r;
  server_out(ctx, data, n, to);
}

/* Media is written in place in the UDP batch; for a TCP path it is framed from there, and the slot used again. */
static uint8_t *server_reserve(void *ctx, struct rtc *r) {
  struct camus *s = ctx;
  (void)r;
  return udp_reserve(&s->udp);
}

static void server_commit(void *ctx, struct rtc *r, size_t n, const struct sockaddr_storage *to) {
  struct camus *s = ctx;
  struct turn_alloc *a;
  (void)r;
  if (addr_is_tcp(to))
    conn_frame_send(&s->http, to, s->udp.out->data[s->udp.out->n], n);
  else if ((a = turn_relaying(&s->turn, to)))
    turn_from_media(a, s->udp.out->data[s->udp.out->n], n);
  else
    udp_commit(&s->udp, n, to);
}

/* What a TURN client sent the media port: up as a datagram from its relayed address. */
static void server_relayed(void *ctx, uint8_t *p, size_t n, const struct sockaddr_storage *from) {
  struct camus *s = ctx;
  udp_input(&s->udp, p, n, from);
}

/* A TCP connection of STUN closed: so did a session whose path it was, or the TURN allocation it held. */
static void server_frames_end(void *ctx, struct conn *c) {
  struct camus *s = ctx;
  rtc_path_gone(&s->rtc, &c->path);
  if (s->turn_on) turn_client_gone(&s->turn, &c->path);
}

/* A frame of an ICE-TCP connection: up as a datagram from its TCP path would go. */
static void server_frame(void *ctx, struct conn *c, uint8_t *p, size_t n) {
  struct camus *s = ctx;
  udp_input(&s->udp, p, n, &c->path);
}

/* Rooms kept in the state directory (unless it is ""): read back now, and
 * their activity written once a minute.  A directory that cannot be used
 * only makes new rooms fail (503); a file that cannot be read fails start,
 * lest a good one be written over. */
static int server_rooms(struct camus *s, char *err, unsigned errlen) {
  const char *dir = s->cfg.state_dir ? s->cfg.state_dir : "camus-state";
  char why[PATH_MAX + 64];
  if (!*dir) return 0;
  s->rooms_dir = dir;
  if (state_dir_check(dir, why, sizeof why) != 0) { /* its file, unread, is never written over */
    LOG_W(s, "rooms: %s: new rooms cannot be made until the server is started again with it fixed", why);
    snprintf(s->rooms_refused, sizeof s->rooms_refused, "%s", why);
    return 0;
  }
  uint64_t t0 = mono_us();
  if (rooms_load(s, err, errlen) != 0) return -1;
  if (s->n_rooms) LOG_I(s, "rooms: %u kept from before, read in %.1f ms", s->n_rooms, (double)(mono_us() - t0) / 1000);
  s->rooms_timer.fn = rooms_tick;
  if (timer_in(&s->loop, &s->rooms_timer, CAMUS_ROOMS_SAVE_MS) != 0 || loop_hook_add(&s->loop, rooms_turn_end, s) != 0)
    return snprintf(err, errlen, "out of memory"), -1;
  return 0;
}

/* The TURN relay's secret: --turn-secret, or the one kept in the state
 * directory (made on first use), so that credentials a member got stay good
 * across a restart; in memory only if the directory cannot be used. */
static void server_turn_secret(struct camus *s) {
  struct turn *t = &s->turn;
  if (s->cfg.turn_secret) {
    t->secret_len = MIN(strlen(s->cfg.turn_secret), sizeof t->secret);
    memcpy(t->secret, s->cfg.turn_secret, t->secret_len);
    return;
  }
  char path[PATH_MAX], text[2 * 32 + 2], err[PATH_MAX + 64];
  const char *dir = s->cfg.state_dir ? s->cfg.state_dir : "camus-state";
  snprintf(path, sizeof path, "%s/turn-secret", dir);
  t->secret_len = 32;
  if (!*dir) { /* in memory only, as asked */
    random_bytes(&s->crypto, t->secret, 32);
    return;
  }
  if (state_dir_check(dir, err, sizeof err) == 0) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    if (n >= 2 * 32 && hex_decode(text, t->secret, 32)) return;
    random_bytes(&s->crypto, t->secret, 32);
    hex_encode(text, t->secret, 32);
    text[64] = '\n', text[65] = 0;
    if (!f && state_file_write(path, text, 0600) == 0) return;
    snprintf(err, sizeof err, "cannot %s %s", f ? "read" : "write", path);
  }
  random_bytes(&s->crypto, t->secret, 32);
  LOG_W(s, "TURN credentials will not outlive this run: %s", err);
}

/* The built-in TURN relay on the UDP port, unless --turn-ports 0. */
static int server_turn(struct camus *s, char *err, unsigned errlen) {
  struct turn *t = &s->turn;
  const struct camus_config *c = &s->cfg;
  if (!c->turn_port_min && !c->turn_port_max) return 0;
  if (c->turn_port_min < 1 || c->turn_port_max > 65535 || c->turn_port_min > c->turn_port_max) {
    snprintf(err, errlen, "--turn-ports needs MIN-MAX within 1-65535");
    return -1;
  }
  *t = (struct turn){.loop = &s->loop, .log_level = s->log_level, .send = server_out, .to_media = server_relayed,
                     .ctx = s, .crypto = &s->crypto,
                     .port_min = c->turn_port_min, .port_max = c->turn_port_max, .media_port = s->udp.port,
                     .max = c->small ? CAMUS_SMALL_TURN_ALLOCATIONS : CAMUS_TURN_ALLOCATIONS,
                     .own = s->own};
  for (int i = 0; i < c->n_turn_allow; i++)
    if (cidr_parse(c->turn_allow[i], &t->allow[t->n_allow++]) != 0) {
      snprintf(err, errlen, "--turn-allow needs an address range such as 10.0.0.0/8, not '%s'", c->turn_allow[i]);
      return -1;
    }
  for (unsigned i = 0; i < s->n_cands; i++)
    if (addr_parse(s->cands[i], 0, &s->own[t->n_own]) == 0) t->n_own++;
  for (int i = c->n_public_ips - 1; i >= 0; i--) {
    struct sockaddr_storage a;
    if (addr_parse(c->public_ips[i], 0, &a) == 0 && a.ss_family == AF_INET) t->public_v4 = a;
  }
  server_turn_secret(s);
  random_bytes(&s->crypto, t->nonce_key, sizeof t->nonce_key);
  t->sweep.fn = turn_sweep;
  if (timer_in(&s->loop, &t->sweep, 1000) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->udp.on_turn = turn_input;
  s->udp.turn = t;
  s->turn_on = true;
  return 0;
}

/* The HTTPS settings: the certificate, TLS 1.2 with forward secrecy and AEAD
 * only.  A reload (SIGHUP: a renewed certificate) makes new ones for new
 * connections; the old stay until the last connection made with them closes. */
struct tls_gen {
  mbedtls_ssl_config conf;
  struct identity id;
  struct tls_gen *next; /* in camus->retired */
};

static void tls_gen_free(struct tls_gen *g) {
  mbedtls_ssl_config_free(&g->conf);
  identity_free(&g->id);
  free(g);
}

static struct tls_gen *tls_gen_new(struct camus *s, char *err, size_t errlen) {
  char msg[128];
  bool made = false;
  const char *dir = s->cfg.state_dir ? s->cfg.state_dir : "camus-state";
  struct tls_gen *g = calloc(1, sizeof *g);
  if (!g) return snprintf(err, errlen, "out of memory"), NULL;
  identity_init(&g->id);
  mbedtls_ssl_config_init(&g->conf);
  if (identity_for_https(&g->id, &s->crypto, s->cfg.cert_file, s->cfg.key_file, dir, &made, err, errlen) != 0) {
    tls_gen_free(g);
    return NULL;
  }
  if (made) LOG_I(s, "made a self-signed certificate in %s", dir);
  int rc = mbedtls_ssl_config_defaults(&g->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                       MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc == 0) rc = mbedtls_ssl_conf_own_cert(&g->conf, &g->id.crt, &g->id.key);
  if (rc) {
    mbedtls_strerror(rc, msg, sizeof msg);
    snprintf(err, errlen, "TLS setup: %s", msg);
    tls_gen_free(g);
    return NULL;
  }
  /* No CBC, CAMELLIA or truncated-tag CCM suites. */
  static const int https_suites[] = {
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,       MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, 0};
  mbedtls_ssl_conf_ciphersuites(&g->conf, https_suites);
  mbedtls_ssl_conf_rng(&g->conf, mbedtls_ctr_drbg_random, &s->crypto.drbg);
  mbedtls_ssl_conf_min_version(&g->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  return g;
}

static int server_tls(struct camus *s, char *err, unsigned errlen) {
  if (!(s->tls = tls_gen_new(s, err, errlen))) return -1;
  s->https = true;
  s->http.tls = &s->tls->conf;
  return 0;
}

/* Frees the retired settings no connection uses any more. */
static void tls_gens_reap(struct camus *s) {
  for (struct tls_gen **pp = &s->retired; *pp;) {
    bool used = false;
    for (unsigned i = 0; i < s->http.n_conns && !used; i++)
      used = s->http.conns[i]->tls && s->http.conns[i]->tls->conf == &(*pp)->conf;
    if (used) {
      pp = &(*pp)->next;
      continue;
    }
    struct tls_gen *g = *pp;
    *pp = g->next;
    tls_gen_free(g);
  }
}

/* SIGHUP: the certificate and key read again (renewed by an ACME client),
 * for connections from now on; nobody is dropped.  A file that does not
 * load leaves the old ones in use. */
static void server_reload(struct camus *s) {
  char err[512], fp[96];
  if (!s->https) {
    LOG_I(s, "reload: nothing to reload without HTTPS");
    return;
  }
  struct tls_gen *g = tls_gen_new(s, err, sizeof err);
  if (!g) {
    LOG_W(s, "reload: the certificate in use stays: %s", err);
    return;
  }
  s->tls->next = s->retired;
  s->retired = s->tls;
  s->tls = g;
  s->http.tls = &g->conf;
  tls_gens_reap(s);
  fingerprint_text(g->id.fingerprint, fp);
  LOG_I(s, "reload: new connections get the certificate %s", fp);
}

struct camus *camus_new(const struct camus_config *cfg, char *err, unsigned errlen) {
  char dummy[8];
  if (!err) err = dummy, errlen = sizeof dummy;
  *err = 0;
  struct camus *s = calloc(1, sizeof *s);
  if (!s) return snprintf(err, errlen, "out of memory"), NULL;
  s->cfg = *cfg;
  /* The settings that have no meaning at zero take their default; the rest are held to their bounds. */
  if (!s->cfg.host) s->cfg.host = "0.0.0.0";
  if (!s->cfg.msg_rate) s->cfg.msg_rate = CAMUS_MSG_RATE;
  if (!s->cfg.room_expiry_sec) s->cfg.room_expiry_sec = CAMUS_ROOM_EXPIRY_SEC;
  if (!s->cfg.max_bitrate_kbps) s->cfg.max_bitrate_kbps = CAMUS_MAX_BITRATE;
  s->cfg.max_bitrate_kbps = MIN(MAX(s->cfg.max_bitrate_kbps, 100u), 100000u);
  if (!s->cfg.request_timeout_sec) s->cfg.request_timeout_sec = CAMUS_REQUEST_TIMEOUT_SEC;
  if (!s->cfg.idle_timeout_sec) s->cfg.idle_timeout_sec = CAMUS_IDLE_TIMEOUT_SEC;
  if (!s->cfg.max_connections) s->cfg.max_connections = s->cfg.small ? CAMUS_SMALL_CONNECTIONS : CAMUS_MAX_CONNECTIONS;
  s->max_rooms = s->cfg.small ? CAMUS_SMALL_ROOMS : CAMUS_MAX_ROOMS;
  s->nack_slots = s->cfg.small ? CAMUS_SMALL_NACK_SLOTS : CAMUS_NACK_SLOTS;
  if (s->cfg.max_connections > CAMUS_MAX_CONNECTIONS_LIMIT) s->cfg.max_connections = CAMUS_MAX_CONNECTIONS_LIMIT;
  s->log_level = cfg->log_level;
  log_json = cfg->log_json;
  s->wake_fd[0] = s->wake_fd[1] = -1;
  s->loop.now = mono_ms();
  s->started = s->loop.now;
  s->http = (struct http_srv){.loop = &s->loop, .log_level = s->log_level, .fd = -1, .max_conns = s->cfg.max_connections,
                              .request_timeout_sec = s->cfg.request_timeout_sec,
                              .idle_timeout_sec = s->cfg.idle_timeout_sec, .on_request = http_request,
                              .on_frame = server_frame, .on_frames_end = server_frames_end,
                              .max_framed_out = CAMUS_ICE_TCP_MAX_OUT, .ctx = s};
  s->metrics_http = (struct http_srv){.loop = &s->loop, .log_level = s->log_level, .fd = -1, .max_conns = 16,
                                      .request_timeout_sec = s->cfg.request_timeout_sec,
                                      .idle_timeout_sec = s->cfg.idle_timeout_sec, .on_request = metrics_request, .ctx = s};
  s->udp = (struct udp){.loop = &s->loop, .log_level = s->log_level, .fd = -1, .on_stun = stun_input,
                        .on_dtls = rtc_dtls_datagram, .on_media = rtc_media_datagram, .ctx = &s->rtc};
  if (crypto_init(&s->crypto) != 0) {
    snprintf(err, errlen, "cannot seed the random generator");
    goto fail;
  }
  /* End-of-turn hooks run in this order: sessions reaped (their close_notify queued), connections
   * flushed, datagrams sent. */
  if (rtc_host_init(&s->rtc, &s->loop, &s->crypto, s->log_level) != 0) goto nomem;
  s->rtc.send = server_send;
  s->rtc.reserve = server_reserve;
  s->rtc.commit = server_commit;
  s->rtc.on_media = client_media;
  s->rtc.on_checked = client_checked;
  s->rtc.on_open = client_open;
  s->rtc.on_message = client_message;
  s->rtc.on_close = client_closed;
  s->rtc.ctx = s;
  if (s->cfg.small) {
    s->rtc.max_peers = CAMUS_SMALL_PEERS;
    s->rtc.max_handshakes = CAMUS_SMALL_HANDSHAKES;
    s->rtc.sctp_buf = CAMUS_SMALL_SCTP_BUF;
    s->http.max_framed_out = CAMUS_SMALL_ICE_TCP_MAX_OUT;
    s->udp.rcvbuf = CAMUS_SMALL_UDP_RCVBUF;
  }
  random_bytes(&s->crypto, s->secret, sizeof s->secret);
  if (server_rooms(s, err, errlen) != 0) goto fail;
  for (int i = 0; i < s->cfg.n_metrics_from; i++)
    if (cidr_parse(s->cfg.metrics_from[i], &s->metrics_from[s->n_metrics_from++]) != 0) {
      snprintf(err, errlen, "--metrics-from needs an address range such as 10.0.0.0/8, not '%s'", s->cfg.metrics_from[i]);
      goto fail;
    }
  if (!s->cfg.n_metrics_from) { /* loopback only */
    cidr_parse("127.0.0.0/8", &s->metrics_from[s->n_metrics_from++]);
    cidr_parse("::1", &s->metrics_from[s->n_metrics_from++]);
  }
  if (sys_pipe(s->wake_fd) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    goto fail;
  }
  if ((s->wake_slot = loop_io_add(&s->loop, s->wake_fd[0], POLLIN, wake_drain, s)) < 0) goto nomem;
  struct sockaddr_storage addr;
  if (addr_parse(s->cfg.host, s->cfg.port, &addr) != 0) {
    snprintf(err, errlen, "--host must be a numeric IPv4 or IPv6 address, not '%s'", s->cfg.host);
    goto fail;
  }
  if (http_listen(&s->http, &addr) != 0) {
    snprintf(err, errlen, "cannot listen on %s port %d: %s", s->cfg.host, s->cfg.port, strerror(errno));
    goto fail;
  }
  if (s->cfg.metrics_addr) {
    char shown[INET6_ADDRSTRLEN + 2];
    if (addr_parse_hostport(s->cfg.metrics_addr, &addr) != 0) {
      snprintf(err, errlen, "--metrics-addr needs HOST:PORT with a numeric address, such as 127.0.0.1:9090, not '%s'",
               s->cfg.metrics_addr);
      goto fail;
    }
    if (http_listen(&s->metrics_http, &addr) != 0) {
      snprintf(err, errlen, "cannot listen on %s for the metrics: %s", s->cfg.metrics_addr, strerror(errno));
      goto fail;
    }
    addr_ip(&addr, shown, sizeof shown, true);
    LOG_I(s, "metrics on http://%s:%d/metrics", shown, s->metrics_http.port);
  }
  int udp_port = s->cfg.udp_port < 0 ? s->http.port : s->cfg.udp_port;
  addr_parse(s->cfg.host, udp_port, &addr);
  if (udp_open(&s->udp, &addr) != 0) {
    snprintf(err, errlen, "cannot bind UDP %s port %d: %s", s->cfg.host, udp_port, strerror(errno));
    goto fail;
  }
  local_candidates(s);
  if (server_turn(s, err, errlen) != 0) goto fail;
  if (s->cfg.tls && server_tls(s, err, errlen) != 0) goto fail;
  return s;
nomem:
  snprintf(err, errlen, "out of memory");
fail:
  camus_free(s);
  return NULL;
}

int camus_http_port(const struct camus *s) { return s->http.port; }
int camus_udp_port(const struct camus *s) { return s->udp.port; }

void camus_stop(struct camus *s) {
  s->stopping = 1;
  if (s->wake_fd[1] >= 0) (void)!write(s->wake_fd[1], "", 1);
}

void camus_reload(struct camus *s) {
  s->reloading = 1;
  if (s->wake_fd[1] >= 0) (void)!write(s->wake_fd[1], "", 1);
}

int camus_poll(struct camus *s, int timeout_ms) {
  if (s->stopping) return -1;
  if (loop_turn(&s->loop, timeout_ms) != 0) LOG_E(s, "poll: out of memory");
  if (s->reloading) {
    s->reloading = 0;
    server_reload(s);
  }
  if (s->retired) tls_gens_reap(s);
  return s->stopping ? -1 : 0;
}

void camus_free(struct camus *s) {
  if (!s) return;
  http_close(&s->http);
  http_close(&s->metrics_http);
  rtc_host_free(&s->rtc);       /* every client leaves its room */
  if (s->turn_on) turn_close(&s->turn);
  udp_close(&s->udp);
  const char *why;
  if (s->rooms_dirty) (void)rooms_save(s, &why); /* the last minute's activity */
  while (s->n_rooms) room_delete(s, s->rooms[0], NULL);
  free(s->rooms);
  free(s->tombs);
  if (s->wake_fd[0] >= 0) close(s->wake_fd[0]);
  if (s->wake_fd[1] >= 0) close(s->wake_fd[1]);
  if (s->tls) tls_gen_free(s->tls);
  while (s->retired) {
    struct tls_gen *g = s->retired;
    s->retired = g->next;
    tls_gen_free(g);
  }
  crypto_free(&s->crypto);
  loop_free(&s->loop);
  free(s);
}

/* =================================================================== MAIN =================================================================== */

#ifndef CAMUS_NO_MAIN

static struct camus *main_server;

static void on_signal(int sig) {
  if (main_server && sig == SIGHUP)
    camus_reload(main_server);
  else if (main_server)
    camus_stop(main_server);
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: camus [options]\n"
          "Camus %s: video chat rooms with webcam, screen sharing and text chat.\n\n"
          "  --host ADDR            address to listen on (default 0.0.0.0; :: for IPv6 too)\n"
          "  --port N               HTTP(S) port (default 5000; 0 picks a free port)\n"
          "  --udp-port N           WebRTC UDP port (default: the same number as --port; 0 picks one)\n"
          "  --public-ip ADDR       also advertise ADDR to browsers (behind NAT; repeatable)\n"
          "  --tls                  serve HTTPS (browsers need it for cameras, except on localhost)\n"
          "  --cert FILE --key FILE PEM certificate and key for HTTPS (default: self-signed, kept in the state dir)\n"
          "  --state-dir DIR        where rooms, secrets and the self-signed certificate are kept\n"
          "                         (default ./camus-state; '' keeps rooms in memory only)\n"
          "  --web-dir DIR          serve the web client from DIR instead of the built-in copy\n"
          "  --allowed-hosts LIST   answer only requests for these host names (name or name:port, commas;\n"
          "                         default: any; set it against DNS rebinding)\n"
          "  --stun URL, --turn URL extra ICE servers for browsers (repeatable; none by default)\n"
          "  --room-expiry SEC      delete an empty room after SEC seconds (default 3600; 0: never)\n"
          "  --max-connections N    concurrent HTTP connections (default 1000)\n"
          "  --max-bitrate KBPS     steer each video sent through the server to at most KBPS kbit/s (default 2500)\n"
          "  --turn-ports MIN-MAX   relay ports of the built-in TURN server (default 49152-49407; 0: no TURN)\n"
          "  --turn-secret S        secret of its credentials (default: random, kept in the state dir)\n"
          "  --turn-allow CIDR      let it relay to this range (loopback, private and our own are refused; repeatable)\n"
          "  --request-timeout SEC  time allowed to send a request (default 10)\n"
          "  --idle-timeout SEC     close idle keep-alive connections after SEC (default 60)\n"
          "  --msg-rate N           messages a second one client may send, in bursts of 4 s worth (default 50)\n"
          "  --log-level LEVEL      error, warn, info (default) or debug\n"
          "  --log-format FORMAT    text (default) or json (one object a line)\n"
          "  --metrics-from CIDR    who may GET /metrics (default: loopback only; repeatable)\n"
          "  --metrics-addr HOST:PORT  also serve /metrics and /healthz, to anyone who reaches it, on a listener of its own\n"
          "  --small                caps for a device with little memory: " STRINGIFY(CAMUS_SMALL_PEERS) " sessions, "
          STRINGIFY(CAMUS_SMALL_CONNECTIONS) " connections, " STRINGIFY(CAMUS_SMALL_ROOMS) " rooms, "
          STRINGIFY(CAMUS_SMALL_TURN_ALLOCATIONS) " relays\n"
          "  --metrics-token T      or anyone with 'Authorization: Bearer T'\n"
          "  --help, --version\n",
          CAMUS_VERSION);
}

/* Reads an unsigned option value in [lo, hi]; exits with status 2 otherwise. */
static long opt_num(const char *opt, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || errno || n < lo || n > hi) {
    fprintf(stderr, "camus: %s needs a number from %ld to %ld\n", opt, lo, hi);
    exit(2);
  }
  return n;
}

/* Adds the address range v to list[*n], up to max of them; false (and a message) if it is none or too many. */
static bool opt_cidr(const char *opt, const char *v, const char **list, int *n, int max) {
  struct cidr tmp;
  if (*n == max || cidr_parse(v, &tmp) != 0) {
    fprintf(stderr, "camus: %s needs an address range such as 10.0.0.0/8 (%d at most)\n", opt, max);
    return false;
  }
  list[(*n)++] = v;
  return true;
}

/* Reads the command line into cfg.  Returns -1 to go on, else the exit
 * status (0 after --help or --version, 2 for a bad option). */
static int parse_options(int argc, char **argv, struct camus_config *c) {
  struct camus_config cfg = *c;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = true;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--version")) {
      printf("camus %s (%s; %s, %d-bit, %s-endian%s)\n", CAMUS_VERSION, CAMUS_COMMIT, CAMUS_BUILD,
             (int)(sizeof(void *) * 8), get_u16((const uint8_t *)&(uint16_t){1}) == 1 ? "big" : "little",
#ifdef CAMUS_PORTABLE
             ", portable"
#else
             ""
#endif
      );
      return 0;
    } else if (!strcmp(a, "--tls")) {
      cfg.tls = 1;
      takes = false;    } else if (!strcmp(a, "--small")) {
      cfg.small = 1;
      takes = false;
    } else if (!v) {
      fprintf(stderr, "camus: unknown option or missing value: %s (see --help)\n", a);
      return 2;
    } else if (!strcmp(a, "--host")) {
      cfg.host = v;
    } else if (!strcmp(a, "--port")) {
      cfg.port = (int)opt_num(a, v, 0, 65535);
    } else if (!strcmp(a, "--udp-port")) {
      cfg.udp_port = (int)opt_num(a, v, 0, 65535);
    } else if (!strcmp(a, "--public-ip")) {
      struct sockaddr_storage tmp;
      if (cfg.n_public_ips == CAMUS_MAX_PUBLIC_IPS || addr_parse(v, 0, &tmp) != 0) {
        fprintf(stderr, "camus: --public-ip needs a numeric address (%d at most)\n", CAMUS_MAX_PUBLIC_IPS);
        return 2;
      }
      cfg.public_ips[cfg.n_public_ips++] = v;
    } else if (!strcmp(a, "--stun") || !strcmp(a, "--turn")) {
      if (cfg.n_ice_urls == CAMUS_MAX_ICE_URLS || strncmp(v, a + 2, 4) != 0) {
        fprintf(stderr, "camus: %s needs a %s: URL (%d at most)\n", a, a + 2, CAMUS_MAX_ICE_URLS);
        return 2;
      }
      cfg.ice_urls[cfg.n_ice_urls++] = v;
    } else if (!strcmp(a, "--allowed-hosts")) {
      for (char *h = argv[i + 1]; *h;) { /* comma-separated (cut in place), and repeatable */
        size_t n = strcspn(h, ",");
        if (cfg.n_allowed_hosts == CAMUS_MAX_ALLOWED_HOSTS || n == 0) {
          fprintf(stderr, "camus: --allowed-hosts takes names separated by commas (%d at most)\n", CAMUS_MAX_ALLOWED_HOSTS);
          return 2;
        }
        cfg.allowed_hosts[cfg.n_allowed_hosts++] = h;
        bool more = h[n] == ',';
        h[n] = 0;
        h += n + more;
      }
    } else if (!strcmp(a, "--cert")) {
      cfg.cert_file = v;
    } else if (!strcmp(a, "--key")) {
      cfg.key_file = v;
    } else if (!strcmp(a, "--state-dir")) {
      cfg.state_dir = v;
    } else if (!strcmp(a, "--web-dir")) {
      cfg.web_dir = v;
    } else if (!strcmp(a, "--room-expiry")) {
      cfg.room_expiry_sec = (unsigned)opt_num(a, v, 0, 86400 * 365);
      if (!cfg.room_expiry_sec) cfg.room_expiry_sec = CAMUS_ROOM_EXPIRY_NEVER;
    } else if (!strcmp(a, "--max-connections")) {
      cfg.max_connections = (unsigned)opt_num(a, v, 1, CAMUS_MAX_CONNECTIONS_LIMIT);
    } else if (!strcmp(a, "--request-timeout")) {
      cfg.request_timeout_sec = (unsigned)opt_num(a, v, 1, 3600);
    } else if (!strcmp(a, "--idle-timeout")) {
      cfg.idle_timeout_sec = (unsigned)opt_num(a, v, 1, 86400);
    } else if (!strcmp(a, "--turn-ports")) {
      int lo = 0, hi = 0, used = 0;
      if (!strcmp(v, "0")) {
        cfg.turn_port_min = cfg.turn_port_max = 0;
      } else if (sscanf(v, "%d-%d%n", &lo, &hi, &used) == 2 && !v[used] && lo >= 1 && lo <= hi && hi <= 65535) {
        cfg.turn_port_min = lo, cfg.turn_port_max = hi;
      } else {
        fprintf(stderr, "camus: --turn-ports needs MIN-MAX (for example 49152-49407), or 0 for no TURN\n");
        return 2;
      }
    } else if (!strcmp(a, "--metrics-from")) {
      if (!opt_cidr(a, v, cfg.metrics_from, &cfg.n_metrics_from, CAMUS_MAX_METRICS_FROM)) return 2;
    } else if (!strcmp(a, "--metrics-token")) {
      cfg.metrics_token = v;
    } else if (!strcmp(a, "--metrics-addr")) {
      cfg.metrics_addr = v;

    } else if (!strcmp(a, "--log-format")) {
      if (strcmp(v, "text") && strcmp(v, "json")) {
        fprintf(stderr, "camus: --log-format is text or json\n");
        return 2;
      }
      cfg.log_json = !strcmp(v, "json");
    } else if (!strcmp(a, "--turn-secret")) {
      cfg.turn_secret = v;
    } else if (!strcmp(a, "--turn-allow")) {
      if (!opt_cidr(a, v, cfg.turn_allow, &cfg.n_turn_allow, CAMUS_MAX_TURN_ALLOW)) return 2;
    } else if (!strcmp(a, "--max-bitrate")) {
      cfg.max_bitrate_kbps = (unsigned)opt_num(a, v, 100, 100000);
    } else if (!strcmp(a, "--msg-rate")) {
      cfg.msg_rate = (unsigned)opt_num(a, v, 1, 10000000);
    } else if (!strcmp(a, "--log-level")) {
      static const char *const levels[] = {"error", "warn", "info", "debug"};
      int l = -1;
      for (int k = 0; k < 4; k++)
        if (!strcmp(v, levels[k])) l = k;
      if (l < 0) {
        fprintf(stderr, "camus: --log-level is error, warn, info or debug\n");
        return 2;
      }
      cfg.log_level = (enum camus_log_level)l;
    } else {
      fprintf(stderr, "camus: unknown option: %s (see --help)\n", a);
      return 2;
    }
    if (takes) i++;
  }
  if (!!cfg.cert_file != !!cfg.key_file) {
    fprintf(stderr, "camus: --cert and --key go together\n");
    return 2;
  }
  if (cfg.cert_file) cfg.tls = 1;
  *c = cfg;
  return -1;
}

int main(int argc, char **argv) {
  struct camus_config cfg;
  camus_config_init(&cfg);
  uint64_t t0 = mono_ms();
  int rc = parse_options(argc, argv, &cfg);
  if (rc >= 0) return rc;

  char err[512];
  struct camus *s = camus_new(&cfg, err, sizeof err);
  if (!s) {
    log_line(CAMUS_LOG_ERROR, "%s", err);
    return 1;
  }
  main_server = s;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  const char *scheme = cfg.tls ? "https" : "http";
  bool any4 = !strcmp(cfg.host, "0.0.0.0"), any6 = !strcmp(cfg.host, "::");
  char shown[INET6_ADDRSTRLEN + 2];
  if (strchr(cfg.host, ':') && !any6)
    snprintf(shown, sizeof shown, "[%s]", cfg.host);
  else
    snprintf(shown, sizeof shown, "%s", any4 || any6 ? "localhost" : cfg.host);
  LOG_I(s, "camus %s listening on %s://%s:%d (udp %d) in %llu ms", CAMUS_VERSION, scheme, shown,
        camus_http_port(s), camus_udp_port(s), (unsigned long long)(mono_ms() - t0));
  if (any4 || any6)
    for (unsigned i = 0; i < s->n_cands; i++)
      LOG_I(s, "open %s://%s%s%s:%d/", scheme, strchr(s->cands[i], ':') ? "[" : "", s->cands[i],
            strchr(s->cands[i], ':') ? "]" : "", camus_http_port(s));
  if (s->https) {
    char fp[96];
    fingerprint_text(s->tls->id.fingerprint, fp);
    LOG_I(s, "certificate fingerprint SHA-256 %s", fp);
  }
  while (camus_poll(s, -1) == 0) {}
  LOG_I(s, "shutting down");
  camus_free(s);
  return 0;
}
#endif /* CAMUS_NO_MAIN */
