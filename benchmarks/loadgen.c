/*
 * loadgen.c: the WebSocket load generator of benchmarks/run.
 *
 * One thread, epoll, non-blocking sockets.  It opens --conns client
 * connections to ws://HOST:PORT/PATH (the opening handshake is checked for
 * the 101 status and the Sec-WebSocket-Accept of the RFC 6455 sample key),
 * prints a JSON line {"phase": "connected", ...}, waits for a line on
 * standard input, runs the workload, prints {"phase": "done", ...} and exits.
 * The driver reads the server's CPU time at each of these points.
 *
 * Every message it sends is framed and masked once, before the clock starts:
 * sending is a write() from a prepared buffer and receiving is a frame
 * header parser that counts payload bytes without copying them, so that
 * the generator costs far less CPU per message than any Python server.
 *
 * Modes:
 *   echo   every connection keeps --outstanding messages of --size bytes in
 *          flight for --duration seconds, then waits for the last echoes;
 *          reports messages, bytes and round-trip latency percentiles.
 *   idle   only connects (the driver measures the server's memory).
 *   frag   one message of --size bytes sent as --frag-size fragments,
 *          --count times in a row; reports the time to the last echo byte.
 *   bcast  connection 0 sends the text command --command; every connection
 *          then expects --count messages of --size bytes from the server.
 *          Each further line on standard input is another command
 *          ("MODE COUNT ..."), run on the same connections, with its own
 *          "done" line; end of input ends the program.  A command ending
 *          in " xR" is sent R times in a row, each time waiting until every
 *          connection has all its messages; the latency histogram then
 *          holds, per round, the time from the command to the last
 *          delivery (the time for a message to reach every subscriber).
 *
 * With --source ADDR every connection binds to a source address before
 * connecting: ADDR for the first --per-source connections, the next
 * address (ADDR + 1, as a 32-bit number) for the next ones, and so on,
 * with IP_BIND_ADDRESS_NO_PORT so that the port is chosen at connect()
 * from the whole 4-tuple: spread over 127.0.0.0/8, many generators can
 * open 100,000 connections to one server port without running out of
 * ephemeral ports (about 28,000 per source address).
 *
 * With --close (echo mode, and what benchmarks/scale.py uses with
 * --duration 0 --outstanding 1: one echo per connection), after the
 * workload every connection sends a close frame (1000), --concurrency
 * closes under way at a time, and waits for the server's close frame; a
 * {"phase": "closed", ...} line reports how many closed cleanly and the
 * time it took.
 *
 * With --deflate (echo mode) every connection offers permessage-deflate
 * (RFC 7692, with client_max_window_bits) and sends text messages of
 * --size bytes of JSON-like text, compressed with context takeover at the
 * window the server asks for: 64 different messages compressed in one
 * stream, the first from an empty window, so that the cycle can repeat
 * for ever on one connection.  Replies are counted, not inflated.
 *
 * With --tls every connection is wss://: a TLS client (OpenSSL, no
 * certificate verification: the benchmark's certificate is self-signed;
 * ALPN offers http/1.1 only) under the same handshake and frames.  Reads
 * go through SSL_read with read-ahead on, until OpenSSL wants more from the
 * socket; writes through SSL_write with partial writes on (a write that
 * would block is retried with the same length, as OpenSSL requires).
 *
 * Build: gcc -O2 -o loadgen loadgen.c -lz -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum { MODE_ECHO, MODE_IDLE, MODE_FRAG, MODE_BCAST };
enum { ST_CONNECTING, ST_TLS, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

/* RFC 6455 section 1.3's sample key, and the accept value it must get. */
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Latency histogram: 100 ns bins up to 100 ms (bcast: 10 us bins up to
 * 10 s), then one overflow bin. */
static double HIST_BIN_NS = 100;
#define HIST_BINS 1000000

struct conn {
    int fd;
    int state;
    SSL *ssl;               /* --tls: the connection's TLS, else NULL */
    size_t tlsRetry;        /* length of an SSL_write to repeat, or 0 */
    int wantOut;            /* EPOLLOUT is registered */
    /* handshake response */
    char head[2048];
    int headLen;
    /* output: `queued` bytes of the endless repetition of the unit */
    uint64_t queued;
    uint64_t unitPos;
    /* a pong to send at the next message boundary */
    unsigned char pong[131];
    int pongLen, pongOff;
    /* input: frame header being read, then payload bytes to skip */
    unsigned char hdr[14];
    unsigned char control[125];     /* payload of a control frame */
    int hdrLen, hdrNeed, inPayload;
    int opcode, fin;
    uint64_t remaining, messageBytes;
    int controlLen;
    int nextMessage;        /* --deflate: index of the next message to queue */
    /* accounting */
    int64_t outstanding;
    int64_t received;
    double *sent;           /* ring of send times, one per outstanding */
    int ringHead, ringTail, ringSize;
};

static struct {
    const char *host, *path, *command;
    int port, mode, conns, outstanding, binary, concurrency, count, noWait;
    int deflate, close, perSource, tls;
    uint64_t size, fragSize;
    const char *source;
    double duration, timeout;
} opt = {
    "127.0.0.1", "/echo", "", 0, MODE_ECHO, 1, 1, 0, 100, 1, 0,
    0, 0, 1000, 0, 32, 1024, NULL, 5.0, 60.0,
};

static SSL_CTX *tlsContext;

static int epfd;
static int stdinReady;
static struct conn *conns;
static unsigned char *unit;     /* the prepared bytes, repeated */
static uint64_t unitLen;        /* length of one repetition */
static uint64_t unitBufLen;     /* bytes available in `unit` */
static uint32_t *hist;
static uint64_t histCount, histOverflow;
static double latMax;
static int64_t errors, pings, messagesTotal, bytesTotal;
static int64_t totalOutstanding;
static int sending = 1;
static double lastReceive;
static int openCount, deadCount;
static unsigned char maskKey[4];
#define DEFLATE_MESSAGES 64
static uint64_t deflateLens[DEFLATE_MESSAGES]; /* framed length of each */
static int deflateBits;         /* client window agreed; 0: not yet */
static int64_t rounds = 1;
static int closing;             /* --close: the close handshake is under way */
static int64_t closedClean;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpuSeconds(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    return *user + *sys;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    printf("{\"phase\": \"error\", \"error\": \"%s\"}\n", what);
    fflush(stdout);
    exit(1);
}

/*
 * write() or, with --tls, SSL_write(): bytes written, or -1 with errno
 * EAGAIN (try again when writable; TLS repeats the same length then) or
 * another errno (failed).
 */
static ssize_t ioWrite(struct conn *c, const void *p, size_t n)
{
    if (!c->ssl)
        return write(c->fd, p, n);
    if (c->tlsRetry)
        n = c->tlsRetry;
    if (n > INT32_MAX)
        n = INT32_MAX;
    int w = SSL_write(c->ssl, p, (int)n);
    if (w > 0) {
        c->tlsRetry = 0;
        return w;
    }
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        c->tlsRetry = n;
        errno = EAGAIN;
    } else {
        errno = EPIPE;
    }
    return -1;
}

/* read() or, with --tls, SSL_read(): as read(); EAGAIN when OpenSSL wants
 * more bytes from the socket, 0 at TLS close_notify or EOF. */
static ssize_t ioRead(struct conn *c, void *p, size_t n)
{
    if (!c->ssl)
        return read(c->fd, p, n);
    int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
        return 0;
    errno = ECONNRESET;
    return -1;
}

/* One masked client frame header for a payload of `length` bytes. */
static size_t frameHeader(unsigned char *out, int first, uint64_t length)
{
    size_t n = 0;
    out[n++] = (unsigned char)first;
    if (length < 126) {
        out[n++] = 0x80 | (unsigned char)length;
    } else if (length < 65536) {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char)(length >> 8);
        out[n++] = (unsigned char)length;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (unsigned char)(length >> (8 * i));
    }
    memcpy(out + n, maskKey, 4);
    return n + 4;
}

/* Append a masked frame carrying `payload` to `out`; returns its length. */
static size_t frame(unsigned char *out, int first, const unsigned char *payload,
                    uint64_t length)
{
    size_t n = frameHeader(out, first, length);
    for (uint64_t i = 0; i < length; i++)
        out[n + i] = payload[i] ^ maskKey[i & 3];
    return n + length;
}

static void fillPayload(unsigned char *p, uint64_t length)
{
    /* Printable ASCII, so the same payload is valid text and binary. */
    for (uint64_t i = 0; i < length; i++)
        p[i] = (unsigned char)('a' + (i * 7 + i / 26) % 26);
}

/*
 * Prepare `unit`: the bytes of one message as sent (one frame, or
 * fragments), repeated so that a single write() can carry several.
 */
static void prepareUnit(void)
{
    unsigned char *payload = malloc(opt.size ? opt.size : 1);
    if (!payload)
        die("malloc");
    fillPayload(payload, opt.size);
    int first = 0x80 | (opt.binary ? 0x2 : 0x1);
    uint64_t frag = opt.mode == MODE_FRAG ? opt.fragSize : opt.size;
    if (frag == 0)
        frag = 1;
    uint64_t frames = opt.size ? (opt.size + frag - 1) / frag : 1;
    uint64_t oneLen = opt.size + frames * 14;
    int reps = 1;
    if (opt.mode == MODE_ECHO) {
        reps = opt.outstanding;
        while (reps * oneLen < 65536 && reps < 4096)
            reps *= 2;
    }
    unit = malloc(oneLen * reps);
    if (!unit)
        die("malloc");
    uint64_t n = 0;
    if (opt.mode == MODE_FRAG) {
        for (uint64_t i = 0; i < frames; i++) {
            uint64_t start = i * frag;
            uint64_t len = opt.size - start < frag ? opt.size - start : frag;
            int op = i == 0 ? (opt.binary ? 0x2 : 0x1) : 0x0;
            int fin = i == frames - 1 ? 0x80 : 0;
            n += frame(unit + n, fin | op, payload + start, len);
        }
    } else {
        n = frame(unit, first, payload, opt.size);
    }
    unitLen = n;
    for (int r = 1; r < reps; r++)
        memcpy(unit + r * n, unit, n);
    unitBufLen = n * reps;
    free(payload);
}

static void watch(struct conn *c, int out)
{
    struct epoll_event ev = {0};
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->wantOut = out;
}

static void drop(struct conn *c, const char *why)
{
    if (c->state == ST_DEAD)
        return;
    if (why) {
        errors++;
        fprintf(stderr, "loadgen: connection %ld: %s\n", (long)(c - conns), why);
    }
    if (c->state == ST_OPEN)
        openCount--;
    c->state = ST_DEAD;
    deadCount++;
    totalOutstanding -= c->outstanding;
    c->outstanding = 0;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
}

/* Write a pending pong; false if the socket is full (or failed). */
static int flushPong(struct conn *c)
{
    while (c->pongOff < c->pongLen) {
        ssize_t w = ioWrite(c, c->pong + c->pongOff, c->pongLen - c->pongOff);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                drop(c, "write failed");
            return 0;
        }
        c->pongOff += w;
    }
    c->pongLen = c->pongOff = 0;
    return 1;
}

/* Write as much of the queued output as the socket takes. */
static void flush(struct conn *c)
{
    /* A pong goes out between two messages, never inside one (nor while a
     * TLS write must be repeated). */
    if (c->pongLen && !c->tlsRetry && (c->unitPos == 0 || c->pongOff) &&
        !flushPong(c)) {
        if (c->state != ST_DEAD && !c->wantOut)
            watch(c, 1);
        return;
    }
    while (c->queued > 0) {
        uint64_t start = c->unitPos;
        uint64_t len = unitBufLen - start;
        if (len > c->queued)
            len = c->queued;
        ssize_t w = ioWrite(c, unit + start, len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            drop(c, "write failed");
            return;
        }
        c->queued -= w;
        c->unitPos = (start + w) % unitLen;
    }
    if (c->pongLen && !c->tlsRetry && c->unitPos == 0 && !flushPong(c) &&
        c->state == ST_DEAD)
        return;
    int out = c->queued > 0 || c->pongLen > 0;
    if (out != c->wantOut)
        watch(c, out);
}

static void queueMessage(struct conn *c, double t)
{
    if (opt.deflate) {
        c->queued += deflateLens[c->nextMessage];
        c->nextMessage = (c->nextMessage + 1) % DEFLATE_MESSAGES;
    } else {
        c->queued += unitLen;
    }
    c->outstanding++;
    totalOutstanding++;
    c->sent[c->ringTail] = t;
    c->ringTail = (c->ringTail + 1) % c->ringSize;
}

static void recordLatency(double seconds)
{
    uint64_t bin = (uint64_t)(seconds * 1e9 / HIST_BIN_NS);
    if (bin >= HIST_BINS)
        histOverflow++;
    else
        hist[bin]++;
    histCount++;
    if (seconds > latMax)
        latMax = seconds;
}

static double percentile(double p)
{
    uint64_t want = (uint64_t)(p * histCount);
    if (want >= histCount)
        want = histCount ? histCount - 1 : 0;
    uint64_t seen = 0;
    for (uint64_t i = 0; i < HIST_BINS; i++) {
        seen += hist[i];
        if (seen > want)
            return (i + 0.5) * HIST_BIN_NS * 1e-3;
    }
    return latMax * 1e6;
}

static void messageDone(struct conn *c, double t)
{
    uint64_t expected = opt.size;
    if (opt.deflate)  /* compressed: count the payload as sent */
        c->messageBytes = expected;
    if (c->messageBytes != expected) {
        char why[96];
        snprintf(why, sizeof why, "message of %llu bytes, expected %llu",
                 (unsigned long long)c->messageBytes,
                 (unsigned long long)expected);
        drop(c, why);
        return;
    }
    c->received++;
    messagesTotal++;
    bytesTotal += c->messageBytes;
    lastReceive = t;
    if (opt.mode == MODE_BCAST)
        return;
    if (c->outstanding > 0) {
        recordLatency(t - c->sent[c->ringHead]);
        c->ringHead = (c->ringHead + 1) % c->ringSize;
        c->outstanding--;
        totalOutstanding--;
    }
    if (sending)
        queueMessage(c, t);
}

static void frameDone(struct conn *c, double t)
{
    c->inPayload = 0;
    if (c->opcode == 0x8 && closing) {
        closedClean++;
        drop(c, NULL);
    } else if (c->opcode == 0x8) {
        drop(c, "server sent a close frame");
    } else if (c->opcode == 0x9) {
        /* Servers are configured not to ping, but answer if one does. */
        pings++;
        if (!c->pongOff && !closing) {
            c->pongLen = (int)frame(c->pong, 0x8A, c->control, c->controlLen);
            flush(c);
        }
    } else if (c->opcode < 8 && c->fin) {
        messageDone(c, t);
    }
}

/* Parse server frames; payloads are counted, not kept. */
static void receiveFrames(struct conn *c, const unsigned char *p, size_t n,
                          double t)
{
    while (n > 0 && c->state == ST_OPEN) {
        if (c->inPayload) {
            uint64_t take = c->remaining < n ? c->remaining : n;
            if (c->opcode < 8) {
                c->messageBytes += take;
            } else if (c->controlLen + take <= sizeof c->control) {
                memcpy(c->control + c->controlLen, p, take);
                c->controlLen += take;
            }
            c->remaining -= take;
            p += take;
            n -= take;
            if (c->remaining == 0)
                frameDone(c, t);
            continue;
        }
        c->hdr[c->hdrLen++] = *p++;
        n--;
        if (c->hdrLen == 2) {
            int len7 = c->hdr[1] & 0x7f;
            c->hdrNeed = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) +
                         ((c->hdr[1] & 0x80) ? 4 : 0);
        }
        if (c->hdrLen < 2 || c->hdrLen < c->hdrNeed)
            continue;
        int len7 = c->hdr[1] & 0x7f;
        uint64_t length = len7;
        if (len7 == 126) {
            length = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
        } else if (len7 == 127) {
            length = 0;
            for (int i = 0; i < 8; i++)
                length = (length << 8) | c->hdr[2 + i];
        }
        c->fin = c->hdr[0] & 0x80;
        c->opcode = c->hdr[0] & 0x0f;
        if (c->opcode == 1 || c->opcode == 2)
            c->messageBytes = 0;
        c->controlLen = 0;
        c->remaining = length;
        c->inPayload = 1;
        c->hdrLen = 0;
        if (c->hdr[1] & 0x80) {
            drop(c, "server frame is masked");
            return;
        }
        if (length == 0)
            frameDone(c, t);
    }
}

/* JSON-like text of exactly `length` bytes, different for each `n`. */
static void jsonLike(unsigned char *out, uint64_t length, int n)
{
    static const char *words[] = {"alpha", "beta", "gamma", "delta", "omega",
                                  "update", "insert", "quote", "trade"};
    char buf[4096];
    int used = snprintf(buf, sizeof buf, "{\"seq\":%d,\"type\":\"%s\",\"items\":[", n,
                        words[n % 9]);
    unsigned x = 2654435761u * (unsigned)(n + 1);
    while (used < (int)sizeof buf - 128) {
        x = x * 1103515245u + 12345u;
        used += snprintf(buf + used, sizeof buf - used,
                         "{\"id\":%u,\"name\":\"%s-%u\",\"price\":%u.%02u},",
                         x % 100000, words[(x >> 8) % 9], (x >> 12) % 1000,
                         (x >> 4) % 5000, x % 100);
    }
    for (uint64_t i = 0; i < length; i++)
        out[i] = (unsigned char)buf[i % (uint64_t)used];
    if (length >= 2) {
        out[length - 2] = ']';
        out[length - 1] = '}';
    }
}

/*
 * The --deflate unit: DEFLATE_MESSAGES text messages compressed in one
 * raw deflate stream with `bits` of window (RFC 7692 7.2.1: each ends in a
 * sync flush whose final 4 bytes are removed), framed with RSV1 set.
 */
static void prepareDeflateUnit(int bits)
{
    z_stream z = {0};
    /* zlib refuses a raw window of 8 bits; 9 is within any agreed 8. */
    if (deflateInit2(&z, 6, Z_DEFLATED, -(bits < 9 ? 9 : bits), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    unsigned char *text = malloc(opt.size + 1);
    uint64_t room = DEFLATE_MESSAGES * (opt.size + 64 + 14);
    unsigned char *packed = malloc(opt.size + 64);
    unit = malloc(room);
    if (!text || !packed || !unit)
        die("malloc");
    uint64_t n = 0;
    for (int i = 0; i < DEFLATE_MESSAGES; i++) {
        jsonLike(text, opt.size, i);
        z.next_in = text;
        z.avail_in = (uInt)opt.size;
        z.next_out = packed;
        z.avail_out = (uInt)(opt.size + 64);
        if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in != 0)
            die("deflate");
        uint64_t len = opt.size + 64 - z.avail_out - 4;
        deflateLens[i] = frame(unit + n, 0xC1, packed, len);
        n += deflateLens[i];
    }
    deflateEnd(&z);
    free(text);
    free(packed);
    unitLen = unitBufLen = n;
    deflateBits = bits;
}

/* The client window the server's permessage-deflate response asks for. */
static int agreedClientBits(struct conn *c)
{
    char *ext = strcasestr(c->head, "sec-websocket-extensions:");
    char *eol = ext ? strstr(ext, "\r\n") : NULL;
    if (!ext || !eol || !strcasestr(ext, "permessage-deflate"))
        return 0;
    char *bits = strcasestr(ext, "client_max_window_bits=");
    if (bits && bits < eol)
        return atoi(bits + strlen("client_max_window_bits="));
    return 15;
}

static void handshakeReply(struct conn *c, const unsigned char *p, size_t n,
                           double t)
{
    size_t room = sizeof c->head - 1 - c->headLen;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->headLen, p, take);
    c->headLen += take;
    c->head[c->headLen] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        if (take < n || room == 0)
            drop(c, "handshake response too long");
        return;
    }
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->head, "\r\n");
        if (eol)
            *eol = 0;
        char why[160];
        snprintf(why, sizeof why, "handshake refused: %.100s", c->head);
        drop(c, why);
        return;
    }
    if (!strcasestr(c->head, SAMPLE_ACCEPT)) {
        drop(c, "wrong Sec-WebSocket-Accept");
        return;
    }
    if (opt.deflate) {
        int bits = agreedClientBits(c);
        if (!bits) {
            drop(c, "server did not accept permessage-deflate");
            return;
        }
        if (!deflateBits)
            prepareDeflateUnit(bits);
        else if (bits != deflateBits) {
            drop(c, "servers asked for different client windows");
            return;
        }
    }
    c->state = ST_OPEN;
    openCount++;
    size_t used = (size_t)(end + 4 - c->head) - (c->headLen - take);
    if (used < n)
        receiveFrames(c, p + used, n - used, t);
}

static unsigned char readBuf[1 << 20];

static void readable(struct conn *c)
{
    /* TLS reads on until OpenSSL wants the socket: what it has decrypted
     * or read ahead is not seen by epoll. */
    for (int i = 0; (c->ssl || i < 8) && c->state != ST_DEAD; i++) {
        ssize_t r = ioRead(c, readBuf, sizeof readBuf);
        if (r == 0) {
            drop(c, "server closed the connection");
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            drop(c, errno == ECONNRESET ? "read failed: reset by the server"
                                        : "read failed");
            return;
        }
        double t = now();
        if (c->state == ST_HANDSHAKE)
            handshakeReply(c, readBuf, r, t);
        else
            receiveFrames(c, readBuf, r, t);
        if (!c->ssl && (size_t)r < sizeof readBuf)
            break;
    }
}

/* The TCP connection is up: whether it failed (then it is dropped). */
static int connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        drop(c, strerror(err));
        return 0;
    }
    return 1;
}

static void sendHandshake(struct conn *c)
{
    char req[640];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Origin: http://%s\r\n"
                     "%s"
                     "\r\n",
                     opt.path, opt.host, opt.port, opt.host,
                     opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                   "client_max_window_bits\r\n" : "");
    if (ioWrite(c, req, n) != n) {
        drop(c, "handshake write failed");
        return;
    }
    c->state = ST_HANDSHAKE;
    watch(c, 0);
}

static void startConnect(struct conn *c)
{
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(opt.port);
    inet_pton(AF_INET, opt.host, &addr.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.source) {
        struct sockaddr_in src = {0};
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, opt.source, &src.sin_addr) != 1) {
            errno = EINVAL;
            die("--source");
        }
        uint32_t base = ntohl(src.sin_addr.s_addr);
        src.sin_addr.s_addr = htonl(base + (uint32_t)((c - conns) / opt.perSource));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0)
            die("bind");
    }
    c->state = ST_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 &&
        errno != EINPROGRESS)
        die("connect");
    struct epoll_event ev = {0};
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->wantOut = 1;
}

/* Go on with the TLS handshake; once it is done, send the HTTP one. */
static void tlsHandshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        sendHandshake(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int out = e == SSL_ERROR_WANT_WRITE;
        if (out != c->wantOut)
            watch(c, out);
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "TLS handshake failed: %s",
             ERR_reason_error_string(ERR_get_error()));
    drop(c, why);
}

static void startTLS(struct conn *c)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    c->ssl = SSL_new(tlsContext);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        die("SSL_new");
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
    c->state = ST_TLS;
    tlsHandshake(c);
}

static void event(struct conn *c, uint32_t events)
{
    if (c->state == ST_DEAD)
        return;
    if (c->state == ST_CONNECTING) {
        if (!connected(c))
            return;
        if (opt.tls)
            startTLS(c);
        else
            sendHandshake(c);
        return;
    }
    if (c->state == ST_TLS) {
        tlsHandshake(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        readable(c);
    if (c->state == ST_OPEN && (c->queued > 0 || (events & EPOLLOUT)))
        flush(c);
}

/* Run the event loop until `done()` or the deadline; false on timeout. */
static int loop(int (*done)(void), double deadline, int (*tick)(double))
{
    struct epoll_event evs[512];
    while (!done()) {
        double t = now();
        if (t > deadline)
            return 0;
        if (tick && tick(t))
            continue;
        int n = epoll_wait(epfd, evs, 512, 10);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                stdinReady = 1;
            else
                event(evs[i].data.ptr, evs[i].events);
        }
    }
    return 1;
}

static int started;

static int stdinHasLine(void)
{
    return stdinReady;
}

/*
 * Read the driver's next line, serving the connections meanwhile (so that
 * they answer pings); false at the end of input.
 */
static int nextLine(char *line, int size)
{
    static int watching;
    if (!watching) {
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0)
            watching = 1;
    }
    stdinReady = 0;
    if (watching)
        loop(stdinHasLine, now() + 1e9, NULL);
    return fgets(line, size, stdin) != NULL;
}

static int allConnected(void)
{
    return openCount + deadCount == opt.conns && started == opt.conns;
}

static int connectMore(double t)
{
    (void)t;
    int inFlight = started - openCount - deadCount;
    while (started < opt.conns && inFlight < opt.concurrency) {
        startConnect(&conns[started++]);
        inFlight++;
    }
    return 0;
}

static int drained(void)
{
    return totalOutstanding <= 0;
}

static double sendingEnds;

static int stopSending(double t)
{
    if (sending && t >= sendingEnds)
        sending = 0;
    return 0;
}

static int echoDone(void)
{
    return !sending && totalOutstanding <= 0;
}

static int64_t bcastExpected;

static int bcastDone(void)
{
    return messagesTotal >= bcastExpected || openCount == 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--host H] [--path /echo] "
            "[--mode echo|idle|frag|bcast]\n"
            "  [--conns N] [--outstanding K] [--size BYTES] [--binary]\n"
            "  [--duration S] [--frag-size BYTES] [--count N] "
            "[--command TEXT]\n"
            "  [--concurrency N] [--timeout S] [--no-wait] [--deflate] "
            "[--tls]\n"
            "  [--source ADDR] [--per-source N] [--close]\n");
    exit(2);
}

static void parseArgs(int argc, char **argv)
{
    static struct option longs[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"path", 1, 0, 'P'},
        {"mode", 1, 0, 'm'}, {"conns", 1, 0, 'c'}, {"outstanding", 1, 0, 'o'},
        {"size", 1, 0, 's'}, {"binary", 0, 0, 'b'}, {"duration", 1, 0, 'd'},
        {"frag-size", 1, 0, 'f'}, {"count", 1, 0, 'n'}, {"command", 1, 0, 'C'},
        {"concurrency", 1, 0, 'k'}, {"timeout", 1, 0, 't'},
        {"no-wait", 0, 0, 'W'}, {"deflate", 0, 0, 'z'}, {"tls", 0, 0, 'T'},
        {"source", 1, 0, 'S'}, {"per-source", 1, 0, 'N'}, {"close", 0, 0, 'X'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'P': opt.path = optarg; break;
        case 'm':
            if (!strcmp(optarg, "echo")) opt.mode = MODE_ECHO;
            else if (!strcmp(optarg, "idle")) opt.mode = MODE_IDLE;
            else if (!strcmp(optarg, "frag")) opt.mode = MODE_FRAG;
            else if (!strcmp(optarg, "bcast")) opt.mode = MODE_BCAST;
            else usage();
            break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'o': opt.outstanding = atoi(optarg); break;
        case 's': opt.size = strtoull(optarg, NULL, 10); break;
        case 'b': opt.binary = 1; break;
        case 'd': opt.duration = atof(optarg); break;
        case 'f': opt.fragSize = strtoull(optarg, NULL, 10); break;
        case 'n': opt.count = atoi(optarg); break;
        case 'C': opt.command = optarg; break;
        case 'k': opt.concurrency = atoi(optarg); break;
        case 't': opt.timeout = atof(optarg); break;
        case 'W': opt.noWait = 1; break;
        case 'z': opt.deflate = 1; break;
        case 'S': opt.source = optarg; break;
        case 'N': opt.perSource = atoi(optarg); break;
        case 'X': opt.close = 1; break;
        case 'T': opt.tls = 1; break;
        default: usage();
        }
    }
    if (opt.port <= 0 || opt.conns <= 0 || opt.outstanding <= 0 ||
        opt.perSource <= 0)
        usage();
}

static void raiseFileLimit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Send the broadcast command as one masked text frame from connection 0. */
static void sendCommand(void)
{
    size_t len = strlen(opt.command);
    unsigned char buf[256 + 14];
    if (len > 256)
        die("command too long");
    size_t n = frame(buf, 0x81, (const unsigned char *)opt.command, len);
    if (ioWrite(&conns[0], buf, n) != (ssize_t)n)
        die("command write");
}

static int runWorkload(void);
static int closeAll(void);

int main(int argc, char **argv)
{
    parseArgs(argc, argv);
    raiseFileLimit();
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < 4; i++)
        maskKey[i] = (unsigned char)(rand() & 0xff);
    if (opt.deflate && opt.mode != MODE_ECHO)
        usage();
    if (opt.tls) {
        tlsContext = SSL_CTX_new(TLS_client_method());
        if (!tlsContext)
            die("SSL_CTX_new");
        SSL_CTX_set_verify(tlsContext, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(tlsContext, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_read_ahead(tlsContext, 1);
    }
    if (!opt.deflate)
        prepareUnit();
    if (opt.mode == MODE_BCAST || (opt.mode == MODE_ECHO && opt.duration == 0))
        HIST_BIN_NS = 10000;
    if (opt.close && opt.mode != MODE_ECHO)
        usage();
    hist = calloc(HIST_BINS, sizeof *hist);
    conns = calloc(opt.conns, sizeof *conns);
    epfd = epoll_create1(0);
    if (!hist || !conns || epfd < 0)
        die("setup");
    int ring = opt.mode == MODE_ECHO ? opt.outstanding + 1 : 1;
    for (int i = 0; i < opt.conns; i++) {
        conns[i].sent = calloc(ring, sizeof(double));
        conns[i].ringSize = ring;
    }

    double u, s, c0, c1;
    double t0 = now();
    c0 = cpuSeconds(&u, &s);
    if (!loop(allConnected, t0 + opt.timeout * 4, connectMore)) {
        errno = ETIMEDOUT;
        die("connecting");
    }
    double t1 = now();
    c1 = cpuSeconds(&u, &s);
    printf("{\"phase\": \"connected\", \"conns\": %d, \"open\": %d, "
           "\"errors\": %lld, \"seconds\": %.6f, \"cpu_s\": %.6f}\n",
           opt.conns, openCount, (long long)errors, t1 - t0, c1 - c0);
    fflush(stdout);
    if (openCount == 0)
        die("no connection opened");
    char line[512];
    if (!opt.noWait && !nextLine(line, sizeof line))
        return 0;
    int status = 0;
    if (opt.mode != MODE_BCAST) {
        status = runWorkload();
        if (opt.close)
            status |= closeAll();
        return status;
    }
    /* bcast: the line is the command; then one more command per line. */
    for (;;) {
        if (!opt.noWait) {
            line[strcspn(line, "\r\n")] = 0;
            char *times = strstr(line, " x");
            rounds = 1;
            if (times) {
                rounds = atoll(times + 2);
                *times = 0;
            }
            if (line[0] && strcmp(line, "go") != 0) {
                opt.command = strdup(line);
                char mode[32];
                if (sscanf(line, "%31s %d", mode, &opt.count) != 2)
                    die("bad broadcast command");
            }
        }
        status |= runWorkload();
        if (opt.noWait || !nextLine(line, sizeof line))
            return status;
    }
}

/* Run the workload once and print its "done" line; non-zero on failure. */
static int runWorkload(void)
{
    double u, s;
    double start = now();
    double c1 = cpuSeconds(&u, &s);
    double u1 = u, s1 = s;
    int timedOut = 0;
    messagesTotal = bytesTotal = 0;
    histCount = histOverflow = 0;
    latMax = 0;
    memset(hist, 0, HIST_BINS * sizeof *hist);
    lastReceive = start;
    if (opt.mode == MODE_ECHO) {
        sendingEnds = start + opt.duration;
        for (int i = 0; i < opt.conns; i++) {
            if (conns[i].state != ST_OPEN)
                continue;
            for (int k = 0; k < opt.outstanding; k++)
                queueMessage(&conns[i], start);
            flush(&conns[i]);
        }
        timedOut = !loop(echoDone, sendingEnds + opt.timeout, stopSending);
    } else if (opt.mode == MODE_FRAG) {
        struct conn *c = &conns[0];
        for (int k = 0; k < opt.count && c->state == ST_OPEN; k++) {
            sending = 0;
            queueMessage(c, now());
            flush(c);
            if (!loop(drained, now() + opt.timeout, NULL)) {
                timedOut = 1;
                break;
            }
        }
    } else if (opt.mode == MODE_BCAST) {
        for (int64_t r = 0; r < rounds && !timedOut; r++) {
            bcastExpected = messagesTotal + (int64_t)openCount * opt.count;
            double sent = now();
            sendCommand();
            timedOut = !loop(bcastDone, start + opt.timeout, NULL);
            recordLatency(lastReceive - sent);
        }
    }
    double end = opt.mode == MODE_IDLE ? now() : lastReceive;
    double c2 = cpuSeconds(&u, &s);
    double seconds = end - start;
    printf("{\"phase\": \"done\", \"mode\": %d, \"conns\": %d, \"open\": %d, "
           "\"messages\": %lld, \"bytes\": %lld, \"seconds\": %.6f, "
           "\"msg_per_s\": %.1f, \"mb_per_s\": %.3f, "
           "\"lat_p50_us\": %.1f, \"lat_p99_us\": %.1f, \"lat_max_us\": %.1f, "
           "\"latencies\": %llu, \"errors\": %lld, \"pings\": %lld, "
           "\"timed_out\": %d, \"cpu_s\": %.6f, \"cpu_user_s\": %.6f, "
           "\"cpu_sys_s\": %.6f, \"wall_s\": %.6f}\n",
           opt.mode, opt.conns, openCount, (long long)messagesTotal,
           (long long)bytesTotal, seconds,
           seconds > 0 ? messagesTotal / seconds : 0.0,
           seconds > 0 ? bytesTotal / seconds / 1e6 : 0.0,
           percentile(0.50), percentile(0.99), latMax * 1e6,
           (unsigned long long)histCount, (long long)errors, (long long)pings,
           timedOut, c2 - c1, u - u1, s - s1, now() - start);
    fflush(stdout);
    return timedOut || errors ? 3 : 0;
}

static int allClosed(void)
{
    return openCount == 0;
}

static int closeNext;
static int64_t closeAsked, closesSent;

/* Start closes while fewer than --concurrency are under way. */
static int closeMore(double t)
{
    static const unsigned char payload[2] = {0x03, 0xe8};   /* 1000 */
    (void)t;
    int64_t inFlight = closesSent - (closeAsked - openCount);
    while (closeNext < opt.conns && inFlight < opt.concurrency) {
        struct conn *c = &conns[closeNext++];
        if (c->state != ST_OPEN)
            continue;
        /* Queued as a pong would go: after any message being written. */
        c->pongLen = (int)frame(c->pong, 0x88, payload, sizeof payload);
        c->pongOff = 0;
        closesSent++;
        inFlight++;
        flush(c);
    }
    return 0;
}

/*
 * --close: a close frame (1000) on every open connection, --concurrency
 * at a time (as the handshakes), each waiting for the server's close
 * frame (the server then ends the stream).
 */
static int closeAll(void)
{
    double start = now(), u, s;
    double c1 = cpuSeconds(&u, &s);
    int64_t errors0 = errors;
    closeAsked = openCount;
    closing = 1;
    int timedOut = !loop(allClosed, start + opt.timeout, closeMore);
    double c2 = cpuSeconds(&u, &s);
    printf("{\"phase\": \"closed\", \"asked\": %lld, \"clean\": %lld, "
           "\"still_open\": %d, \"errors\": %lld, \"seconds\": %.6f, "
           "\"timed_out\": %d, \"cpu_s\": %.6f}\n",
           (long long)closeAsked, (long long)closedClean, openCount,
           (long long)(errors - errors0), now() - start, timedOut, c2 - c1);
    fflush(stdout);
    return timedOut || closedClean != closeAsked ? 3 : 0;
}
